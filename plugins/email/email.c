/* email.c - the "email" plugin: one e-mail per todod.reminder.due event.
 *
 * It consumes topic task-reminders as consumer "email"; the core's inbox
 * makes a redelivered event a no-op, so each reminder is mailed once.
 * Per event: look the owner up (address, time zone), build the message
 * (email_message.c), then hand it to the core's shared libcurl multi
 * (smtp:// or smtps://) or append it to a local mbox file (mbox:/path).
 *
 * Outcomes, as the bus sees them:
 *   OK     the server said 250 after DATA (or the mbox write completed);
 *   RETRY  no answer, a timeout, a 4xx, a database hiccup: the core
 *          redelivers with backoff, up to [core] max_attempts;
 *   DROP   a 5xx, an owner without an address, a malformed event: the
 *          event is dead-lettered with the server's reply as reason.
 *
 * The mbox target writes synchronously: one append of a few kilobytes to
 * a local file, which the page cache absorbs; it is meant for a laptop and
 * for tests, not for mail on a network file system. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <todod-plugin.h>

#include "email_message.h"

enum starttls_mode { STARTTLS_AUTO, STARTTLS_REQUIRED, STARTTLS_OPTIONAL, STARTTLS_NEVER };

static const char *const starttls_choices[] = { "auto", "required", "optional", "never", NULL };

struct email_conf {
	char *server;
	char *from;
	char *username;
	char *password;
	int starttls;
	int64_t timeout_ms;
	int64_t max_attempts;
};

/* One reminder on its way: owned by the plugin until answered. */
struct send {
	struct email *em;
	struct todod_delivery *d;
	LIST_ENTRY(send) link;
	char *event_id;
	int64_t user_id;
	json_object *task;
	char *remind_at;
	char *to; /* for the log line once it went out */
};

struct email {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	const struct email_conf *conf;
	LIST_HEAD(, send) in_flight;
	bool draining;            /* no new sends: the bus still redelivers */
	todod_drained_cb drained; /* called once the last send finished */
};

#define MBOX_SCHEME "mbox:"

static bool is_mbox(const char *server) { return strncmp(server, MBOX_SCHEME, 5) == 0; }

/* ---- options ------------------------------------------------------------- */

/* "auto" is required when credentials would travel, else optional. */
static enum todod_starttls starttls_level(const struct email_conf *c)
{
	switch (c->starttls) {
	case STARTTLS_REQUIRED: return TODOD_STARTTLS_REQUIRED;
	case STARTTLS_OPTIONAL: return TODOD_STARTTLS_OPTIONAL;
	case STARTTLS_NEVER: return TODOD_STARTTLS_NEVER;
	default: return c->username ? TODOD_STARTTLS_REQUIRED : TODOD_STARTTLS_OPTIONAL;
	}
}

static int email_validate(const void *conf, struct todod_err *err)
{
	const struct email_conf *c = conf;
	if (is_mbox(c->server)) {
		if (c->server[5] != '/')
			return todod_err_set(err, "server: \"%s\" must name an absolute path, "
					     "e.g. mbox:/var/mail/todod", c->server);
	} else if (strncmp(c->server, "smtp://", 7) != 0 && strncmp(c->server, "smtps://", 8) != 0) {
		return todod_err_set(err, "server: \"%s\" is not an smtp://host:port, "
				     "smtps://host:port or mbox:/path URL", c->server);
	} else {
		const char *host = strstr(c->server, "://") + 3;
		if (!*host || strchr(":/", *host))
			return todod_err_set(err, "server: \"%s\" names no host", c->server);
	}
	char *address = email_address_of(c->from);
	bool has_at = strchr(address, '@') != NULL && !strpbrk(address, " \t\r\n<>");
	free(address);
	if (!has_at)
		return todod_err_set(err, "from: \"%s\" is not an address such as "
				     "todod@example.org or \"Todo <todod@example.org>\"", c->from);
	if (strpbrk(c->from, "\r\n"))
		return todod_err_set(err, "from: must be one line");
	if (c->password && !c->username)
		return todod_err_set(err, "password: set username too (AUTH needs both)");
	if (c->username && c->starttls == STARTTLS_NEVER && strncmp(c->server, "smtp://", 7) == 0)
		return todod_err_set(err, "starttls: \"never\" would send the password in clear text; "
				     "use optional, required or an smtps:// server");
	return 0;
}

/* ---- one delivery -------------------------------------------------------- */

static void send_free(struct send *s)
{
	struct email *em = s->em;
	LIST_REMOVE(s, link);
	json_object_put(s->task);
	free(s->event_id);
	free(s->remind_at);
	free(s->to);
	free(s);
	if (LIST_EMPTY(&em->in_flight) && em->drained) {
		todod_drained_cb done = em->drained;
		em->drained = NULL;
		done(em->ctx);
	}
}

/* The one place a delivery is answered, so the answer and the cleanup
 * never drift apart.  A temporary failure turns permanent once the
 * plugin's own max_attempts is used up. */
static void finish(struct send *s, enum todod_result result, const char *reason)
{
	struct email *em = s->em;
	const struct todod_api *api = em->api;
	int attempt = api->delivery_attempt(s->d);
	char why[700];
	if (result == TODOD_RETRY && em->conf->max_attempts &&
	    attempt >= em->conf->max_attempts) {
		snprintf(why, sizeof why, "gave up after %d attempts: %s", attempt, reason);
		result = TODOD_DROP;
		reason = why;
	}
	switch (result) {
	case TODOD_OK:
		api->log(em->ctx, TODOD_LOG_INFO, "reminder %s for task %s mailed to %s",
			 s->event_id, json_object_get_string(json_object_object_get(s->task, "id")),
			 s->to);
		break;
	case TODOD_RETRY:
		api->log(em->ctx, TODOD_LOG_WARN, "reminder %s: attempt %d failed, will retry: %s",
			 s->event_id, attempt, reason);
		break;
	default:
		api->log(em->ctx, TODOD_LOG_ERROR, "reminder %s dropped: %s", s->event_id, reason);
	}
	api->bus_answer(s->d, result, reason);
	send_free(s);
}

static void on_sent(const struct todod_transfer_result *res, void *arg)
{
	struct send *s = arg;
	const char *reply = res->body && *res->body ? res->body : NULL;
	char reason[600];
	if (res->status == 250 && !res->error) {
		finish(s, TODOD_OK, NULL);
	} else if (res->status >= 500 && res->status < 600) {
		snprintf(reason, sizeof reason, "%s", reply ? reply : res->error);
		finish(s, TODOD_DROP, reason);
	} else {
		snprintf(reason, sizeof reason, "%s%s%s", res->error ? res->error : "no 250 after DATA",
			 reply ? ": " : "", reply ? reply : "");
		finish(s, TODOD_RETRY, reason);
	}
}

/* O_APPEND and one write() per message: concurrent writers (a second
 * replica, a mail reader) never see two messages interleaved. */
static void mbox_append(struct send *s, const char *msg, size_t len, const char *sender)
{
	const char *path = s->em->conf->server + strlen(MBOX_SCHEME);
	size_t entry_len;
	time_t now = (time_t)(s->em->api->now_ms() / 1000);
	char *entry = email_mbox_entry(sender, msg, len, now, &entry_len);
	char reason[600];
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	ssize_t n = fd < 0 ? -1 : write(fd, entry, entry_len);
	int saved = errno;
	if (fd >= 0 && close(fd) != 0 && n >= 0) {
		saved = errno;
		n = -1;
	}
	free(entry);
	if (n == (ssize_t)entry_len) {
		finish(s, TODOD_OK, NULL);
		return;
	}
	snprintf(reason, sizeof reason, "%s: %s", path, n < 0 ? strerror(saved) : "short write");
	finish(s, TODOD_RETRY, reason);
}

/* The Message-ID's domain: the sender's, else this instance's name. */
static const char *message_host(const struct email *em, const char *sender)
{
	const char *at = strrchr(sender, '@');
	return at && at[1] ? at + 1 : em->api->instance_id();
}

static void send_message(struct send *s, const char *tz)
{
	struct email *em = s->em;
	const struct email_conf *c = em->conf;
	char *sender = email_address_of(c->from);
	struct email_reminder r = {
		.api = em->api,
		.from = c->from,
		.to = s->to,
		.task = s->task,
		.remind_at = s->remind_at,
		.tz = tz,
		.event_id = s->event_id,
		.host = message_host(em, sender),
		.now = (time_t)(em->api->now_ms() / 1000),
	};
	size_t len;
	char *msg = email_message_build(&r, &len);
	if (!msg) {
		free(sender);
		finish(s, TODOD_DROP, "cannot build the message: the task has no title");
		return;
	}
	if (is_mbox(c->server)) {
		mbox_append(s, msg, len, sender);
	} else {
		const char *rcpt[] = { s->to, NULL };
		struct todod_smtp_message m = {
			.struct_size = sizeof m,
			.url = c->server,
			.from = sender,
			.rcpt = rcpt,
			.data = msg,
			.data_len = len,
			.username = c->username,
			.password = c->password,
			.starttls = starttls_level(c),
			.timeout_ms = c->timeout_ms,
		};
		struct todod_err err = { "" };
		if (em->api->smtp_send(em->ctx, &m, on_sent, s, &err) != 0)
			finish(s, TODOD_RETRY, err.text);
	}
	free(msg);
	free(sender);
}

static void on_owner(json_object *user, const struct todod_store_error *err, void *arg)
{
	struct send *s = arg;
	char reason[600];
	if (err) {
		snprintf(reason, sizeof reason, "looking up user %lld: %s: %s",
			 (long long)s->user_id, err->code, err->text ? err->text : "");
		bool temporary = strcmp(err->code, "DATABASE_UNAVAILABLE") == 0;
		finish(s, temporary ? TODOD_RETRY : TODOD_DROP, reason);
		return;
	}
	json_object *email = NULL, *tz = NULL;
	json_object_object_get_ex(user, "email", &email);
	json_object_object_get_ex(user, "tz", &tz);
	const char *to = json_object_is_type(email, json_type_string) ?
				 json_object_get_string(email) : "";
	if (!*to || !strchr(to, '@') || strpbrk(to, " \t\r\n<>,")) {
		snprintf(reason, sizeof reason, "user %lld has no usable email address",
			 (long long)s->user_id);
		finish(s, TODOD_DROP, reason);
		return;
	}
	s->to = todod_xstrdup(to);
	send_message(s, json_object_is_type(tz, json_type_string) ? json_object_get_string(tz) : NULL);
}

/* Reads the event into a send; NULL with `why` when it is not usable. */
static struct send *send_new(struct email *em, const struct todod_event *ev,
			     struct todod_delivery *d, const char **why)
{
	json_object *user_id, *task, *remind_at, *title;
	if (!json_object_object_get_ex(ev->data, "user_id", &user_id) ||
	    !json_object_is_type(user_id, json_type_int) ||
	    !json_object_object_get_ex(ev->data, "task", &task) ||
	    !json_object_object_get_ex(task, "title", &title) ||
	    !json_object_is_type(title, json_type_string) ||
	    !json_object_object_get_ex(ev->data, "remind_at", &remind_at) ||
	    !json_object_is_type(remind_at, json_type_string)) {
		*why = "malformed todod.reminder.due event: data needs user_id, task with a title "
		       "and remind_at";
		return NULL;
	}
	struct send *s = todod_xcalloc(1, sizeof *s);
	s->em = em;
	s->d = d;
	s->user_id = json_object_get_int64(user_id);
	s->task = json_object_get(task);
	s->event_id = todod_xstrdup(ev->id);
	s->remind_at = todod_xstrdup(json_object_get_string(remind_at));
	LIST_INSERT_HEAD(&em->in_flight, s, link);
	return s;
}

static void on_reminder(const struct todod_event *ev, struct todod_delivery *d, void *arg)
{
	struct email *em = arg;
	if (strcmp(ev->type, "todod.reminder.due") != 0) {
		em->api->bus_answer(d, TODOD_OK, NULL);
		return;
	}
	/* Unrecorded, the event is delivered again after the restart. */
	if (em->draining) {
		em->api->bus_answer(d, TODOD_RETRY, "shutting down");
		return;
	}
	const char *why;
	struct send *s = send_new(em, ev, d, &why);
	if (!s) {
		em->api->log(em->ctx, TODOD_LOG_ERROR, "event %s dropped: %s", ev->id, why);
		em->api->bus_answer(d, TODOD_DROP, why);
		return;
	}
	json_object *none = json_object_new_object();
	struct todod_err err = { "" };
	int rc = none ? em->api->store_call(em->ctx, "user.get", s->user_id, none, NULL, NULL,
					    on_owner, s, &err)
		      : todod_err_set(&err, "out of memory");
	json_object_put(none);
	if (rc != 0)
		finish(s, TODOD_RETRY, err.text);
}

/* ---- lifecycle ------------------------------------------------------------ */

static int email_init(const struct todod_api *api, struct todod_ctx *ctx, const void *conf,
		      void **state, struct todod_err *err)
{
	struct email *em = todod_xcalloc(1, sizeof *em);
	em->api = api;
	em->ctx = ctx;
	em->conf = conf;
	if (api->bus_subscribe(ctx, "task-reminders", "email", on_reminder, em, err) != 0) {
		free(em);
		return -1;
	}
	*state = em;
	return 0;
}

/* Sends in flight read the options when they reach the next step, so
 * they simply continue with the new ones. */
static int email_reconfigure(void *state, const void *old_conf, const void *new_conf,
			     struct todod_err *err)
{
	((struct email *)state)->conf = new_conf;
	return 0;
}

static void email_drain(void *state, struct todod_ctx *ctx, todod_drained_cb done)
{
	struct email *em = state;
	em->draining = true;
	if (LIST_EMPTY(&em->in_flight)) {
		done(ctx);
		return;
	}
	em->drained = done;
}

/* The core removed our transfers and store calls without callbacks, and
 * the bus settled our unanswered deliveries unrecorded (so they are
 * delivered again after a restart): only memory is left. */
static void email_destroy(void *state)
{
	struct email *em = state;
	em->drained = NULL;
	while (!LIST_EMPTY(&em->in_flight))
		send_free(LIST_FIRST(&em->in_flight));
	free(em);
}

#define OPT(field) offsetof(struct email_conf, field)
static const struct todod_opt email_options[] = {
	{ .key = "server", .type = TODOD_OPT_STRING, .flags = TODOD_OPT_REQUIRED,
	  .offset = OPT(server),
	  .description = "Where mail goes: smtp://host:port (STARTTLS per `starttls`), "
			 "smtps://host:port (implicit TLS) or mbox:/path (appended to a local "
			 "mbox file)" },
	{ .key = "from", .type = TODOD_OPT_STRING, .flags = TODOD_OPT_REQUIRED, .offset = OPT(from),
	  .description = "Sender: todod@example.org or \"Todo <todod@example.org>\"; its domain "
			 "names the Message-ID" },
	{ .key = "username", .type = TODOD_OPT_STRING, .offset = OPT(username),
	  .description = "SMTP AUTH user; unset: no AUTH" },
	{ .key = "password", .type = TODOD_OPT_SECRET, .offset = OPT(password),
	  .description = "SMTP AUTH password (literal, env:NAME or file:/path)" },
	{ .key = "starttls", .type = TODOD_OPT_ENUM, .default_value = "auto",
	  .offset = OPT(starttls), .choices = starttls_choices,
	  .description = "smtp:// only: required, optional or never; auto is required when "
			 "username is set (credentials never travel in clear text) and optional "
			 "otherwise" },
	{ .key = "timeout", .type = TODOD_OPT_DURATION, .default_value = "30s",
	  .offset = OPT(timeout_ms), .min = 1000, .max = 600000,
	  .description = "Whole SMTP conversation, connecting included; over it the send is "
			 "retried" },
	{ .key = "max_attempts", .type = TODOD_OPT_INT, .default_value = "0",
	  .offset = OPT(max_attempts), .max = 100,
	  .description = "Deliveries of one reminder before it is dead-lettered; 0 follows "
			 "[core] max_attempts, which is also the upper bound (the core stops "
			 "redelivering there)" },
	{ .key = NULL },
};

TODOD_PLUGIN = {
	TODOD_PLUGIN_HEADER,
	.name = "email",
	.version = "1.0",
	.description = "Mails each due reminder to the task's owner (SMTP or an mbox file)",
	.options = email_options,
	.conf_size = sizeof(struct email_conf),
	.validate = email_validate,
	.init = email_init,
	.reconfigure = email_reconfigure,
	.drain = email_drain,
	.destroy = email_destroy,
};
