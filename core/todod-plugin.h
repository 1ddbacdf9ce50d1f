/*
 * todod-plugin.h - the public plugin API of todod.
 *
 * A plugin is a shared object that exports exactly one data symbol,
 * `todod_plugin`, a `const struct todod_plugin_def`.  The loader checks the
 * ABI version, the struct size, the build signature, the name and the
 * requirements before it calls any plugin code.
 *
 * Plugins never link against the daemon: every core service arrives through
 * the `struct todod_api` function table handed to init().  Everything a
 * plugin registers through its `struct todod_ctx` (timers, fd watches, HTTP
 * routes, bus subscriptions, services) is owned by that context and removed
 * by the core when the plugin is destroyed or its init() fails.
 *
 * Ownership: arguments are borrowed for the duration of a call unless a
 * comment says otherwise.  json-c objects passed *to* the core are borrowed
 * (the core takes its own reference when it keeps one); json-c objects passed
 * *to a callback* are borrowed for the duration of that callback.
 *
 * Threads: none.  Every callback runs on the loop thread, and no callback
 * may block (no sleeping, no synchronous network or database I/O).
 */
#ifndef TODOD_PLUGIN_H
#define TODOD_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ABI 2.0 is the first promised ABI.  Within 2.x:
 *   - a released function never changes its signature: a changed function
 *     gets a new slot at the end of struct todod_api and a new name, and
 *     the old slot keeps working;
 *   - members are only added, at the end of a struct or in place of one of
 *     its `future` slots, which bumps MINOR;
 *   - every struct a plugin fills starts with `struct_size` (set it to
 *     sizeof the struct), and the core treats members past it as zero.
 * The loader accepts a plugin whose major equals the core's and whose
 * minor is not newer than the core's; anything else is refused by name.
 */
#define TODOD_ABI_MAJOR 2
#define TODOD_ABI_MINOR 3

/* Spare room at the end of a plugin-filled struct, zero until a minor
 * release gives a slot a name (Mosquitto's `future` members). */
#define TODOD_FUTURE_SLOTS 4

/* Things that change the binary layout of what crosses the ABI. */
#define TODOD_STR2(x) #x
#define TODOD_STR(x) TODOD_STR2(x)
#define TODOD_BUILD_SIG \
	"todod-abi" TODOD_STR(TODOD_ABI_MAJOR) \
	"-ptr" TODOD_STR(__SIZEOF_POINTER__) \
	"-long" TODOD_STR(__SIZEOF_LONG__) \
	"-jsonc" TODOD_STR(JSON_C_MAJOR_VERSION)

#if defined(__GNUC__)
#define TODOD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define TODOD_EXPORT __attribute__((visibility("default")))
#else
#define TODOD_PRINTF(f, a)
#define TODOD_EXPORT
#endif

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/* Filled by whoever fails; read by whoever asked.  `text` is one line
 * without a trailing period, e.g. "brokers: no broker address given". */
struct todod_err {
	char text[512];
};

static inline int todod_err_set(struct todod_err *err, const char *fmt, ...)
	TODOD_PRINTF(2, 3);
static inline int todod_err_set(struct todod_err *err, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->text, sizeof err->text, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* Out of memory                                                       */
/* ------------------------------------------------------------------ */

/* todod's policy, the core's and its plugins' alike (the Redis and
 * Dovecot one): an allocation that fails ends the process.  Every event
 * is in the outbox or the broker until it is handled, and the inbox makes
 * a redelivery harmless, so a restart by the supervisor loses nothing;
 * a branch per allocation would, in practice, be code nobody ever ran.
 * abort() leaves a core dump that shows which allocation it was.  These
 * are header-only because a plugin cannot link against the daemon.
 * (A library call that fails, out of memory or not, is still that call's
 * failure, handled where it is made.) */
static inline void todod_out_of_memory(size_t size)
{
	/* stderr is unbuffered: this line needs no memory of its own. */
	fprintf(stderr, "todod: out of memory (%zu bytes wanted); aborting\n", size);
	abort();
}

static inline void *todod_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		todod_out_of_memory(size);
	return p;
}

static inline void *todod_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		todod_out_of_memory(n * size);
	return p;
}

static inline void *todod_xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	if (!q)
		todod_out_of_memory(size);
	return q;
}

static inline char *todod_xstrdup(const char *s)
{
	size_t size = strlen(s) + 1;
	return (char *)memcpy(todod_xmalloc(size), s, size);
}

/* At most `n` bytes of `s`, and a NUL. */
static inline char *todod_xstrndup(const char *s, size_t n)
{
	const char *nul = (const char *)memchr(s, '\0', n);
	size_t len = nul ? (size_t)(nul - s) : n;
	char *p = (char *)todod_xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* ------------------------------------------------------------------ */
/* Results                                                             */
/* ------------------------------------------------------------------ */

/* The outcome of everything asynchronous that can be retried: a delivery
 * answered by a subscriber, a publish, an inbound message settled. */
enum todod_result {
	TODOD_OK = 0, /* done */
	TODOD_RETRY,  /* not now: try again later, with backoff */
	TODOD_DROP,   /* never succeeds: dead-letter now */
};

/* ------------------------------------------------------------------ */
/* Option schema                                                       */
/* ------------------------------------------------------------------ */

/*
 * Every key of a [plugin.NAME] section is declared here.  The core parses,
 * type-checks and range-checks values, applies defaults, and stores the
 * result at `offset` inside a conf struct of `conf_size` bytes that it
 * allocates for the plugin.  Storage per type:
 *
 *   STRING, SECRET  char *        (NULL when unset without default)
 *   INT             int64_t
 *   BOOL            bool
 *   DURATION        int64_t       milliseconds ("250ms", "5s", "2m", "1h", "1d")
 *   SIZE            int64_t       bytes ("512", "64k", "1M", "2G")
 *   ENUM            int           index into `choices`
 *   LIST            struct todod_list  (comma- or blank-separated words)
 *   PREFIX          struct todod_list  one "name=value" item per line whose
 *                                      key starts with `key` (which ends in
 *                                      '.'); `name` is the rest of the key.
 *                                      For pass-through settings, e.g.
 *                                      `librdkafka.`.
 *
 * A SECRET value may be given literally, as `env:NAME` or as
 * `file:/path` (first line, trailing newline removed).  Secrets are never
 * logged, never printed by `todod -t`, and are wiped on free.
 */
enum todod_opt_type {
	TODOD_OPT_STRING = 1,
	TODOD_OPT_INT,
	TODOD_OPT_BOOL,
	TODOD_OPT_DURATION,
	TODOD_OPT_SIZE,
	TODOD_OPT_ENUM,
	TODOD_OPT_LIST,
	TODOD_OPT_SECRET,
	TODOD_OPT_PREFIX,
};

#define TODOD_OPT_REQUIRED  0x1u /* no default; the key must be present */
#define TODOD_OPT_NO_RELOAD 0x2u /* a change needs a restart */

struct todod_list {
	size_t n;
	char **items;
};

/* In a PREFIX family, the value of item `name` ("name=value"), or NULL
 * when the configuration does not set it. */
static inline const char *todod_prefixed_value(const struct todod_list *family,
						const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < family->n; i++)
		if (strncmp(family->items[i], name, len) == 0 && family->items[i][len] == '=')
			return family->items[i] + len + 1;
	return NULL;
}

/* A table of these ends with an entry whose key is NULL.  Write entries
 * with designated initialisers:
 *
 *   static const struct todod_opt my_options[] = {
 *       { .key = "interval", .type = TODOD_OPT_DURATION, .default_value = "30s",
 *         .offset = offsetof(struct my_conf, interval_ms), .min = 1000, .max = 3600000,
 *         .description = "How often to look" },
 *       { .key = NULL },
 *   };
 *
 * The entry size is the definition's `option_size` (TODOD_PLUGIN_HEADER
 * sets it), so entries can grow like the structs below. */
struct todod_opt {
	const char *key;
	enum todod_opt_type type;
	const char *default_value; /* in config syntax; NULL for none */
	unsigned flags;
	size_t offset;             /* offsetof(conf struct, field) */
	int64_t min, max;          /* INT/DURATION/SIZE bounds; min == max == 0: unbounded */
	const char *const *choices; /* ENUM: NULL-terminated */
	const char *description;
	void *future[2];            /* fewer than elsewhere: tables are long */
};

/* ------------------------------------------------------------------ */
/* Opaque handles                                                      */
/* ------------------------------------------------------------------ */

struct todod_ctx;      /* one per loaded plugin */
struct todod_timer;
struct todod_watch;
struct todod_http_req; /* an inbound request, valid until replied to */
struct todod_delivery; /* one event delivered to one subscriber */
struct todod_metric;   /* one Prometheus series */

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

enum todod_log_level {
	TODOD_LOG_ERROR = 0,
	TODOD_LOG_WARN,
	TODOD_LOG_INFO,
	TODOD_LOG_DEBUG,
};

enum todod_metric_kind {
	TODOD_METRIC_COUNTER = 1,
	TODOD_METRIC_GAUGE,
	TODOD_METRIC_HISTOGRAM,
};

/* ------------------------------------------------------------------ */
/* Timers and fd watches                                               */
/* ------------------------------------------------------------------ */

typedef void (*todod_timer_cb)(void *arg);

#define TODOD_TIMER_REPEAT 0x1u /* fire every `ms` until deleted */

#define TODOD_FD_READ  0x02 /* same values as libevent's EV_READ/EV_WRITE */
#define TODOD_FD_WRITE 0x04

typedef void (*todod_fd_cb)(int fd, int what, void *arg);

/* ------------------------------------------------------------------ */
/* Inbound HTTP (routes on the core's one listener)                    */
/* ------------------------------------------------------------------ */

enum todod_http_method {
	TODOD_HTTP_GET = 1 << 0,
	TODOD_HTTP_POST = 1 << 1,
	TODOD_HTTP_PUT = 1 << 2,
	TODOD_HTTP_DELETE = 1 << 3,
	TODOD_HTTP_OPTIONS = 1 << 4,
	TODOD_HTTP_HEAD = 1 << 5,
	TODOD_HTTP_PATCH = 1 << 6,
};

/* Called on the loop thread with a complete request whose body already
 * passed the size limit.  The handler must eventually call http_reply()
 * exactly once, now or later; the request stays valid until then even if
 * the client went away (the reply is then discarded). */
typedef void (*todod_http_handler)(struct todod_http_req *req, void *arg);

/* ------------------------------------------------------------------ */
/* Outbound HTTP and SMTP (one shared libcurl multi handle)            */
/* ------------------------------------------------------------------ */

struct todod_http_request {
	uint32_t struct_size;       /* sizeof(struct todod_http_request) */
	const char *method;         /* "GET", "POST", ... */
	const char *url;
	const char *const *headers; /* "Name: value", NULL-terminated; may be NULL */
	const void *body;           /* copied */
	size_t body_len;
	int64_t timeout_ms;         /* 0: core default */
	void *future[TODOD_FUTURE_SLOTS];
};

enum todod_starttls {
	TODOD_STARTTLS_NEVER = 0,   /* plain text (smtps:// is TLS anyway) */
	TODOD_STARTTLS_OPTIONAL,    /* when the server offers it */
	TODOD_STARTTLS_REQUIRED,    /* fail when the server does not offer it */
};

struct todod_smtp_message {
	uint32_t struct_size;       /* sizeof(struct todod_smtp_message) */
	const char *url;            /* smtp://host:port, smtps://host:port */
	const char *from;           /* envelope sender */
	const char *const *rcpt;    /* envelope recipients, NULL-terminated */
	const void *data;           /* the RFC 5322 message; copied */
	size_t data_len;
	const char *username;       /* NULL: no AUTH */
	const char *password;
	enum todod_starttls starttls;
	int64_t timeout_ms;         /* 0: core default */
	void *future[TODOD_FUTURE_SLOTS];
};

/* Outcome of an outbound request.  `status` is the HTTP status or the
 * last SMTP reply code, 0 when no answer was received; `error` is NULL on
 * transport success, else a human-readable reason. */
struct todod_transfer_result {
	long status;
	const char *error;
	const char *body;           /* response body (HTTP) or last server reply (SMTP), NUL-terminated */
	size_t body_len;
};

typedef void (*todod_transfer_cb)(const struct todod_transfer_result *res, void *arg);

/* ------------------------------------------------------------------ */
/* Events (CloudEvents 1.0, structured JSON)                           */
/* ------------------------------------------------------------------ */

struct todod_event {
	const char *id;
	const char *source;
	const char *type;
	const char *subject;
	const char *time;          /* RFC 3339 UTC */
	const char *topic;
	const char *key;           /* partition key: the task id */
	const char *traceparent;   /* NULL when no trace */
	json_object *data;         /* borrowed */
	const char *raw;           /* the structured JSON on the wire */
	size_t raw_len;
};

/* A subscriber answers every delivery exactly once with bus_answer(),
 * now or later.  `d` stays valid until answered. */
typedef void (*todod_event_handler)(const struct todod_event *ev,
				    struct todod_delivery *d, void *arg);

/*
 * A transport carries events between instances.  Provided as service
 * "transport" by kafka-direct or dapr-transport; when none is provided the
 * core uses its in-process transport.
 */
typedef void (*todod_publish_cb)(enum todod_result result, const char *reason, void *arg);

/*
 * A message a transport received, handed to bus_inbound().  `done` fires
 * exactly once with:
 *   OK     every subscriber handled it (or had before): commit the offset;
 *   RETRY  an outcome could not be recorded: deliver it again later;
 *   DROP   it can never be handled: `reason` says why (not a valid
 *          CloudEvent, or a subscriber gave up after `attempts` tries or
 *          answered DROP).  The transport dead-letters it, then commits.
 */
typedef void (*todod_inbound_cb)(enum todod_result result, const char *reason,
				 int attempts, void *arg);

struct todod_inbound {
	uint32_t struct_size;      /* sizeof(struct todod_inbound) */
	const char *topic;         /* the logical topic, e.g. "task-events" */
	const char *key;           /* may be NULL */
	const void *raw;           /* the message value; copied */
	size_t len;
	int max_attempts;          /* tries per subscriber; 0: [core] max_attempts */
	todod_inbound_cb done;
	void *arg;
	void *future[TODOD_FUTURE_SLOTS];
};

/* Every member up to `self` is required: service_provide() refuses a
 * transport without one. */
struct todod_transport {
	uint32_t struct_size;      /* sizeof(struct todod_transport) */
	const char *name;
	/* Hand one encoded event to the transport; `done` fires once, with OK
	 * when the broker acknowledged it and RETRY when it did not. */
	int (*publish)(void *self, const struct todod_event *ev,
		       todod_publish_cb done, void *arg);
	/* The core asks for the topics its subscribers need. */
	int (*subscribe)(void *self, const char *topic, struct todod_err *err);
	/* 0 when connected and able to publish; else fills `why`. */
	int (*ready)(void *self, struct todod_err *why);
	void *self;
	void *future[TODOD_FUTURE_SLOTS];
};

/*
 * Provided as service "stdio" by a plugin that can serve its protocol on a
 * pair of file descriptors (mcp-tools): `todod mcp-stdio --user NAME` runs
 * without an HTTP listener and hands it stdin and stdout for that user.
 * `closed` fires once when the input ends (the client went away); the
 * daemon then drains and exits.
 */
struct todod_stdio_service {
	uint32_t struct_size;      /* sizeof(struct todod_stdio_service) */
	/* Required. */
	int (*attach)(void *self, int in_fd, int out_fd, int64_t user_id,
		      void (*closed)(void *arg), void *arg, struct todod_err *err);
	void *self;
	void *future[TODOD_FUTURE_SLOTS];
};

/*
 * A trigger asks another plugin to act now: provided as service "trigger"
 * under a name that says what it does ("reminders.due": claim and send the
 * due reminders), found with trigger_get() (ABI 2.1) and fired by a
 * scheduler plugin (a Dapr Job callback) or anyone else.  Several
 * triggers may be provided, one per name.
 */
struct todod_trigger {
	uint32_t struct_size;      /* sizeof(struct todod_trigger) */
	/* Required: the name trigger_get() finds it by. */
	const char *name;
	/* Required.  Start the work and return at once (the work runs on the
	 * loop, later); 0 when accepted, else -1 with `err`.  A fire while
	 * the work runs is not lost: the provider coalesces it into one more
	 * run after the current one. */
	int (*fire)(void *self, struct todod_err *err);
	void *self;
	/* ABI 2.2, optional.  Another plugin now decides when this trigger
	 * fires (it called trigger_drive(), e.g. dapr-transport with a Dapr
	 * Job per reminder); `driver` names it, and is NULL once that plugin
	 * is unloaded.  A provider that also times its own work (a wake-up
	 * timer) may stop doing so while driven, keeping a slow safety net:
	 * otherwise every replica polls what one scheduler already times. */
	void (*driven)(void *self, const char *driver);
	void *future[TODOD_FUTURE_SLOTS - 1];
};

/* ------------------------------------------------------------------ */
/* Secret resolvers                                                    */
/* ------------------------------------------------------------------ */

/*
 * A SECRET option's value may name where the secret is kept: besides
 * env:NAME and file:/path, which the core reads itself, "SCHEME:REF"
 * when a loaded plugin provides service "secrets" under the name SCHEME
 * (a lowercase word: a-z first, then a-z, 0-9, '-' or '_'; not "env" or
 * "file").  Such values are resolved after every plugin's init() and
 * before the database is first connected and any plugin's start(); in
 * init() the option reads as "" (so read SECRET options in start() or
 * later, through the conf pointer, never a copy made in init()).  On
 * SIGHUP they are resolved again before the new options are validated
 * and swapped in.  A value whose SCHEME no plugin provides is a literal,
 * as it always was.
 *
 * `done` gets either the value (borrowed for the call) or `error`, one
 * line that names what failed and never contains the value: the core
 * puts it in start-up and reload errors after the option's file:line.
 */
typedef void (*todod_secret_cb)(const char *value, const char *error, void *arg);

/* Every member up to `self` is required: service_provide() refuses a
 * resolver without one, or whose `scheme` is not the service's name. */
struct todod_secret_resolver {
	uint32_t struct_size;      /* sizeof(struct todod_secret_resolver) */
	const char *scheme;        /* "dapr" for "dapr:STORE/KEY" */
	/* Look up `ref`, the text after "SCHEME:" (borrowed for the call).
	 * 0 when the lookup started: `done` then fires exactly once, from
	 * this call or later from the loop, up to the plugin's destroy()
	 * (what is still open then the core forgets).  -1 with `err` when
	 * it failed at once: `done` does not fire. */
	int (*resolve)(void *self, const char *ref, todod_secret_cb done, void *arg,
		       struct todod_err *err);
	void *self;
	void *future[TODOD_FUTURE_SLOTS];
};

/* ------------------------------------------------------------------ */
/* Time zones                                                          */
/* ------------------------------------------------------------------ */

/* Room for the longest abbreviation a zone may use, and its NUL. */
#define TODOD_TZ_ABBREV_MAX 16

/* An instant as the wall clock of one IANA zone shows it. */
struct todod_local_time {
	/* tm_year .. tm_sec, tm_wday, tm_yday and tm_isdst; on glibc also
	 * tm_gmtoff, and tm_zone pointing at a string that lives as long as
	 * the process (so strftime's %z and %Z work). */
	struct tm tm;
	int32_t utc_offset;                /* seconds east of UTC: 3600 in CET */
	bool is_dst;
	char abbrev[TODOD_TZ_ABBREV_MAX];  /* "CET", "EDT", "+0530" */
};

/* ------------------------------------------------------------------ */
/* Store results                                                       */
/* ------------------------------------------------------------------ */

/*
 * Every store operation is asynchronous and scoped to a user.  The
 * callback receives either a result (`res`, borrowed) or an error:
 *   code  - stable machine code: TASK_NOT_FOUND, INVALID_PRIORITY,
 *           TITLE_TOO_LONG, INVALID_DUE_DATE, DATABASE_UNAVAILABLE, ...
 *   field - the offending input field, or NULL
 *   text  - a sentence for humans
 */
struct todod_store_error {
	const char *code;
	const char *field;
	const char *text;
};

typedef void (*todod_store_cb)(json_object *res,
			       const struct todod_store_error *err, void *arg);

/* The same answer as JSON text (ABI 2.3, store_call_text): `json` (with
 * `len` bytes, NUL-terminated, borrowed for the callback) is a JSON object
 * as PostgreSQL writes it, so with blanks after ':' and ',' and strings
 * escaped as RFC 8259 requires; NULL when `err` is set. */
typedef void (*todod_store_text_cb)(const char *json, size_t len,
				    const struct todod_store_error *err, void *arg);

/* ------------------------------------------------------------------ */
/* Inbox drivers                                                       */
/* ------------------------------------------------------------------ */

/*
 * The inbox remembers which events each consumer has handled, so a
 * redelivery has no second effect.  The database keeps it by default
 * ([core] inbox = database); a plugin can provide service "inbox" and be
 * chosen by its `name` ([core] inbox = NAME), e.g. a Dapr state store.
 * The core batches: what one loop turn asks for is one call.
 */
struct todod_inbox_key {
	const char *consumer;      /* the subscriber's consumer name */
	const char *event_id;      /* the CloudEvent id */
};

/* Fires exactly once per seen()/record() that returned 0.  On success
 * `error` is NULL and `found[i]` answers `keys[i]` (seen: it was handled;
 * record: it was there already); `found` is borrowed for the call.  On
 * failure `error` says why and `found` is NULL: the core redelivers. */
typedef void (*todod_inbox_cb)(const bool *found, size_t n, const char *error, void *arg);

/* Every member up to `self` is required: service_provide() refuses a
 * driver without one.  `keys` (and their strings) are borrowed for the
 * call only.  Neither may block; -1 (with `err`) means the call failed at
 * once and `done` will not fire.  `done` may fire up to the plugin's
 * destroy(); what is still open after that the core settles itself. */
struct todod_inbox_driver {
	uint32_t struct_size;      /* sizeof(struct todod_inbox_driver) */
	const char *name;          /* what [core] inbox names */
	/* Which keys were handled already? */
	int (*seen)(void *self, const struct todod_inbox_key *keys, size_t n,
		    todod_inbox_cb done, void *arg, struct todod_err *err);
	/* Record the keys as handled, first write wins (an existing entry is
	 * kept and reported as found). */
	int (*record)(void *self, const struct todod_inbox_key *keys, size_t n,
		      todod_inbox_cb done, void *arg, struct todod_err *err);
	void *self;
	void *future[TODOD_FUTURE_SLOTS];
};

/* ------------------------------------------------------------------ */
/* The function table                                                  */
/* ------------------------------------------------------------------ */

struct todod_api {
	uint32_t struct_size;

	/* -- logging: prefixed with the plugin's name -- */
	void (*log)(struct todod_ctx *ctx, enum todod_log_level level,
		    const char *fmt, ...) TODOD_PRINTF(3, 4);

	/* -- timers --
	 * A timer's handle lives in the caller's `slot` (NULL when the caller
	 * keeps none), which the core writes and clears, so a handle never
	 * dangles:
	 *   - timer_add/timer_at store the new handle in *slot; a live timer
	 *     already in *slot is deleted first (so re-arming is one call);
	 *     *slot must be NULL or a live handle;
	 *   - a one-shot timer is gone when it fires: the core sets *slot to
	 *     NULL before the callback runs, which may arm it again;
	 *   - timer_del(&t) deletes and sets both t and the timer's slot to
	 *     NULL; timer_del on a NULL handle does nothing.
	 * The slot must stay valid while the timer is live: delete the timer
	 * before freeing the memory that holds its slot.  Timers left at
	 * destroy() are removed without touching their slots.
	 * Both return 0, or -1 (libevent could not make the event) with *slot
	 * as it was. */
	/* Fire after `ms`; again every `ms` when flags has TODOD_TIMER_REPEAT. */
	int (*timer_add)(struct todod_ctx *ctx, struct todod_timer **slot, int64_t ms,
			 unsigned flags, todod_timer_cb cb, void *arg);
	/* Fire once at wall-clock time `epoch_ms` (re-checked against the
	 * real clock, so a clock step does not make it early). */
	int (*timer_at)(struct todod_ctx *ctx, struct todod_timer **slot, int64_t epoch_ms,
			todod_timer_cb cb, void *arg);
	void (*timer_del)(struct todod_timer **t);

	/* -- fd watches (persistent until removed) --
	 * fd_unwatch(&w) removes the watch and sets w to NULL. */
	struct todod_watch *(*fd_watch)(struct todod_ctx *ctx, int fd, int what,
					todod_fd_cb cb, void *arg);
	void (*fd_unwatch)(struct todod_watch **w);

	/* -- inbound HTTP -- */
	/* `path` is exact, or a prefix when it ends in '*'.  `methods` is a
	 * mask of todod_http_method; other methods get 405. */
	int (*http_route)(struct todod_ctx *ctx, unsigned methods, const char *path,
			  todod_http_handler handler, void *arg, struct todod_err *err);
	enum todod_http_method (*http_method)(struct todod_http_req *req);
	const char *(*http_path)(struct todod_http_req *req);   /* without query */
	const char *(*http_query)(struct todod_http_req *req);  /* NULL if none */
	const char *(*http_header)(struct todod_http_req *req, const char *name);
	const void *(*http_body)(struct todod_http_req *req, size_t *len);
	const char *(*http_peer)(struct todod_http_req *req);   /* "ip:port" */
	/* Queue a response header; call before http_reply. */
	void (*http_add_header)(struct todod_http_req *req, const char *name,
				const char *value);
	/* Send the response and release `req`.  `body` is copied. */
	void (*http_reply)(struct todod_http_req *req, int status,
			   const char *content_type, const void *body, size_t len);
	/* {"error":{"code":code,"message":message}} with `status`. */
	void (*http_reply_error)(struct todod_http_req *req, int status,
				 const char *code, const char *message);

	/* -- outbound HTTP / SMTP; `done` fires exactly once unless the
	 *    returned call fails (-1 with err) -- */
	int (*http_request)(struct todod_ctx *ctx, const struct todod_http_request *rq,
			    todod_transfer_cb done, void *arg, struct todod_err *err);
	int (*smtp_send)(struct todod_ctx *ctx, const struct todod_smtp_message *msg,
			 todod_transfer_cb done, void *arg, struct todod_err *err);

	/* -- event bus -- */
	/* Publish outside of a store change: written to the outbox in its own
	 * transaction.  `data` is borrowed.  `done` (may be NULL) fires once:
	 * OK when the event is committed, RETRY with the reason when it could
	 * not be written (nothing was published; try again later). */
	int (*bus_publish)(struct todod_ctx *ctx, const char *topic, const char *type,
			   const char *subject, const char *key, json_object *data,
			   todod_publish_cb done, void *arg, struct todod_err *err);
	/* Subscribe `consumer` (the inbox name, e.g. "email") to `topic`. */
	int (*bus_subscribe)(struct todod_ctx *ctx, const char *topic, const char *consumer,
			     todod_event_handler handler, void *arg, struct todod_err *err);
	/* Answer a delivery.  `reason` is kept with a dead-lettered event. */
	void (*bus_answer)(struct todod_delivery *d, enum todod_result result,
			   const char *reason);
	/* For transports: hand a message received from the broker to the local
	 * subscribers of its topic.  Retries (RETRY answers) happen inside the
	 * core with backoff, without holding up other messages; `msg->done`
	 * fires once when the message is settled (see todod_inbound_cb). */
	int (*bus_inbound)(struct todod_ctx *ctx, const struct todod_inbound *msg,
			   struct todod_err *err);
	/* The delivery's inbox key, for store operations that must take effect
	 * at most once per event (see store_call). */
	const char *(*delivery_consumer)(struct todod_delivery *d);
	const char *(*delivery_event_id)(struct todod_delivery *d);
	int (*delivery_attempt)(struct todod_delivery *d); /* 1 for the first */

	/* -- service registry --
	 * `vtable` is borrowed for as long as the plugin is loaded.  A kind
	 * the core uses ("transport": struct todod_transport, "stdio": struct
	 * todod_stdio_service, "inbox", "trigger", "secrets": struct
	 * todod_secret_resolver) is checked when provided: its struct_size must
	 * cover the struct of the ABI that introduced the kind and its
	 * required members must be set, else
	 * -1 with `err` naming what is missing.  Other kinds are contracts
	 * between plugins and are stored unchecked. */
	int (*service_provide)(struct todod_ctx *ctx, const char *kind, const char *name,
			       const void *vtable, struct todod_err *err);
	const void *(*service_get)(struct todod_ctx *ctx, const char *kind, const char **name);

	/* -- store --
	 * `op` names a typed operation (see doc/plugin-api.md for the list
	 * and the shape of `args` and of the result), e.g. "task.create" with
	 * {"title":"...","priority":"high"}.  `user_id` scopes everything.
	 * `once_consumer`/`once_event_id` (both or neither) make the change
	 * take effect at most once per event: a repeat answers
	 * code "ALREADY_HANDLED".  Returns -1 (and `err`), without calling
	 * `cb`, for an unknown op, non-object args or half a once-key. */
	int (*store_call)(struct todod_ctx *ctx, const char *op, int64_t user_id,
			  json_object *args, const char *once_consumer,
			  const char *once_event_id, todod_store_cb cb, void *arg,
			  struct todod_err *err);

	/* -- identity -- */
	const char *(*instance_id)(void);        /* [core] instance, else the host name */
	int64_t (*now_ms)(void);                 /* wall clock, milliseconds */

	/* -- metrics --
	 * One series of family `name` per distinct `labels` (already formatted:
	 * `topic="task-events",partition="0"`, or "" for none); asking again
	 * returns the same handle.  Histogram buckets are in seconds, 0.5 ms to
	 * 10 s.  Series live as long as the process (/metrics keeps counting
	 * across a reload). */
	struct todod_metric *(*metric)(struct todod_ctx *ctx, enum todod_metric_kind kind,
				       const char *name, const char *help, const char *labels);
	void (*metric_add)(struct todod_metric *m, double v);        /* counter, gauge */
	void (*metric_set)(struct todod_metric *m, double v);        /* gauge */
	void (*metric_observe)(struct todod_metric *m, double secs); /* histogram */

	/* -- time zones --
	 * Conversions in any IANA zone ("Europe/Berlin"), read from the
	 * system's zone database without changing the process's TZ (which
	 * would not be thread-safe); -1 with `err` for a name that is no zone
	 * ("'Mars/Olympus' is not a known time zone"; paths and ".." are
	 * refused) or a time too far from 1970.  A zone's file is read once,
	 * on first use, and kept. */
	/* `instant` (Unix seconds) on the zone's wall clock. */
	int (*tz_to_local)(const char *zone, int64_t instant, struct todod_local_time *out,
			   struct todod_err *err);
	/* The instant `local` names in the zone: tm_year .. tm_sec, normalised
	 * as timegm does (tm_isdst, tm_wday, tm_yday are ignored).  A time a
	 * change to DST skips moves forward by the gap (02:30 becomes 03:30);
	 * a time a change back repeats means its first instant. */
	int (*tz_from_local)(const char *zone, const struct tm *local, int64_t *instant,
			     struct todod_err *err);

	/* -- ABI 2.1 -- */
	/* The trigger (service kind "trigger") provided under `name`, or NULL
	 * when none is.  Look it up each time it is fired, not once: its
	 * provider may be unloaded by a reload. */
	const struct todod_trigger *(*trigger_get)(struct todod_ctx *ctx, const char *name);

	/* -- ABI 2.2: clocks and RFC 3339 text, the core's own -- */
	/* The monotonic clock in microseconds, for timeouts and durations: a
	 * step of the wall clock (NTP, suspend) neither stretches nor cuts
	 * them.  Only differences mean anything. */
	int64_t (*mono_us)(void);
	/* An RFC 3339 date-time (section 5.6): "2026-11-27T10:00:00Z", 'T' and
	 * 'Z' in either case, an optional fraction (milliseconds kept, the
	 * rest cut), Z or a +hh:mm/-hh:mm offset.  The day must exist in its
	 * month; a leap second counts as the next second.  0 with the instant
	 * in *epoch_ms; -1 for NULL and anything else. */
	int (*rfc3339_parse)(const char *s, int64_t *epoch_ms);
	/* `epoch_ms` as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC), the form the core
	 * writes, into `buf`: the text's length, or 0 with buf "" when `size`
	 * is below TODOD_RFC3339_SIZE or the year is outside 0000-9999. */
	size_t (*rfc3339_format)(int64_t epoch_ms, char *buf, size_t size);

	/* -- ABI 2.2: driving a trigger -- */
	/* As trigger_get(), and from now on the calling plugin drives the
	 * trigger: its provider's driven() hears the plugin's name now (or as
	 * soon as one provides `name`, when none does yet) and NULL when the
	 * plugin is unloaded.  Calling it again changes nothing. */
	const struct todod_trigger *(*trigger_drive)(struct todod_ctx *ctx, const char *name);

	/* -- ABI 2.3: store answers as text -- */
	/* As store_call(), with the result as the database's JSON text instead
	 * of a parsed object: for a caller that only passes it on (an MCP
	 * tool's reply), parsing and printing it again would be wasted. */
	int (*store_call_text)(struct todod_ctx *ctx, const char *op, int64_t user_id,
			       json_object *args, const char *once_consumer,
			       const char *once_event_id, todod_store_text_cb cb, void *arg,
			       struct todod_err *err);
};

/* What rfc3339_format() writes, with its NUL. */
#define TODOD_RFC3339_SIZE 25

/* ------------------------------------------------------------------ */
/* The definition a plugin exports                                     */
/* ------------------------------------------------------------------ */

typedef void (*todod_drained_cb)(struct todod_ctx *ctx);

struct todod_plugin_def {
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t struct_size;        /* sizeof(struct todod_plugin_def) at build time */
	const char *build_sig;       /* TODOD_BUILD_SIG */

	const char *name;            /* must match the [plugin.NAME] section */
	const char *version;
	const char *description;
	const char *const *requires; /* plugin names, NULL-terminated; may be NULL */

	const struct todod_opt *options; /* terminated by an entry with key NULL */
	uint32_t option_size;        /* sizeof(struct todod_opt) at build time */
	size_t conf_size;

	/* Pure cross-field checks; no I/O.  Powers `todod -t`. */
	int (*validate)(const void *conf, struct todod_err *err);
	/* Required.  Allocate state and register through ctx; no blocking I/O.
	 * On failure every registration made through ctx is rolled back. */
	int (*init)(const struct todod_api *api, struct todod_ctx *ctx,
		    const void *conf, void **state, struct todod_err *err);
	/* After every plugin's init, once SECRET references to plugins'
	 * resolvers are resolved (the loop runs for that) and the database
	 * is prepared; before the event relay starts and the loop is handed
	 * over. */
	int (*start)(void *state, struct todod_err *err);
	/* SIGHUP: the new options (validated) replace the old ones if this
	 * returns 0; -1 refuses them.  A plugin without reconfigure keeps its
	 * options until a restart. */
	int (*reconfigure)(void *state, const void *old_conf, const void *new_conf,
			   struct todod_err *err);
	/* Shutdown step 1, loop still running: finish in-flight work, then
	 * call done(ctx) once.  NULL: nothing to drain. */
	void (*drain)(void *state, struct todod_ctx *ctx, todod_drained_cb done);
	/* Shutdown step 2, loop stopped: free state.  Registrations left in
	 * place are removed by the core right after, without callbacks. */
	void (*destroy)(void *state);
	/* /readyz: 0 when ready, else -1 with a reason. */
	int (*health)(void *state, struct todod_err *why);

	void *future[8];
};

#define TODOD_PLUGIN_HEADER \
	.abi_major = TODOD_ABI_MAJOR, .abi_minor = TODOD_ABI_MINOR, \
	.struct_size = sizeof(struct todod_plugin_def), .build_sig = TODOD_BUILD_SIG, \
	.option_size = sizeof(struct todod_opt)

/* In the plugin:  TODOD_PLUGIN = { TODOD_PLUGIN_HEADER, .name = "x", ... }; */
#define TODOD_PLUGIN TODOD_EXPORT const struct todod_plugin_def todod_plugin

#ifdef __cplusplus
}
#endif

#endif /* TODOD_PLUGIN_H */
