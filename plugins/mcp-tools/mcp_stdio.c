/* mcp_stdio.c - MCP over a pair of file descriptors, one message per line.
 *
 * `todod mcp-stdio` hands us stdin and stdout for one user.  Both become
 * non-blocking and are watched through the loop: input is split at
 * newlines however the reads fall, replies are queued and written as the
 * pipe takes them.  No sessions, no credentials: whoever started the
 * process chose the user. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "mcp_server.h"

/* A longer line is answered with a parse error and skipped. */
#define MAX_LINE (4u << 20)
#define READ_CHUNK 65536

struct byte_buf {
	char *data;
	size_t len, cap;
};

struct stdio_conn {
	struct mcp_stdio *st;
	int in_fd, out_fd;
	int in_flags, out_flags; /* as found, restored at the end */
	struct todod_watch *in_watch, *out_watch;
	struct mcp_peer peer;
	struct byte_buf in;  /* an unfinished line */
	bool skipping;       /* inside an overlong line: drop until its newline */
	struct byte_buf out; /* replies not yet written, from out_done on */
	size_t out_done;
	unsigned pending;    /* messages handed to the server, not answered yet */
	bool eof, broken, closed_told;
	bool paused; /* input unwatched until the output drains */
	void (*closed)(void *arg);
	void *closed_arg;
	SLIST_ENTRY(stdio_conn) link;
};

struct mcp_stdio {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	struct mcp_server *srv;
	struct todod_stdio_service service;
	SLIST_HEAD(, stdio_conn) conns;
};

static void buf_reserve(struct byte_buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	b->data = todod_xrealloc(b->data, cap);
	b->cap = cap;
}

/* The client is gone once its input ended and everything it asked for
 * has been answered (or can no longer be delivered). */
static void maybe_closed(struct stdio_conn *c)
{
	if (c->closed_told || !c->eof || c->pending ||
	    (!c->broken && c->out_done < c->out.len))
		return;
	c->closed_told = true;
	c->closed(c->closed_arg);
}

static void on_writable(int fd, int what, void *arg);

static void on_readable(int fd, int what, void *arg);

/* Reading stops while this much output waits, so a client that does not
 * read its replies cannot make us buffer without bound. */
#define OUT_HIGH_WATER (16u << 20)

static void pause_input(struct stdio_conn *c, bool pause)
{
	const struct todod_api *api = c->st->api;
	if (pause && c->in_watch) {
		api->fd_unwatch(&c->in_watch);
		c->paused = true;
	} else if (!pause && c->paused) {
		c->paused = false;
		c->in_watch = api->fd_watch(c->st->ctx, c->in_fd, TODOD_FD_READ, on_readable, c);
		if (!c->in_watch)
			c->eof = true; /* cannot listen any more: as good as closed */
	}
}

static void flush_out(struct stdio_conn *c)
{
	const struct todod_api *api = c->st->api;
	while (!c->broken && c->out_done < c->out.len) {
		ssize_t n = write(c->out_fd, c->out.data + c->out_done, c->out.len - c->out_done);
		int error = errno;
		if (n > 0) {
			c->out_done += (size_t)n;
			continue;
		}
		if (n < 0 && error == EINTR)
			continue;
		if (n < 0 && (error == EAGAIN || error == EWOULDBLOCK)) {
			if (!c->out_watch)
				c->out_watch = api->fd_watch(c->st->ctx, c->out_fd, TODOD_FD_WRITE,
							     on_writable, c);
			if (c->out_watch)
				return;
		}
		c->broken = true;
		api->log(c->st->ctx, TODOD_LOG_WARN, "stdio: cannot write replies (%s); dropping them",
			 n < 0 ? strerror(error) : "nothing written");
	}
	c->out.len = c->out_done = 0;
	api->fd_unwatch(&c->out_watch);
	pause_input(c, false);
	maybe_closed(c);
}

static void on_writable(int fd, int what, void *arg)
{
	flush_out(arg);
}

/* The mcp_reply_fn of stdio: one line per response, nothing for the rest. */
static void reply_stdio(int status, const char *json, size_t len, void *arg)
{
	struct stdio_conn *c = arg;
	c->pending--;
	if (json && !c->broken) {
		buf_reserve(&c->out, len + 1);
		memcpy(c->out.data + c->out.len, json, len);
		c->out.data[c->out.len + len] = '\n';
		c->out.len += len + 1;
	}
	if (!c->out_watch)
		flush_out(c);
	else if (c->out.len - c->out_done > OUT_HIGH_WATER)
		pause_input(c, true);
	else
		maybe_closed(c); /* the watch flushes */
}

static void handle_line(struct stdio_conn *c, const char *line, size_t len)
{
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (!len)
		return;
	struct mcp_server *srv = c->st->srv;
	c->pending++;
	json_object *msg = mcp_parse(srv, line, len, reply_stdio, c);
	if (msg) {
		mcp_handle(srv, &c->peer, msg, reply_stdio, c);
		json_object_put(msg);
	}
}

static void too_long(struct stdio_conn *c)
{
	c->pending++;
	mcp_reply_error(c->st->srv, 400, MCP_PARSE_ERROR,
			"Parse error: the message is longer than 4 MiB", reply_stdio, c);
}

/* Handles every complete line in `data` and keeps the unfinished rest. */
static void take_input(struct stdio_conn *c, const char *data, size_t len)
{
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t part = nl ? (size_t)(nl - data) : len;
		if (c->skipping) {
			c->skipping = !nl;
		} else if (c->in.len + part > MAX_LINE) {
			c->in.len = 0;
			c->skipping = !nl;
			too_long(c);
		} else if (nl && !c->in.len) {
			handle_line(c, data, part); /* the common case: no copy */
		} else {
			buf_reserve(&c->in, part);
			memcpy(c->in.data + c->in.len, data, part);
			c->in.len += part;
			if (nl) {
				size_t line_len = c->in.len;
				c->in.len = 0;
				handle_line(c, c->in.data, line_len);
			}
		}
		if (!nl)
			break;
		data = nl + 1;
		len -= part + 1;
	}
}

static void end_input(struct stdio_conn *c)
{
	c->st->api->fd_unwatch(&c->in_watch);
	/* An unterminated last line is still a message. */
	if (c->in.len && !c->skipping) {
		size_t len = c->in.len;
		c->in.len = 0;
		handle_line(c, c->in.data, len);
	}
	c->eof = true;
	maybe_closed(c);
}

static void on_readable(int fd, int what, void *arg)
{
	struct stdio_conn *c = arg;
	char chunk[READ_CHUNK];
	ssize_t n = read(fd, chunk, sizeof chunk);
	if (n > 0)
		take_input(c, chunk, (size_t)n);
	else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		end_input(c);
}

static int make_nonblocking(int fd, int *old_flags)
{
	*old_flags = fcntl(fd, F_GETFL);
	if (*old_flags < 0)
		return -1;
	return fcntl(fd, F_SETFL, *old_flags | O_NONBLOCK);
}

static int stdio_attach(void *self, int in_fd, int out_fd, int64_t user_id,
			void (*closed)(void *arg), void *arg, struct todod_err *err)
{
	struct mcp_stdio *st = self;
	struct stdio_conn *c = todod_xcalloc(1, sizeof *c);
	*c = (struct stdio_conn){ .st = st, .in_fd = in_fd, .out_fd = out_fd, .closed = closed,
				  .closed_arg = arg, .in_flags = -1, .out_flags = -1 };
	c->peer.user_id = user_id;
	if (make_nonblocking(in_fd, &c->in_flags) != 0 ||
	    make_nonblocking(out_fd, &c->out_flags) != 0) {
		todod_err_set(err, "stdio: cannot make fds %d/%d non-blocking: %s", in_fd, out_fd,
			      strerror(errno));
		goto fail;
	}
	/* epoll cannot watch a regular file: the input must be a pipe,
	 * a socket or a terminal. */
	c->in_watch = st->api->fd_watch(st->ctx, in_fd, TODOD_FD_READ, on_readable, c);
	if (!c->in_watch) {
		todod_err_set(err, "stdio: cannot watch fd %d (a pipe or socket is needed)", in_fd);
		goto fail;
	}
	SLIST_INSERT_HEAD(&st->conns, c, link);
	return 0;
fail:
	if (c->in_flags >= 0)
		fcntl(in_fd, F_SETFL, c->in_flags);
	if (c->out_flags >= 0)
		fcntl(out_fd, F_SETFL, c->out_flags);
	free(c);
	return -1;
}

struct mcp_stdio *mcp_stdio_new(const struct todod_api *api, struct todod_ctx *ctx,
				struct mcp_server *srv, struct todod_err *err)
{
	struct mcp_stdio *st = todod_xcalloc(1, sizeof *st);
	st->api = api;
	st->ctx = ctx;
	st->srv = srv;
	st->service = (struct todod_stdio_service){ .struct_size = sizeof st->service,
						    .attach = stdio_attach, .self = st };
	if (api->service_provide(ctx, "stdio", "mcp-tools", &st->service, err) != 0) {
		free(st);
		return NULL;
	}
	return st;
}

bool mcp_stdio_busy(const struct mcp_stdio *st)
{
	const struct stdio_conn *c;
	SLIST_FOREACH(c, &st->conns, link)
		if (!c->broken && c->out_done < c->out.len)
			return true;
	return false;
}

/* Watches belong to the plugin's context; the core removes them. */
void mcp_stdio_free(struct mcp_stdio *st)
{
	if (!st)
		return;
	struct stdio_conn *c;
	while ((c = SLIST_FIRST(&st->conns))) {
		SLIST_REMOVE_HEAD(&st->conns, link);
		fcntl(c->in_fd, F_SETFL, c->in_flags);
		fcntl(c->out_fd, F_SETFL, c->out_flags);
		free(c->in.data);
		free(c->out.data);
		free(c);
	}
	free(st);
}
