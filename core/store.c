/* store.c - task, category, tag and user operations.
 *
 * Each operation is one PL/pgSQL function (core/sql/002_tasks.sql) named
 * after it: "task.create" runs todod_task_create(user, args, consumer,
 * event id).  This file only checks the request, sends it, and turns the
 * answer into json-c or into a todod_store_error. */
#include "store.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "db.h"
#include "log.h"
#include "rrule.h"

struct store {
	struct event_base *base;
	struct db_pool *pool;
	/* [core] max_categories_per_user and max_tags_per_user, as the
	 * statements that may create labels hand them to SQL */
	char max_categories[24], max_tags[24];
	void (*events_committed)(void *arg);
	void *events_committed_arg;
};

/* The operations that may create a category or a tag: they run with the
 * quotas set (005_label_quotas.sql).  Recurrence copies a task's tags by
 * id and creates none. */
static const char *const label_creating_ops[] = {
	"category.create", "tag.create", "task.create", "task.update", "task.tag_add", NULL,
};

/* The operations whose functions never write to the outbox.  Every other
 * one may (todod_task_emit, the reminder claim), so the relay is told
 * when it commits: a new operation is at worst told about needlessly. */
static const char *const eventless_ops[] = {
	"task.get",        "task.list",       "task.search",     "user.get",
	"user.by_token",   "user.by_name",    "reminder.next_due",
	"category.create", "category.list",   "category.update", "category.delete",
	"tag.create",      "tag.list",        "tag.update",      "tag.delete",
	NULL,
};

static const char *const op_names[] = {
	"task.create",     "task.get",        "task.list",       "task.update",
	"task.complete",   "task.uncomplete", "task.delete",     "task.search",
	"category.create", "category.list",   "category.update", "category.delete",
	"tag.create",      "tag.list",        "tag.update",      "tag.delete",
	"task.tag_add",    "task.tag_remove", "user.get",        "user.by_token",
	"user.by_name",
	"task.recur", /* a recurring task's successor: see recur_start */
	/* system operations: they ignore the user id */
	"reminder.next_due", "reminder.claim_due",
	NULL,
};

struct store_request {
	todod_store_cb cb;
	todod_store_text_cb text_cb; /* instead of cb: the answer as JSON text */
	void *arg;
	const char *op; /* points into op_names */
	struct store *writes_events; /* the store to tell on success, or NULL */
};

/* `instance` is not needed yet: events take their source when relayed. */
struct store *store_new(struct event_base *base, struct db_pool *pool)
{
	struct store *st = todod_xcalloc(1, sizeof *st);
	st->base = base;
	st->pool = pool;
	return st;
}

void store_free(struct store *st)
{
	free(st);
}

void store_set_label_quotas(struct store *st, int64_t max_categories, int64_t max_tags)
{
	snprintf(st->max_categories, sizeof st->max_categories, "%" PRId64, max_categories);
	snprintf(st->max_tags, sizeof st->max_tags, "%" PRId64, max_tags);
}

void store_on_events_committed(struct store *st, void (*hook)(void *arg), void *arg)
{
	st->events_committed = hook;
	st->events_committed_arg = arg;
}

void store_events_committed(struct store *st)
{
	if (st->events_committed)
		st->events_committed(st->events_committed_arg);
}

static bool listed(const char *const *names, const char *op)
{
	for (const char *const *name = names; *name; name++)
		if (strcmp(*name, op) == 0)
			return true;
	return false;
}

struct db_pool *store_pool(struct store *st)
{
	return st->pool;
}

const char *const *store_ops(void)
{
	return op_names;
}

static const char *find_op(const char *op)
{
	for (const char *const *name = op_names; op && *name; name++)
		if (strcmp(*name, op) == 0)
			return *name;
	return NULL;
}

/* Whether a failure is the database being out of reach rather than the
 * statement being wrong: no server diagnostics at all (libpq's own error),
 * connection exceptions (class 08), or the server shutting down or
 * starting up (57P01..57P03). */
static bool is_unavailable(const char *sqlstate)
{
	return !sqlstate || strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0 ||
	       strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0;
}

static void answer_error(const struct store_request *rq, const struct todod_store_error *e)
{
	if (rq->text_cb)
		rq->text_cb(NULL, 0, e, rq->arg);
	else
		rq->cb(NULL, e, rq->arg);
}

/* An answer the store made itself (recurrence), as the caller wants it. */
static void answer_object(const struct store_request *rq, json_object *obj)
{
	if (!rq->text_cb) {
		rq->cb(obj, NULL, rq->arg);
		return;
	}
	size_t len = 0;
	const char *text = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
	rq->text_cb(text, len, NULL, rq->arg);
}

static void report_error(struct store_request *rq, PGresult *res, const char *error)
{
	const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	struct todod_store_error e = { 0 };

	if (sqlstate && strncmp(sqlstate, "TD", 2) == 0) {
		const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
		e.code = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		e.field = detail && *detail ? detail : NULL;
		e.text = hint ? hint : e.code;
	} else if (is_unavailable(sqlstate)) {
		e.code = "DATABASE_UNAVAILABLE";
		e.text = error;
	} else {
		log_error("store %s failed: %s (SQLSTATE %s)", rq->op, error, sqlstate);
		e.code = "INTERNAL_ERROR";
		e.text = "the store failed unexpectedly; the server log has the details";
	}
	answer_error(rq, &e);
}

/* Whether `res` is the one jsonb value a store function answers; if
 * not, the error has gone to the caller. */
static bool answer_present(struct store_request *rq, PGresult *res, const char *error)
{
	if (error) {
		report_error(rq, res, error);
		return false;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0)) {
		log_error("store %s: expected one jsonb value, got %d rows", rq->op, PQntuples(res));
		const struct todod_store_error e = { "INTERNAL_ERROR", NULL,
						     "the store returned an unexpected answer" };
		answer_error(rq, &e);
		return false;
	}
	return true;
}

/* That value parsed, or NULL once the error has gone to the caller. */
static json_object *answer_json(struct store_request *rq, PGresult *res, const char *error)
{
	if (!answer_present(rq, res, error))
		return NULL;
	json_object *obj = json_tokener_parse(PQgetvalue(res, 0, 0));
	if (!obj) {
		log_error("store %s: the database returned invalid JSON", rq->op);
		const struct todod_store_error e = { "INTERNAL_ERROR", NULL,
						     "the store returned invalid JSON" };
		answer_error(rq, &e);
	}
	return obj;
}

/* A text answer is PostgreSQL's output of a jsonb value, valid JSON by
 * construction, handed on unparsed: the caller that wants text (an MCP
 * reply) would only serialize it again. */
static void on_result(PGresult *res, const char *error, void *arg)
{
	struct store_request *rq = arg;
	if (rq->text_cb) {
		if (answer_present(rq, res, error)) {
			if (rq->writes_events)
				store_events_committed(rq->writes_events);
			rq->text_cb(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), NULL,
				    rq->arg);
		}
		free(rq);
		return;
	}
	json_object *obj = answer_json(rq, res, error);
	if (obj) {
		if (rq->writes_events)
			store_events_committed(rq->writes_events);
		rq->cb(obj, NULL, rq->arg);
		json_object_put(obj);
	}
	free(rq);
}

/* A request refused before it reached SQL: its answer must still arrive
 * on a later loop turn, like every store answer. */
struct store_refusal {
	struct store_request answer;
	const char *code;
	char field[64]; /* "" for none */
	char text[sizeof ((struct todod_err *)NULL)->text];
};

static void deliver_refusal(evutil_socket_t fd, short what, void *arg)
{
	struct store_refusal *r = arg;
	const struct todod_store_error e = { r->code, r->field[0] ? r->field : NULL, r->text };
	answer_error(&r->answer, &e);
	free(r);
}

static void refuse_later(struct store *st, const char *code, const char *field,
			 const char *text, const struct store_request *answer)
{
	struct store_refusal *r = todod_xmalloc(sizeof *r);
	*r = (struct store_refusal){ *answer, code, "", "" };
	snprintf(r->field, sizeof r->field, "%s", field ? field : "");
	snprintf(r->text, sizeof r->text, "%s", text);
	static const struct timeval now = { 0, 0 };
	if (event_base_once(st->base, -1, EV_TIMEOUT, deliver_refusal, r, &now) != 0)
		abort();
}

/* PostgreSQL's text cannot hold a NUL character (jsonb refuses \u0000),
 * so a string with one is the caller's mistake, refused before SQL. */
static bool holds_nul(json_object *value)
{
	switch (json_object_get_type(value)) {
	case json_type_string:
		return strlen(json_object_get_string(value)) !=
		       (size_t)json_object_get_string_len(value);
	case json_type_object: {
		json_object_object_foreach(value, key, member) {
			(void)key;
			if (holds_nul(member))
				return true;
		}
		return false;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(value); i++)
			if (holds_nul(json_object_array_get_idx(value, i)))
				return true;
		return false;
	default:
		return false;
	}
}

/* The argument that holds a NUL character, or NULL. */
static const char *argument_with_nul(json_object *args)
{
	json_object_object_foreach(args, key, value)
		if (holds_nul(value))
			return key;
	return NULL;
}

/* task.create and task.update keep only recurrence rules the recurrence
 * plugin can expand, and keep them in normal form.  *send becomes a new
 * reference to what to send: `args` itself, or a copy with the rule
 * normalised (the caller's object is not ours to change).  A null or
 * blank rule clears it and passes untouched. */
static int normalise_rrule(const char *op, json_object *args, json_object **send,
			   struct todod_err *why)
{
	json_object *value;
	const char *text = NULL;
	if (args && (strcmp(op, "task.create") == 0 || strcmp(op, "task.update") == 0) &&
	    json_object_object_get_ex(args, "rrule", &value) &&
	    json_object_is_type(value, json_type_string))
		text = json_object_get_string(value);
	if (!text || text[strspn(text, " \t\r\n")] == '\0') {
		*send = json_object_get(args);
		return 0;
	}

	struct rrule rule;
	char normal[RRULE_TEXT_MAX];
	if (rrule_parse(text, &rule, why) != 0)
		return -1;
	rrule_format(&rule, normal, sizeof normal);
	*send = json_object_new_object();
	json_object_object_foreach(args, key, member)
		json_object_object_add(*send, key, json_object_get(member));
	json_object_object_add(*send, "rrule", json_object_new_string(normal));
	return 0;
}

/* ---- task.recur ----
 * The successor of a completed recurring task.  The rule is expanded here
 * (rrule.c), between the two statements of 004_recurrence.sql: one reads
 * the rule and the series start, the other takes the once-key and writes
 * the successor with its event, so a repeated event changes nothing. */

struct recur_request {
	struct store_request answer;
	struct store *st;
	char user[24];
	char *consumer, *event; /* the once-key, or both NULL */
};

static void recur_free(struct recur_request *rr)
{
	free(rr->consumer);
	free(rr->event);
	free(rr);
}

static void recur_refuse(struct recur_request *rr, const char *code, const char *text)
{
	const struct todod_store_error e = { code, "rrule", text };
	answer_error(&rr->answer, &e);
}

/* Answers {"ended": true, "reason": ...} or {"skipped": true, ...}. */
static void recur_finish(struct recur_request *rr, const char *flag, const char *reason)
{
	json_object *res = json_object_new_object();
	json_object_object_add(res, flag, json_object_new_boolean(1));
	json_object_object_add(res, "reason", json_object_new_string(reason));
	answer_object(&rr->answer, res);
	json_object_put(res);
}

static int64_t member_int(json_object *obj, const char *key)
{
	json_object *value;
	return json_object_object_get_ex(obj, key, &value) ? json_object_get_int64(value) : 0;
}

static const char *member_text(json_object *obj, const char *key)
{
	json_object *value;
	return json_object_object_get_ex(obj, key, &value) ? json_object_get_string(value) : "";
}

static void recur_create(struct recur_request *rr, json_object *source, int64_t due)
{
	json_object *args = json_object_new_object();
	json_object_object_add(args, "id", json_object_new_int64(member_int(source, "id")));
	json_object_object_add(args, "due", json_object_new_int64(due));
	json_object_object_add(args, "start", json_object_new_int64(member_int(source, "start")));
	json_object_object_add(args, "start_occurrence",
			       json_object_new_int64(member_int(source, "start_occurrence")));
	const char *params[] = {
		rr->user,
		json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN),
		rr->consumer,
		rr->event,
	};
	struct store_request *rq = todod_xmalloc(sizeof *rq);
	*rq = rr->answer;
	db_query(rr->st->pool, "SELECT todod_task_recur_create($1::bigint, $2::jsonb, $3, $4)", 4,
		 params, on_result, rq);
	json_object_put(args);
}

/* `source` is what todod_task_recur_source answered. */
static void recur_expand(struct recur_request *rr, json_object *source)
{
	json_object *skip;
	if (json_object_object_get_ex(source, "skip", &skip)) {
		recur_finish(rr, "skipped", json_object_get_string(skip));
		return;
	}
	struct rrule rule;
	struct todod_err why;
	if (rrule_parse(member_text(source, "rrule"), &rule, &why) != 0) {
		recur_refuse(rr, "INVALID_RECURRENCE_RULE", why.text);
		return;
	}
	/* A series first seen at a later task is counted from that task:
	 * it is occurrence 1 of what is left, and COUNT shrinks to match. */
	int64_t start_occurrence = member_int(source, "start_occurrence");
	int64_t occurrence = member_int(source, "occurrence") - start_occurrence + 1;
	bool count_spent = rule.count > 0 && rule.count <= start_occurrence - 1;
	if (rule.count > 0 && !count_spent)
		rule.count -= (int)(start_occurrence - 1);

	int64_t due = 0;
	int rc = count_spent ? 1 :
		rrule_next(&rule, member_int(source, "start"), member_text(source, "tz"),
			   occurrence < 1 ? 1 : (int)occurrence, &due, &why);
	if (rc < 0)
		recur_refuse(rr, "INVALID_RECURRENCE_RULE", why.text);
	else if (rc == RRULE_END_OF_CALENDAR)
		recur_finish(rr, "ended", "no date after 9999-12-31");
	else if (rc > 0)
		recur_finish(rr, "ended", rule.count > 0 ? "COUNT reached" : "UNTIL passed");
	else
		recur_create(rr, source, due);
}

static void on_recur_source(PGresult *res, const char *error, void *arg)
{
	struct recur_request *rr = arg;
	json_object *source = answer_json(&rr->answer, res, error);
	if (source) {
		recur_expand(rr, source);
		json_object_put(source);
	}
	recur_free(rr);
}

static void recur_start(struct store *st, const struct store_request *answer, int64_t user_id,
			const char *args_json, const char *once_consumer, const char *once_event_id)
{
	struct recur_request *rr = todod_xcalloc(1, sizeof *rr);
	/* Only the second statement writes (recur_create copies this). */
	rr->answer = *answer;
	rr->answer.writes_events = st;
	rr->st = st;
	snprintf(rr->user, sizeof rr->user, "%" PRId64, user_id);
	if (once_consumer) {
		rr->consumer = todod_xstrdup(once_consumer);
		rr->event = todod_xstrdup(once_event_id);
	}
	const char *params[] = { rr->user, args_json, rr->consumer, rr->event };
	db_query(st->pool, "SELECT todod_task_recur_source($1::bigint, $2::jsonb, $3, $4)", 4,
		 params, on_recur_source, rr);
}

/* ---- task.get ----
 * The common read, {"id": N} without a once-key, is one plain statement
 * on the task_snapshots view (008_task_snapshots.sql).  COALESCE calls
 * todod_task_get only when the view has no such task of that user, so a
 * refusal (no such user or task) is the function's, code and all. */
#define TASK_GET_SQL                                                                         \
	"SELECT coalesce((SELECT task FROM task_snapshots"                                   \
	" WHERE id = $2::bigint AND user_id = $1::bigint),"                                  \
	" todod_task_get($1::bigint, $3::jsonb, NULL, NULL))"

/* Whether `args` is just {"id": N} with N an integer todod_arg_int reads
 * (at most 18 digits); N goes to `id` as text. */
static bool plain_task_id(json_object *args, char *id, size_t size)
{
	json_object *value;
	if (!args || json_object_object_length(args) != 1 ||
	    !json_object_object_get_ex(args, "id", &value) ||
	    !json_object_is_type(value, json_type_int))
		return false;
	int64_t n = json_object_get_int64(value);
	if (n <= -1000000000000000000 || n >= 1000000000000000000)
		return false;
	snprintf(id, size, "%" PRId64, n);
	return true;
}

/* store_call and store_call_text: `answer` says whom to answer how. */
static int store_start(struct store *st, const char *op, int64_t user_id, json_object *args,
		       const char *once_consumer, const char *once_event_id,
		       struct store_request answer, struct todod_err *err)
{
	const char *name = find_op(op);
	if (!name)
		return todod_err_set(err, "unknown store operation \"%s\"", op ? op : "(null)");
	if (args && !json_object_is_type(args, json_type_object))
		return todod_err_set(err, "store operation %s: arguments must be a JSON object", name);
	if (!once_consumer != !once_event_id)
		return todod_err_set(err, "store operation %s: give both once_consumer and "
					  "once_event_id, or neither", name);
	answer.op = name;

	const char *nul_field = args ? argument_with_nul(args) : NULL;
	if (nul_field) {
		char text[200];
		snprintf(text, sizeof text, "\"%.60s\" contains a NUL character (\\u0000), which "
			 "cannot be stored; remove it.", nul_field);
		refuse_later(st, "INVALID_ARGUMENT", nul_field, text, &answer);
		return 0;
	}

	if (strcmp(name, "task.recur") == 0) {
		recur_start(st, &answer, user_id,
			    args ? json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN) : "{}",
			    once_consumer, once_event_id);
		return 0;
	}

	json_object *send;
	struct todod_err why;
	if (normalise_rrule(name, args, &send, &why) != 0) {
		refuse_later(st, "INVALID_RECURRENCE_RULE", "rrule", why.text, &answer);
		return 0;
	}

	/* The name was checked against op_names, so it is safe to splice:
	 * "task.tag_add" -> todod_task_tag_add.  The quotas are set in the
	 * FROM clause, which runs before the function, in the same
	 * transaction. */
	bool quotas = listed(label_creating_ops, name);
	char sql[160];
	int n = snprintf(sql, sizeof sql, "SELECT todod_%s($1::bigint, $2::jsonb, $3, $4)%s", name,
			 quotas ? " FROM todod_label_quotas_set($5, $6)" : "");
	for (char *p = sql + strlen("SELECT todod_"); p < sql + n && *p != '('; p++)
		if (*p == '.')
			*p = '_';

	char user[24], task_id[24];
	snprintf(user, sizeof user, "%" PRId64, user_id);
	const char *args_json =
		send ? json_object_to_json_string_ext(send, JSON_C_TO_STRING_PLAIN) : "{}";
	const char *params[] = {
		user, args_json, once_consumer, once_event_id, st->max_categories, st->max_tags,
	};
	struct store_request *rq = todod_xmalloc(sizeof *rq);
	*rq = answer;
	rq->writes_events = listed(eventless_ops, name) ? NULL : st;
	if (strcmp(name, "task.get") == 0 && !once_consumer &&
	    plain_task_id(send, task_id, sizeof task_id)) {
		const char *get_params[] = { user, task_id, args_json };
		db_query(st->pool, TASK_GET_SQL, 3, get_params, on_result, rq);
	} else {
		db_query(st->pool, sql, quotas ? 6 : 4, params, on_result, rq);
	}
	json_object_put(send);
	return 0;
}

int store_call(struct store *st, const char *op, int64_t user_id, json_object *args,
	       const char *once_consumer, const char *once_event_id,
	       todod_store_cb cb, void *arg, struct todod_err *err)
{
	const struct store_request answer = { .cb = cb, .arg = arg };
	return store_start(st, op, user_id, args, once_consumer, once_event_id, answer, err);
}

int store_call_text(struct store *st, const char *op, int64_t user_id, json_object *args,
		    const char *once_consumer, const char *once_event_id,
		    todod_store_text_cb cb, void *arg, struct todod_err *err)
{
	const struct store_request answer = { .text_cb = cb, .arg = arg };
	return store_start(st, op, user_id, args, once_consumer, once_event_id, answer, err);
}
