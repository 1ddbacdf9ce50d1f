/* db.c - the asynchronous PostgreSQL pool.
 *
 * Each connection is a small state machine driven by one libevent event
 * that is re-armed (one-shot) on the connection's *current* socket every
 * time: libpq may switch sockets while it tries several hosts or
 * addresses.  Finished statements are not reported on the spot but moved
 * to a `finished` list drained by a separate event, so a callback never
 * runs inside db_query() and may freely queue more work.
 *
 * Connections run in libpq's pipeline mode: up to MAX_IN_FLIGHT
 * statements are sent before the first answer is back, and the answers
 * come in the order sent.  Every statement is followed by its own sync,
 * so it stays its own implicit transaction, as outside a pipeline: an
 * error aborts that statement alone, never the callers queued behind it.
 * Statements are prepared on each connection the first time it sends them
 * (db_stmts.h), in the same pipeline as their first execution; until the
 * server confirms, further ones go as text, so a statement that cannot be
 * prepared fails with its own error every time it is sent.  New
 * statements are handed out by one event per loop turn, so those queued
 * in one turn leave in as few writes as libpq allows. */
#include "db.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "clock.h"
#include "db_stmts.h"
#include "log.h"

enum {
	BACKOFF_MIN_MS = 100,
	BACKOFF_MAX_MS = 5000,
	CONNECT_TIMEOUT_S = 5,
	DEFAULT_TIMEOUT_MS = 5000,
	/* Deep enough that a connection never waits for the network between
	 * statements; shallow enough that the pool's connections share the
	 * load, and that a slow statement holds few others up behind it. */
	MAX_IN_FLIGHT = 32,
};

#define UNAVAILABLE "database unavailable: "

struct db_job {
	STAILQ_ENTRY(db_job) link;
	const struct db_stmt *stmt; /* prepared on each connection; NULL: sent as text */
	char *sql;                  /* that text, when stmt is NULL */
	bool prepares;              /* its connection prepares stmt ahead of it */
	int nparams;
	char **params;
	db_cb cb;
	void *arg;
	PGresult *res;
	char *error;
	int64_t queued_ms;  /* monotonic: how long it may wait for a connection */
	int64_t sent_ms;    /* and how long the server may take to answer */
};

struct job_list {
	STAILQ_HEAD(, db_job) jobs; /* oldest first */
	int n;
};

/* A statement on one connection's session. */
enum stmt_state {
	STMT_NEW,       /* never prepared (or the prepare failed) */
	STMT_PREPARING, /* the prepare is in flight */
	STMT_READY,
};

enum conn_state {
	CONN_DOWN,       /* no PGconn; the retry timer reconnects */
	CONN_CONNECTING, /* PQconnectPoll in progress; the retry timer is the deadline */
	CONN_UP,         /* in pipeline mode, always watched for readability, so a
			  * server close is noticed at once even with nothing sent */
};

struct db_conn {
	struct db_pool *pool;
	int index;
	PGconn *pg;
	enum conn_state state;
	struct event *io;
	short armed;        /* what a persistent io waits for; 0 when none */
	struct event *retry;
	int backoff_ms;
	bool unflushed;     /* given statements in this pump, not flushed yet */
	bool flushing;      /* PQflush said 1: statements are not fully sent */
	bool was_up;        /* for logging a loss once, not every failed retry */
	struct job_list sent; /* in flight, oldest first: the order answers come in */
	unsigned char stmts[DB_STMTS_MAX]; /* enum stmt_state by db_stmt.index, this session */
};

struct db_pool {
	struct event_base *base;
	char *conninfo;
	int size;
	struct db_conn *conns;
	struct job_list waiting;
	struct job_list finished;
	struct event *dispatch;
	struct event *pump; /* hands waiting statements to connections */
	struct db_stmts *stmts;
	int running;
	bool started;
	bool down;          /* every connection failed: fail statements at once */
	bool closing;
	bool dispatching;
	bool free_pending;  /* db_pool_free was called from a callback */
	char down_reason[256];
	int64_t timeout_ms; /* a statement's whole time, queue included */
	struct event *sweep;
};

static void conn_connect(struct db_conn *c);
static void conn_broken(struct db_conn *c, PGresult *res, const char *why);

static void on_conn_io(evutil_socket_t fd, short what, void *arg);

/* ---- small helpers ------------------------------------------------------ */

/* libpq's messages may be missing: NULL copies as "". */
static char *xstrdup(const char *s)
{
	return todod_xstrdup(s ? s : "");
}

/* libpq messages end in newlines and may continue with hints on further
 * lines; callers want one line. */
static void first_line(const char *msg, char *buf, size_t size)
{
	if (!msg || !*msg)
		msg = "unknown error";
	/* The server's own severity adds nothing to "database unavailable". */
	if (strncmp(msg, "FATAL:  ", 8) == 0 || strncmp(msg, "ERROR:  ", 8) == 0)
		msg += 8;
	size_t n = strcspn(msg, "\n");
	if (n >= size)
		n = size - 1;
	memcpy(buf, msg, n);
	buf[n] = '\0';
}

static void list_push(struct job_list *l, struct db_job *job)
{
	STAILQ_INSERT_TAIL(&l->jobs, job, link);
	l->n++;
}

static struct db_job *list_pop(struct job_list *l)
{
	struct db_job *job = STAILQ_FIRST(&l->jobs);
	if (job) {
		STAILQ_REMOVE_HEAD(&l->jobs, link);
		l->n--;
	}
	return job;
}

static void list_init(struct job_list *l)
{
	STAILQ_INIT(&l->jobs);
	l->n = 0;
}

static void job_free(struct db_job *job)
{
	for (int i = 0; i < job->nparams; i++)
		free(job->params[i]);
	free(job->params);
	free(job->sql);
	free(job->error);
	PQclear(job->res);
	free(job);
}

/* ---- finishing and reporting ------------------------------------------- */

/* Takes `res`; without one, keeps whatever result the job had collected
 * (a server's FATAL message explains a lost connection best). */
static void job_finish(struct db_pool *pool, struct db_job *job, PGresult *res, const char *error)
{
	if (res) {
		PQclear(job->res);
		job->res = res;
	}
	job->error = error ? xstrdup(error) : NULL;
	list_push(&pool->finished, job);
	event_active(pool->dispatch, EV_TIMEOUT, 0);
}

static void pool_destroy(struct db_pool *pool);

static void on_dispatch(evutil_socket_t fd, short what, void *arg)
{
	struct db_pool *pool = arg;
	/* Only the jobs finished so far: a callback that keeps re-queueing
	 * against a down pool must not spin this loop forever. */
	if (STAILQ_EMPTY(&pool->finished.jobs))
		return;
	struct job_list batch;
	list_init(&batch);
	STAILQ_CONCAT(&batch.jobs, &pool->finished.jobs);
	batch.n = pool->finished.n;
	pool->finished.n = 0;
	pool->dispatching = true;
	struct db_job *job;
	while ((job = list_pop(&batch))) {
		job->cb(job->res, job->error, job->arg);
		job_free(job);
	}
	pool->dispatching = false;
	if (pool->free_pending)
		pool_destroy(pool);
}

static void fail_waiting(struct db_pool *pool, const char *error)
{
	struct db_job *job;
	while ((job = list_pop(&pool->waiting)))
		job_finish(pool, job, NULL, error);
}

static bool pool_has_live_conn(const struct db_pool *pool)
{
	return db_pool_live(pool) > 0;
}

/* ---- connection state machine ------------------------------------------ */

/* While connecting, libpq may close a socket and open another under the
 * same number, so the event is one-shot and set up afresh each time.  Up,
 * the socket stays: the event persists and changes only with what it
 * waits for, which spares two epoll_ctl calls per statement. */
static void conn_arm(struct db_conn *c, short what)
{
	if (c->state == CONN_UP && c->armed == what)
		return;
	event_del(c->io);
	c->armed = c->state == CONN_UP ? what : 0;
	event_assign(c->io, c->pool->base, PQsocket(c->pg),
		     c->state == CONN_UP ? what | EV_PERSIST : what, on_conn_io, c);
	event_add(c->io, NULL);
}

static void conn_schedule_retry(struct db_conn *c)
{
	struct timeval tv = { c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000 };
	event_add(c->retry, &tv);
	c->backoff_ms *= 2;
	if (c->backoff_ms > BACKOFF_MAX_MS)
		c->backoff_ms = BACKOFF_MAX_MS;
}

static void pool_schedule_pump(struct db_pool *pool)
{
	if (!STAILQ_EMPTY(&pool->waiting.jobs))
		event_active(pool->pump, EV_TIMEOUT, 0);
}

/* The connection is gone (or never came up).  Its statements in flight
 * may or may not have run, so they are failed rather than retried. */
static void conn_broken(struct db_conn *c, PGresult *res, const char *why)
{
	struct db_pool *pool = c->pool;
	struct db_job *oldest = STAILQ_FIRST(&c->sent.jobs);
	PGresult *diag = res ? res : oldest ? oldest->res : NULL;
	const char *primary = diag ? PQresultErrorField(diag, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char reason[256];
	first_line(primary ? primary : why, reason, sizeof reason);

	if (c->was_up)
		log_warn("database connection %d lost: %s", c->index, reason);
	else
		log_debug("database connection %d failed: %s", c->index, reason);
	c->was_up = false;

	event_del(c->io);
	c->armed = 0;
	event_del(c->retry);
	char error[320];
	snprintf(error, sizeof error, UNAVAILABLE "%s", reason);
	struct db_job *job;
	while ((job = list_pop(&c->sent))) {
		job_finish(pool, job, res, error);
		res = NULL;
		pool->running--;
	}
	PQclear(res);
	PQfinish(c->pg);
	c->pg = NULL;
	c->state = CONN_DOWN;
	c->flushing = false;

	if (!pool_has_live_conn(pool)) {
		if (!pool->down)
			log_warn("database unavailable: %s (retrying)", reason);
		pool->down = true;
		snprintf(pool->down_reason, sizeof pool->down_reason, "%s", reason);
		fail_waiting(pool, error);
	}
	conn_schedule_retry(c);
}

static void notice_to_log(void *arg, const char *message)
{
	char line[256];
	first_line(message, line, sizeof line);
	log_debug("postgres: %s", line);
}

static void conn_up(struct db_conn *c)
{
	struct db_pool *pool = c->pool;
	if (PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg)) {
		conn_broken(c, NULL, PQerrorMessage(c->pg));
		return;
	}
	PQsetNoticeProcessor(c->pg, notice_to_log, NULL);
	event_del(c->retry);
	c->backoff_ms = BACKOFF_MIN_MS;
	c->was_up = true;
	c->state = CONN_UP;
	/* A new session: nothing is prepared on it yet. */
	memset(c->stmts, STMT_NEW, sizeof c->stmts);
	if (pool->down)
		log_info("database available again");
	pool->down = false;
	log_debug("database connection %d up", c->index);
	conn_arm(c, EV_READ);
	pool_schedule_pump(pool);
}

/* Sends what libpq still buffers; waits for writability only while it has
 * to, and always for readability (the server may answer, or complain,
 * before it read everything). */
static void conn_flush(struct db_conn *c)
{
	int r = PQflush(c->pg);
	if (r < 0) {
		conn_broken(c, NULL, PQerrorMessage(c->pg));
		return;
	}
	c->flushing = r == 1;
	conn_arm(c, c->flushing ? EV_READ | EV_WRITE : EV_READ);
}

/* Ends the statement's pipeline segment.  libpq 17 can queue the sync
 * without a write of its own; older ones send at once, one write per
 * statement. */
static int pipeline_sync(PGconn *pg)
{
#ifdef LIBPQ_HAS_SEND_PIPELINE_SYNC
	return PQsendPipelineSync(pg);
#else
	return PQpipelineSync(pg);
#endif
}

/* Queues the job on the connection: the prepare of its statement when the
 * session has none yet, the statement (by name once prepared, else as
 * text), and a sync.  False when libpq refused, which in pipeline mode
 * means the connection is unusable (the job is then among those
 * conn_broken fails). */
static bool conn_send(struct db_conn *c, struct db_job *job)
{
	struct db_pool *pool = c->pool;
	job->sent_ms = clock_mono_ms();
	list_push(&c->sent, job);
	pool->running++;
	const char *const *params = (const char *const *)job->params;
	const struct db_stmt *stmt = job->stmt;
	enum stmt_state state = stmt ? c->stmts[stmt->index] : STMT_PREPARING;
	if (state == STMT_NEW) {
		/* Types are left to the server, as for an unprepared statement:
		 * the text's own casts decide them. */
		if (!PQsendPrepare(c->pg, stmt->name, stmt->sql, job->nparams, NULL))
			return false;
		c->stmts[stmt->index] = STMT_PREPARING;
		job->prepares = true;
		state = STMT_READY; /* its execution follows its prepare */
	}
	bool queued = state == STMT_READY ?
		PQsendQueryPrepared(c->pg, stmt->name, job->nparams, params, NULL, NULL, 0) :
		PQsendQueryParams(c->pg, stmt ? stmt->sql : job->sql, job->nparams, NULL, params,
				  NULL, NULL, 0);
	return queued && pipeline_sync(c->pg);
}

/* The live connection with the fewest statements in flight, if one has
 * room for another. */
static struct db_conn *pool_least_busy(struct db_pool *pool)
{
	struct db_conn *best = NULL;
	for (int i = 0; i < pool->size; i++) {
		struct db_conn *c = &pool->conns[i];
		if (c->state == CONN_UP && c->sent.n < MAX_IN_FLIGHT &&
		    (!best || c->sent.n < best->sent.n))
			best = c;
	}
	return best;
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
	struct db_pool *pool = arg;
	struct db_conn *c;
	while (!STAILQ_EMPTY(&pool->waiting.jobs) && (c = pool_least_busy(pool))) {
		if (conn_send(c, list_pop(&pool->waiting)))
			c->unflushed = true;
		else
			conn_broken(c, NULL, PQerrorMessage(c->pg));
	}
	for (int i = 0; i < pool->size; i++) {
		c = &pool->conns[i];
		if (c->unflushed && c->state == CONN_UP)
			conn_flush(c);
		c->unflushed = false;
	}
}

/* A statement's results are in: keep an error over a success, so a
 * failing statement is never reported as done. */
static void job_keep_result(struct db_job *job, PGresult *res)
{
	if (job->res) {
		ExecStatusType kept = PQresultStatus(job->res);
		if (kept != PGRES_TUPLES_OK && kept != PGRES_COMMAND_OK) {
			PQclear(res);
			return;
		}
		PQclear(job->res);
	}
	job->res = res;
}

/* The answer to the prepare sent ahead of the job.  A failed one leaves
 * the statement unprepared on this connection, to be tried again, and is
 * the job's answer: the server skips the execution behind it. */
static void job_prepare_answered(struct db_conn *c, struct db_job *job, PGresult *res)
{
	job->prepares = false;
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		c->stmts[job->stmt->index] = STMT_READY;
		PQclear(res);
		return;
	}
	c->stmts[job->stmt->index] = STMT_NEW;
	job_keep_result(job, res);
}

/* The oldest statement's sync came back: everything it answered is in. */
static void conn_statement_done(struct db_conn *c)
{
	struct db_pool *pool = c->pool;
	struct db_job *job = list_pop(&c->sent);
	pool->running--;
	PGresult *res = job->res;
	job->res = NULL;

	char error[512];
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		job_finish(pool, job, res, NULL);
		return;
	}
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (primary)
		first_line(primary, error, sizeof error);
	else if (res && *PQresultErrorMessage(res))
		first_line(PQresultErrorMessage(res), error, sizeof error);
	else
		snprintf(error, sizeof error, "unexpected result: %s", PQresStatus(st));
	job_finish(pool, job, res, error);
}

/* Takes every answer libpq has complete, in the order the statements were
 * sent: each statement's results, a NULL after each command, then the
 * statement's sync. */
static void conn_take_results(struct db_conn *c)
{
	int ends_in_a_row = 0;
	while (c->sent.n > 0 && !PQisBusy(c->pg)) {
		PGresult *res = PQgetResult(c->pg);
		if (!res) {
			/* One command's end; a second in a row means libpq has
			 * nothing more for now (a connection gone bad). */
			if (++ends_in_a_row > 1)
				return;
			continue;
		}
		ends_in_a_row = 0;
		struct db_job *job = STAILQ_FIRST(&c->sent.jobs);
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			conn_statement_done(c);
		} else if (job->prepares) {
			job_prepare_answered(c, job, res);
		} else {
			job_keep_result(job, res);
		}
	}
}

static void conn_progress(struct db_conn *c, short what)
{
	if ((what & EV_READ) && !PQconsumeInput(c->pg)) {
		conn_broken(c, NULL, PQerrorMessage(c->pg));
		return;
	}
	if (c->flushing) {
		int r = PQflush(c->pg);
		if (r < 0) {
			conn_broken(c, NULL, PQerrorMessage(c->pg));
			return;
		}
		c->flushing = r == 1;
	}
	int before = c->sent.n;
	conn_take_results(c);
	/* The server closing the connection (restart, idle timeout), with
	 * or without statements in flight. */
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		conn_broken(c, NULL, PQerrorMessage(c->pg));
		return;
	}
	PGnotify *n;
	while ((n = PQnotifies(c->pg)))
		PQfreemem(n);
	conn_arm(c, c->flushing ? EV_READ | EV_WRITE : EV_READ);
	if (c->sent.n < before)
		pool_schedule_pump(c->pool);
}

static void conn_poll(struct db_conn *c)
{
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		conn_arm(c, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		conn_arm(c, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		conn_up(c);
		break;
	default:
		conn_broken(c, NULL, PQerrorMessage(c->pg));
		break;
	}
}

static void on_conn_io(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;
	switch (c->state) {
	case CONN_CONNECTING:
		conn_poll(c);
		break;
	case CONN_UP:
		conn_progress(c, what);
		break;
	case CONN_DOWN:
		break;
	}
}

static void on_conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;
	if (c->state == CONN_CONNECTING) {
		char why[64];
		snprintf(why, sizeof why, "connection timed out after %d s", CONNECT_TIMEOUT_S);
		conn_broken(c, NULL, why);
	} else if (c->state == CONN_DOWN) {
		conn_connect(c);
	}
}

static void conn_connect(struct db_conn *c)
{
	c->pg = PQconnectStart(c->pool->conninfo);
	if (!c->pg) {
		c->state = CONN_CONNECTING;
		conn_broken(c, NULL, "out of memory");
		return;
	}
	c->state = CONN_CONNECTING;
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		conn_broken(c, NULL, PQerrorMessage(c->pg));
		return;
	}
	/* libpq ignores connect_timeout in this mode: the retry timer is the
	 * deadline of the whole attempt. */
	struct timeval deadline = { CONNECT_TIMEOUT_S, 0 };
	event_add(c->retry, &deadline);
	/* libpq's documented start: behave as if polling asked for WRITING. */
	conn_arm(c, EV_WRITE);
}

/* ---- deadlines ------------------------------------------------------------ */

#define SWEEP_EVERY_MS 100

/* A server that keeps its connections open but stops answering (a hung
 * host, a partition) would hold statements, and the requests waiting on
 * them, forever.  Past the deadline a running statement's connection is
 * taken for dead, and so are its siblings: they talk to the same silent
 * server, and keeping them would let /readyz claim a database that does
 * not answer.  Waiting statements past the deadline fail too. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct db_pool *pool = arg;
	int64_t now = clock_mono_ms();
	bool silent = false;
	for (int i = 0; i < pool->size && !silent; i++) {
		struct db_job *oldest = STAILQ_FIRST(&pool->conns[i].sent.jobs);
		silent = oldest && now - oldest->sent_ms > pool->timeout_ms;
	}
	if (silent) {
		char why[96];
		snprintf(why, sizeof why, "no answer within %lld ms", (long long)pool->timeout_ms);
		for (int i = 0; i < pool->size; i++) {
			struct db_conn *c = &pool->conns[i];
			if (c->state == CONN_UP)
				conn_broken(c, NULL, why);
		}
	}
	char error[160];
	snprintf(error, sizeof error, UNAVAILABLE "no connection free within %lld ms",
		 (long long)pool->timeout_ms);
	struct db_job *oldest;
	while ((oldest = STAILQ_FIRST(&pool->waiting.jobs)) &&
	       now - oldest->queued_ms > pool->timeout_ms)
		job_finish(pool, list_pop(&pool->waiting), NULL, error);
}

void db_pool_set_timeout(struct db_pool *pool, int64_t ms)
{
	pool->timeout_ms = ms > 0 ? ms : DEFAULT_TIMEOUT_MS;
}

/* ---- public ------------------------------------------------------------- */

static bool host_is_literal(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];
	return host[0] == '/' || host[0] == '@' || inet_pton(AF_INET, host, addr) == 1 ||
	       inet_pton(AF_INET6, host, addr) == 1;
}

/* libpq resolves host names with getaddrinfo(), which blocks the loop on
 * every (re)connect.  Worth a warning, not a refusal: a local resolver
 * usually answers fast. */
static void warn_if_dns_needed(PQconninfoOption *opts)
{
	const char *host = NULL, *hostaddr = NULL;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
	}
	if (!host)
		host = getenv("PGHOST");
	if (!hostaddr)
		hostaddr = getenv("PGHOSTADDR");
	if (!host || !*host || (hostaddr && *hostaddr))
		return;
	char *hosts = xstrdup(host);
	char *save = NULL;
	for (char *h = strtok_r(hosts, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
		if (*h && !host_is_literal(h))
			log_warn("database host \"%s\" needs a DNS lookup, which libpq does synchronously "
				 "and which stalls the event loop on every (re)connect; add hostaddr=",
				 h);
	}
	free(hosts);
}

int db_pool_size_for_machine(void)
{
	long twice = 2 * sysconf(_SC_NPROCESSORS_ONLN); /* -2 when unknown */
	return twice < 4 ? 4 : twice > 64 ? 64 : (int)twice;
}

struct db_pool *db_pool_new(struct event_base *base, int size, struct todod_err *err)
{
	if (size < 1) {
		todod_err_set(err, "database pool size must be at least 1, got %d", size);
		return NULL;
	}
	struct db_pool *pool = todod_xcalloc(1, sizeof *pool);
	pool->base = base;
	pool->size = size;
	pool->conns = todod_xcalloc((size_t)size, sizeof *pool->conns);
	list_init(&pool->waiting);
	list_init(&pool->finished);
	pool->dispatch = event_new(base, -1, 0, on_dispatch, pool);
	pool->pump = event_new(base, -1, 0, on_pump, pool);
	pool->stmts = db_stmts_new();
	pool->sweep = event_new(base, -1, EV_PERSIST, on_sweep, pool);
	pool->timeout_ms = DEFAULT_TIMEOUT_MS;
	for (int i = 0; i < size; i++) {
		struct db_conn *c = &pool->conns[i];
		c->pool = pool;
		c->index = i;
		c->backoff_ms = BACKOFF_MIN_MS;
		list_init(&c->sent);
		c->io = event_new(base, -1, 0, on_conn_io, c);
		c->retry = evtimer_new(base, on_conn_timer, c);
		if (!c->io || !c->retry)
			abort();
	}
	if (!pool->dispatch || !pool->pump || !pool->sweep)
		abort();
	return pool;
}

int db_pool_start(struct db_pool *pool, const char *conninfo, struct todod_err *err)
{
	if (pool->started)
		return 0;
	char *parse_error = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &parse_error);
	if (!opts) {
		char line[256];
		first_line(parse_error ? parse_error : "out of memory", line, sizeof line);
		PQfreemem(parse_error);
		return todod_err_set(err, "database: invalid connection string: %s", line);
	}
	warn_if_dns_needed(opts);
	PQconninfoFree(opts);
	pool->conninfo = xstrdup(conninfo);
	pool->started = true;
	struct timeval every = { 0, SWEEP_EVERY_MS * 1000 };
	event_add(pool->sweep, &every);
	for (int i = 0; i < pool->size; i++)
		conn_connect(&pool->conns[i]);
	return 0;
}

static void pool_destroy(struct db_pool *pool)
{
	pool->closing = true;
	for (int i = 0; i < pool->size; i++) {
		struct db_conn *c = &pool->conns[i];
		struct db_job *job;
		while ((job = list_pop(&c->sent)))
			job_finish(pool, job, NULL, "database pool closed");
		event_free(c->io);
		event_free(c->retry);
		PQfinish(c->pg);
	}
	fail_waiting(pool, "database pool closed");
	/* Callbacks still owe their callers an answer; queries they add now
	 * fail at once and land in the same list. */
	struct db_job *job;
	while ((job = list_pop(&pool->finished))) {
		job->cb(job->res, job->error, job->arg);
		job_free(job);
	}
	event_free(pool->dispatch);
	event_free(pool->pump);
	event_free(pool->sweep);
	db_stmts_free(pool->stmts);
	free(pool->conns);
	free(pool->conninfo);
	free(pool);
}

void db_pool_free(struct db_pool *pool)
{
	if (!pool || pool->closing)
		return;
	if (pool->dispatching) {
		pool->free_pending = true;
		return;
	}
	pool_destroy(pool);
}

void db_query(struct db_pool *pool, const char *sql, int nparams,
	      const char *const *params, db_cb cb, void *arg)
{
	struct db_job *job = todod_xcalloc(1, sizeof *job);
	job->stmt = db_stmts_intern(pool->stmts, sql);
	if (!job->stmt)
		job->sql = xstrdup(sql);
	job->nparams = nparams;
	job->cb = cb;
	job->arg = arg;
	job->queued_ms = clock_mono_ms();
	if (nparams > 0) {
		job->params = todod_xcalloc((size_t)nparams, sizeof *job->params);
		for (int i = 0; i < nparams; i++)
			job->params[i] = params[i] ? xstrdup(params[i]) : NULL;
	}
	if (pool->closing) {
		list_push(&pool->finished, job);
		job->error = xstrdup("database pool closed");
		return;
	}
	if (pool->down) {
		char error[320];
		snprintf(error, sizeof error, UNAVAILABLE "%s", pool->down_reason);
		job_finish(pool, job, NULL, error);
		return;
	}
	list_push(&pool->waiting, job);
	pool_schedule_pump(pool);
}

bool db_pool_ready(struct db_pool *pool, struct todod_err *why)
{
	if (pool_has_live_conn(pool))
		return true;
	if (pool->down)
		todod_err_set(why, UNAVAILABLE "%s", pool->down_reason);
	else
		todod_err_set(why, "database: %s", pool->started ? "connecting" : "not started");
	return false;
}

int db_pool_live(const struct db_pool *pool)
{
	int n = 0;
	for (int i = 0; i < pool->size; i++)
		n += pool->conns[i].state == CONN_UP;
	return n;
}

int db_pool_busy(const struct db_pool *pool)
{
	return pool->waiting.n + pool->running + pool->finished.n;
}

PGconn *db_connect_blocking(const char *conninfo, struct todod_err *err)
{
	/* The timeout goes first so that one given in `conninfo` wins. */
	const char *const keys[] = { "connect_timeout", "dbname", NULL };
	const char *const values[] = { "5", conninfo, NULL };
	PGconn *pg = PQconnectdbParams(keys, values, 1);
	if (!pg) {
		todod_err_set(err, "database: out of memory");
		return NULL;
	}
	if (PQstatus(pg) != CONNECTION_OK) {
		char line[256];
		first_line(PQerrorMessage(pg), line, sizeof line);
		todod_err_set(err, UNAVAILABLE "%s", line);
		PQfinish(pg);
		return NULL;
	}
	PQsetNoticeProcessor(pg, notice_to_log, NULL);
	return pg;
}
