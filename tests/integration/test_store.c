/* test_store.c - the task store against a real PostgreSQL.
 *
 * TODOD_TEST_DSN (a libpq conninfo) names a server where this test may
 * create and drop a database of its own.  Migrations are applied to it,
 * then every store operation runs through the async pool on a real
 * event_base, and the outbox is checked for the events each change must
 * leave; the event statements (outbox, inbox, dead letters) answer typed
 * values.  When TODOD_TEST_PG_STOP and TODOD_TEST_PG_START are shell
 * commands that stop and start that server, the pool is also shown to
 * survive a database restart. */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "store.h"

#include "../unit/tap.h"

static struct event_base *base;
static struct db_pool *pool;
static struct store *st;
static PGconn *admin; /* blocking, for set-up and for reading the outbox */
static int64_t alice, bob;

/* ---- driving the loop --------------------------------------------------- */

static bool timed_out;

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	timed_out = true;
}

/* Runs the loop until *counter reaches `want`, at most `seconds`. */
static bool wait_for(const int *counter, int want, int seconds)
{
	struct timeval tv = { seconds, 0 };
	struct event *deadline = evtimer_new(base, on_deadline, NULL);
	timed_out = false;
	evtimer_add(deadline, &tv);
	while (*counter < want && !timed_out)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(deadline);
	return *counter >= want;
}

struct outcome {
	int done;
	json_object *res;
	char code[64], field[64], text[512];
};

static void on_store(json_object *res, const struct todod_store_error *e, void *arg)
{
	struct outcome *o = arg;
	o->done = 1;
	if (res) {
		o->res = json_object_get(res);
		return;
	}
	snprintf(o->code, sizeof o->code, "%s", e->code);
	snprintf(o->field, sizeof o->field, "%s", e->field ? e->field : "");
	snprintf(o->text, sizeof o->text, "%s", e->text ? e->text : "");
}

/* The last call's outcome: its result stays valid until the next call. */
static struct outcome last;

static json_object *call_once(const char *op, int64_t user, const char *args,
			      const char *consumer, const char *event_id)
{
	json_object_put(last.res);
	memset(&last, 0, sizeof last);
	json_object *a = args ? json_tokener_parse(args) : NULL;
	if (args && !a) {
		snprintf(last.code, sizeof last.code, "BAD_TEST_JSON");
		return NULL;
	}
	struct todod_err err;
	if (store_call(st, op, user, a, consumer, event_id, on_store, &last, &err) != 0) {
		snprintf(last.code, sizeof last.code, "CALL_REFUSED");
		snprintf(last.text, sizeof last.text, "%s", err.text);
	} else if (!wait_for(&last.done, 1, 20)) {
		snprintf(last.code, sizeof last.code, "TIMEOUT");
	}
	json_object_put(a);
	return last.res;
}

static json_object *call(const char *op, int64_t user, const char *args)
{
	return call_once(op, user, args, NULL, NULL);
}

static void expect_error(const char *op, int64_t user, const char *args, const char *code,
			 const char *field)
{
	json_object *res = call(op, user, args);
	ok(!res && strcmp(last.code, code) == 0 && strcmp(last.field, field ? field : "") == 0,
	   "%s %s -> %s (%s)  [got %s field '%s': %s]", op, args, code, field ? field : "-",
	   res ? "a result" : last.code, last.field, last.text);
}

/* ---- reading results ------------------------------------------------------ */

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v = get(o, key);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int64_t num(json_object *o, const char *key)
{
	return json_object_get_int64(get(o, key));
}

static bool is_null(json_object *o, const char *key)
{
	return o && json_object_object_get_ex(o, key, NULL) && !get(o, key);
}

/* A JSON value as compact text, for comparing arrays and objects. */
static const char *text(json_object *o, const char *key)
{
	return json_object_to_json_string_ext(get(o, key), JSON_C_TO_STRING_PLAIN);
}

/* ---- the admin connection -------------------------------------------------- */

static char sql_value[4096];

/* First column of the first row as text ("" for none or NULL). */
static const char *sql(const char *query)
{
	PGresult *res = PQexec(admin, query);
	sql_value[0] = '\0';
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
		snprintf(sql_value, sizeof sql_value, "%s", PQgetvalue(res, 0, 0));
	else if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
		snprintf(sql_value, sizeof sql_value, "ERROR %s", PQresultErrorMessage(res));
	PQclear(res);
	return sql_value;
}

static long outbox_count(void)
{
	return atol(sql("SELECT count(*) FROM outbox"));
}

/* ---- connection strings ------------------------------------------------------ */

/* `dsn` with dbname replaced, as key=value text (works for URIs too). */
static char *dsn_with_db(const char *dsn, const char *dbname)
{
	PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
	if (!opts)
		return NULL;
	size_t cap = strlen(dsn) * 2 + strlen(dbname) + 64, len = 0;
	char *out = calloc(1, cap);
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		const char *v = strcmp(o->keyword, "dbname") == 0 ? NULL : o->val;
		if (!v)
			continue;
		len += (size_t)snprintf(out + len, cap - len, "%s='", o->keyword);
		for (; *v && len + 4 < cap; v++) {
			if (*v == '\'' || *v == '\\')
				out[len++] = '\\';
			out[len++] = *v;
		}
		len += (size_t)snprintf(out + len, cap - len, "' ");
	}
	snprintf(out + len, cap - len, "dbname='%s'", dbname);
	PQconninfoFree(opts);
	return out;
}

/* ---- migrations ------------------------------------------------------------------ */

static void test_migrations(void)
{
	struct todod_err err = { "" };
	int applied = migrate_apply(admin, &err);
	ok(applied >= 2, "migrate_apply on an empty database applies every migration (%d) %s",
	   applied, err.text);
	ok(migrate_apply(admin, &err) == 0, "a second run applies nothing");
	char every[128] = "";
	for (const struct migration *m = migrations; m->version; m++)
		snprintf(every + strlen(every), sizeof every - strlen(every), "%s%d", *every ? "," : "",
			 m->version);
	is_str(sql("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version"),
	       every, "schema_version records every migration");

	/* As if 001 had been edited after this database applied it. */
	sql("UPDATE schema_version SET checksum = 'x' || checksum WHERE version = 1");
	ok(migrate_apply(admin, &err) < 0 && strstr(err.text, "migration 001_events differs"),
	   "an applied migration that changed is refused: %s", err.text);
	sql("UPDATE schema_version SET checksum = substr(checksum, 2) WHERE version = 1");
	ok(migrate_apply(admin, &err) == 0, "and accepted again once it matches: %s", err.text);

	sql("INSERT INTO schema_version (version, name, checksum) VALUES (999, '999_future', '')");
	err.text[0] = '\0';
	ok(migrate_apply(admin, &err) == -1 && strstr(err.text, "newer"),
	   "a database newer than the binary is refused: %s", err.text);
	sql("DELETE FROM schema_version WHERE version = 999");
	ok(strcmp(sql("SELECT pg_try_advisory_lock(500085059428)"), "t") == 0,
	   "the migration lock is released after a refusal");
	sql("SELECT pg_advisory_unlock_all()");
}

static void test_users_table(void)
{
	alice = atoll(sql("INSERT INTO users (name, email, tz, token_hash) VALUES ('alice',"
			  " 'alice@example.org', 'Europe/Berlin', sha256('alice-secret'::bytea))"
			  " RETURNING id"));
	bob = atoll(sql("INSERT INTO users (name, email, tz) VALUES ('bob', NULL, 'UTC') RETURNING id"));
	ok(alice > 0 && bob > 0, "users created (alice %lld, bob %lld)", (long long)alice,
	   (long long)bob);
	ok(strstr(sql("INSERT INTO users (name, tz) VALUES ('carol', 'Mars/Olympus')"),
		  "INVALID_TIMEZONE") != NULL,
	   "an unknown time zone is refused by the database");
}

/* ---- the operations ---------------------------------------------------------------- */

static void test_dispatch(void)
{
	int n = 0;
	for (const char *const *op = store_ops(); *op; op++)
		n++;
	ok(n == 24, "store_ops lists 24 operations (%d)", n);

	struct todod_err err = { "" };
	json_object *array = json_object_new_array();
	ok(store_call(st, "task.explode", alice, NULL, NULL, NULL, on_store, &last, &err) == -1 &&
		   strstr(err.text, "task.explode"),
	   "an unknown operation is refused: %s", err.text);
	ok(store_call(st, "task.list", alice, array, NULL, NULL, on_store, &last, &err) == -1,
	   "arguments that are not an object are refused: %s", err.text);
	ok(store_call(st, "task.list", alice, NULL, "only-consumer", NULL, on_store, &last, &err) ==
		   -1,
	   "a once-key needs both parts: %s", err.text);
	json_object_put(array);
	ok(call("task.list", alice, NULL) != NULL, "NULL arguments mean {}");
}

static void test_user_ops(void)
{
	json_object *u = call("user.get", alice, "{}");
	is_str(str(u, "name"), "alice", "user.get returns the user");
	is_str(str(u, "tz"), "Europe/Berlin", "user.get has the time zone");
	ok(u && !get(u, "token_hash"), "user.get never returns the token hash");
	expect_error("user.get", 987654, "{}", "USER_NOT_FOUND", "user_id");
	expect_error("user.get", alice, "{\"x\":1}", "UNKNOWN_FIELD", "x");

	u = call("user.by_token", 0, "{\"token\":\"alice-secret\"}");
	ok(u && num(u, "id") == alice, "user.by_token finds the token's user");
	expect_error("user.by_token", alice, "{\"token\":\"alice-secreT\"}", "USER_NOT_FOUND", "token");
	expect_error("user.by_token", alice, "{}", "FIELD_REQUIRED", "token");
	u = call("user.by_name", 0, "{\"name\":\"alice\"}");
	ok(u && num(u, "id") == alice, "user.by_name finds the user");
	expect_error("user.by_name", 0, "{\"name\":\"nobody\"}", "USER_NOT_FOUND", "name");
}

struct label_kind {
	const char *kind, *plural, *prefix;
	int max;
};

static void test_labels(const struct label_kind *k)
{
	char op[32], args[256], code[64], longname[64];
	snprintf(op, sizeof op, "%s.create", k->kind);
	json_object *r = call(op, alice, "{\"name\":\" Work \",\"color\":\"#00aa00\"}");
	int64_t work = num(r, "id");
	ok(work > 0 && strcmp(str(r, "name"), "Work") == 0, "%s: name trimmed", op);
	is_str(str(r, "color"), "#00AA00", "%s: color normalized", op);
	int64_t home = num(call(op, alice, "{\"name\":\"Home\"}"), "id");
	ok(home > 0 && is_null(last.res, "color"), "%s: color is optional", op);
	snprintf(code, sizeof code, "%s_EXISTS", k->prefix);
	expect_error(op, alice, "{\"name\":\"Work\"}", code, "name");
	ok(call(op, bob, "{\"name\":\"Work\"}") != NULL, "%s: names are unique per user only", op);
	memset(longname, 'x', (size_t)k->max + 1);
	longname[k->max + 1] = '\0';
	snprintf(args, sizeof args, "{\"name\":\"%s\"}", longname);
	snprintf(code, sizeof code, "%s_NAME_TOO_LONG", k->prefix);
	expect_error(op, alice, args, code, "name");
	longname[k->max] = '\0';
	snprintf(args, sizeof args, "{\"name\":\"%s\"}", longname);
	ok(call(op, alice, args) != NULL, "%s: %d characters are fine", op, k->max);
	snprintf(code, sizeof code, "%s_NAME_REQUIRED", k->prefix);
	expect_error(op, alice, "{\"name\":\"  \"}", code, "name");
	expect_error(op, alice, "{\"name\":\"Red\",\"color\":\"red\"}", "INVALID_COLOR", "color");
	expect_error(op, alice, "{\"name\":\"Red\",\"colour\":\"#ff0000\"}", "UNKNOWN_FIELD", "colour");

	snprintf(op, sizeof op, "%s.list", k->kind);
	r = call(op, alice, NULL);
	json_object *items = get(r, k->plural);
	ok(json_object_array_length(items) == 3, "%s: three of them", op);
	is_str(str(json_object_array_get_idx(items, 0), "name"), "Home", "%s: sorted by name", op);

	snprintf(op, sizeof op, "%s.update", k->kind);
	snprintf(args, sizeof args, "{\"id\":%lld,\"name\":\"Office\",\"color\":null}", (long long)work);
	r = call(op, alice, args);
	ok(r && strcmp(str(r, "name"), "Office") == 0 && is_null(r, "color"),
	   "%s: renamed, color cleared", op);
	snprintf(code, sizeof code, "%s_NOT_FOUND", k->prefix);
	expect_error(op, bob, args, code, "id");
	snprintf(args, sizeof args, "{\"id\":%lld,\"name\":\"Home\"}", (long long)work);
	snprintf(code, sizeof code, "%s_EXISTS", k->prefix);
	expect_error(op, alice, args, code, "name");
	snprintf(args, sizeof args, "{\"id\":%lld,\"color\":\"#123\"}", (long long)work);
	expect_error(op, alice, args, "INVALID_COLOR", "color");

	snprintf(op, sizeof op, "%s.delete", k->kind);
	snprintf(args, sizeof args, "{\"id\":%lld}", (long long)home);
	r = call(op, alice, args);
	ok(r && json_object_get_boolean(get(r, "deleted")) &&
		   strcmp(str(get(r, k->kind), "name"), "Home") == 0,
	   "%s: deleted, with what it was", op);
	snprintf(code, sizeof code, "%s_NOT_FOUND", k->prefix);
	expect_error(op, alice, args, code, "id");
}

/* The newest outbox row, as JSON text of {topic,type,subject,key,data}. */
static json_object *last_event(void)
{
	return json_tokener_parse(sql("SELECT jsonb_build_object('topic', topic, 'type', type,"
				      " 'subject', subject, 'key', key, 'data', data)"
				      " FROM outbox ORDER BY id DESC LIMIT 1"));
}

/* Whether a change's result is also what its event carries and what
 * task.get reads back: create builds its snapshot from the row it
 * inserted and update only patches updated_at, so this ties those
 * shortcuts to the stored task.  Run it right after the change. */
static bool snapshot_consistent(json_object *t, int64_t user)
{
	json_object *held = json_object_get(t);
	json_object *ev = last_event();
	char args[64];
	snprintf(args, sizeof args, "{\"id\":%lld}", (long long)num(held, "id"));
	bool same = held && json_object_equal(held, get(get(ev, "data"), "task")) &&
		    json_object_equal(held, call("task.get", user, args));
	json_object_put(ev);
	json_object_put(held);
	return same;
}

static int64_t create_task(int64_t user, const char *args)
{
	json_object *r = call("task.create", user, args);
	if (!r)
		printf("# task.create %s failed: %s %s\n", args, last.code, last.text);
	return r ? num(r, "id") : 0;
}

static void test_task_create(void)
{
	call("category.create", alice, "{\"name\":\"Errands\",\"color\":\"#FF8800\"}");
	long events = outbox_count();
	json_object *t = call("task.create", alice, "{\"title\":\"  Buy milk \"}");
	int64_t id = num(t, "id");
	is_str(str(t, "title"), "Buy milk", "create: title trimmed");
	is_str(str(t, "priority"), "medium", "create: priority defaults to medium");
	is_str(str(t, "status"), "pending", "create: pending");
	is_str(str(t, "reminder_state"), "none", "create: no reminder");
	ok(is_null(t, "category") && is_null(t, "due_at") && is_null(t, "completed_at"),
	   "create: no category, due date or completion");
	is_str(text(t, "tags"), "[]", "create: no tags");
	ok(num(t, "series_id") == id && num(t, "occurrence") == 1, "create: starts its own series");
	const char *created = str(t, "created_at");
	ok(created && strlen(created) == 20 && created[10] == 'T' && created[19] == 'Z',
	   "create: created_at is RFC 3339 UTC (%s)", created);

	ok(outbox_count() == events + 1, "create: one event");
	json_object *ev = last_event();
	is_str(str(ev, "topic"), "task-events", "event topic");
	is_str(str(ev, "type"), "todod.task.created", "event type");
	char subject[32], key[24];
	snprintf(subject, sizeof subject, "task/%lld", (long long)id);
	snprintf(key, sizeof key, "%lld", (long long)id);
	is_str(str(ev, "subject"), subject, "event subject");
	is_str(str(ev, "key"), key, "event key is the task id");
	ok(num(get(ev, "data"), "user_id") == alice &&
		   num(get(get(ev, "data"), "task"), "id") == id,
	   "event data carries user_id and the task");
	json_object_put(ev);
	ok(snapshot_consistent(t, alice), "create: result, event and stored task agree");

	t = call("task.create", alice,
		 "{\"title\":\"Pay rent\",\"description\":\"before the 1st\",\"priority\":\"Urgent\","
		 "\"due_at\":\"2036-11-27T10:00\",\"remind_before_min\":30,\"tags\":[\"zeta\",\"alpha\","
		 "\"zeta\"],\"category\":\"Errands\",\"rrule\":\"FREQ=MONTHLY\"}");
	is_str(str(t, "due_at"), "2036-11-27T09:00:00Z", "create: local time in the user's zone");
	is_str(str(t, "remind_at"), "2036-11-27T08:30:00Z", "create: remind_before_min");
	is_str(str(t, "reminder_state"), "pending", "create: reminder pending");
	is_str(text(t, "tags"), "[\"alpha\",\"zeta\"]", "create: tags sorted, duplicates dropped");
	is_str(str(get(t, "category"), "name"), "Errands", "create: category by name");
	is_str(str(t, "priority"), "urgent", "create: priority case-insensitive");
	is_str(str(t, "rrule"), "FREQ=MONTHLY", "create: rrule kept");
	ok(snapshot_consistent(t, alice), "create with tags and category: result, event, stored agree");

	static const struct {
		const char *due, *want;
	} times[] = {
		{ "2036-07-01T10:00", "2036-07-01T08:00:00Z" },      /* summer time */
		{ "2036-11-27T10:00:00+05:30", "2036-11-27T04:30:00Z" },
		{ "2036-11-27T10:00:00Z", "2036-11-27T10:00:00Z" },
		{ "2036-11-27", "2036-11-26T23:00:00Z" },            /* midnight, Berlin */
		{ "2036-11-27 10:00:30.5", "2036-11-27T09:00:30Z" },
	};
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
		char args[128];
		snprintf(args, sizeof args, "{\"title\":\"t\",\"due_at\":\"%s\"}", times[i].due);
		is_str(str(call("task.create", alice, args), "due_at"), times[i].want,
		       "due_at %s", times[i].due);
	}

	long tasks = atol(sql("SELECT count(*) FROM tasks"));
	events = outbox_count();
	char too_long[300], args[11000];
	memset(too_long, 'a', 201);
	too_long[201] = '\0';
	expect_error("task.create", alice, "{}", "TITLE_REQUIRED", "title");
	expect_error("task.create", alice, "{\"title\":\"   \"}", "TITLE_REQUIRED", "title");
	snprintf(args, sizeof args, "{\"title\":\"%s\"}", too_long);
	expect_error("task.create", alice, args, "TITLE_TOO_LONG", "title");
	too_long[200] = '\0';
	snprintf(args, sizeof args, "{\"title\":\"%s\"}", too_long);
	ok(call("task.create", alice, args) != NULL, "create: 200 characters are fine");
	tasks++, events++;
	expect_error("task.create", alice, "{\"title\":5}", "INVALID_ARGUMENT", "title");
	expect_error("task.create", alice, "{\"title\":\"t\",\"priority\":\"huge\"}", "INVALID_PRIORITY",
		     "priority");
	expect_error("task.create", alice, "{\"title\":\"t\",\"due_at\":\"next tuesday\"}",
		     "INVALID_DUE_DATE", "due_at");
	expect_error("task.create", alice, "{\"title\":\"t\",\"due_at\":\"2036-02-30T10:00\"}",
		     "INVALID_DUE_DATE", "due_at");
	/* Only what PostgreSQL can hold, and only times that can be sent back. */
	expect_error("task.create", alice, "{\"title\":\"a\\u0000b\"}", "INVALID_ARGUMENT", "title");
	expect_error("task.create", alice, "{\"title\":\"t\",\"tags\":[\"x\",\"\\u0000\"]}",
		     "INVALID_ARGUMENT", "tags");
	expect_error("task.create", alice, "{\"title\":\"t\",\"due_at\":\"2036-12-05T10:00+99:99\"}",
		     "INVALID_DUE_DATE", "due_at");
	expect_error("task.create", alice, "{\"title\":\"t\",\"due_at\":\"9999-12-31T23:59:59-12:00\"}",
		     "INVALID_DUE_DATE", "due_at");
	expect_error("task.create", alice, "{\"title\":\"t\",\"remind_at\":\"9999-12-31T23:00-01:00\"}",
		     "INVALID_REMIND_AT", "remind_at");
	expect_error("task.create", alice, "{\"title\":\"t\",\"rrule\":\"FREQ=YEARLY;INTERVAL=101\"}",
		     "INVALID_RECURRENCE_RULE", "rrule");
	expect_error("task.create", alice, "{\"title\":\"t\",\"remind_at\":\"soon\"}",
		     "INVALID_REMIND_AT", "remind_at");
	expect_error("task.create", alice, "{\"title\":\"t\",\"remind_before_min\":10}",
		     "DUE_DATE_REQUIRED", "remind_before_min");
	expect_error("task.create", alice,
		     "{\"title\":\"t\",\"due_at\":\"2036-11-27\",\"remind_before_min\":-1}",
		     "INVALID_REMIND_BEFORE", "remind_before_min");
	/* A reminder that could only fire at once is refused, whichever way
	 * it is given. */
	expect_error("task.create", alice, "{\"title\":\"t\",\"remind_at\":\"2020-01-01T00:00:00Z\"}",
		     "REMINDER_IN_PAST", "remind_at");
	expect_error("task.create", alice,
		     "{\"title\":\"t\",\"due_at\":\"2020-01-01\",\"remind_before_min\":10}",
		     "REMINDER_IN_PAST", "remind_before_min");
	expect_error("task.create", alice,
		     "{\"title\":\"t\",\"due_at\":\"2036-11-27\",\"remind_before_min\":5,"
		     "\"remind_at\":\"2036-11-26T10:00\"}",
		     "REMINDER_CONFLICT", "remind_before_min");
	expect_error("task.create", alice,
		     "{\"title\":\"t\",\"tags\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\","
		     "\"10\",\"11\"]}",
		     "TOO_MANY_TAGS", "tags");
	expect_error("task.create", alice,
		     "{\"title\":\"t\",\"tags\":[\"0123456789012345678901234567890\"]}",
		     "TAG_NAME_TOO_LONG", "tags");
	expect_error("task.create", alice, "{\"title\":\"t\",\"tags\":\"work\"}", "INVALID_ARGUMENT",
		     "tags");
	expect_error("task.create", alice, "{\"title\":\"t\",\"category\":\"Nope\"}",
		     "CATEGORY_NOT_FOUND", "category");
	expect_error("task.create", alice, "{\"title\":\"t\",\"colour\":\"red\"}", "UNKNOWN_FIELD",
		     "colour");
	memset(args, 0, sizeof args);
	strcpy(args, "{\"title\":\"t\",\"description\":\"");
	memset(args + strlen(args), 'd', 10001);
	strcat(args, "\"}");
	expect_error("task.create", alice, args, "DESCRIPTION_TOO_LONG", "description");
	ok(atol(sql("SELECT count(*) FROM tasks")) == tasks && outbox_count() == events,
	   "refused creates change nothing and emit nothing");
	expect_error("task.create", 987654, "{\"title\":\"t\"}", "USER_NOT_FOUND", "user_id");
}

static void test_task_get_update(void)
{
	int64_t id = create_task(alice, "{\"title\":\"Call mom\",\"due_at\":\"2036-11-27T18:00\","
					"\"remind_before_min\":60,\"category\":\"Errands\"}");
	char args[256];
	snprintf(args, sizeof args, "{\"id\":%lld}", (long long)id);
	ok(num(call("task.get", alice, args), "id") == id, "get: own task");
	expect_error("task.get", bob, args, "TASK_NOT_FOUND", "id");
	expect_error("task.get", alice, "{\"id\":99999999}", "TASK_NOT_FOUND", "id");
	expect_error("task.get", alice, "{}", "FIELD_REQUIRED", "id");
	expect_error("task.get", alice, "{\"id\":\"seven\"}", "INVALID_ARGUMENT", "id");

	long events = outbox_count();
	snprintf(args, sizeof args, "{\"id\":%lld,\"title\":\"Call mum\"}", (long long)id);
	json_object *t = call("task.update", alice, args);
	is_str(str(t, "title"), "Call mum", "update: title");
	json_object *ev = last_event();
	ok(outbox_count() == events + 1, "update: one event");
	is_str(str(ev, "type"), "todod.task.updated", "update: event type");
	is_str(text(get(ev, "data"), "changed"), "[\"title\"]", "update: changed names the field");
	json_object_put(ev);
	ok(snapshot_consistent(t, alice), "update: result, event and stored task agree");

	call("task.update", alice, args);
	ok(outbox_count() == events + 1, "update: changing nothing emits nothing");
	expect_error("task.update", bob, args, "TASK_NOT_FOUND", "id");

	sql("UPDATE tasks SET reminder_state = 'fired' WHERE id = (SELECT max(id) FROM tasks WHERE title = 'Call mum')");
	snprintf(args, sizeof args, "{\"id\":%lld,\"due_at\":\"2036-11-28T18:00\"}", (long long)id);
	t = call("task.update", alice, args);
	is_str(str(t, "due_at"), "2036-11-28T17:00:00Z", "update: due_at moved");
	is_str(str(t, "remind_at"), "2036-11-28T16:00:00Z", "update: the minutes-before reminder moved");
	is_str(str(t, "reminder_state"), "pending", "update: and is pending again");
	ev = last_event();
	is_str(text(get(ev, "data"), "changed"), "[\"due_at\",\"remind_at\",\"reminder_state\"]",
	       "update: changed lists due_at, remind_at, reminder_state");
	json_object_put(ev);

	snprintf(args, sizeof args,
		 "{\"id\":%lld,\"remind_at\":\"2036-12-01T08:00:00Z\",\"priority\":\"low\"}",
		 (long long)id);
	t = call("task.update", alice, args);
	is_str(str(t, "remind_at"), "2036-12-01T08:00:00Z", "update: absolute remind_at");
	snprintf(args, sizeof args, "{\"id\":%lld,\"due_at\":\"2036-11-29T18:00\"}", (long long)id);
	is_str(str(call("task.update", alice, args), "remind_at"), "2036-12-01T08:00:00Z",
	       "update: an absolute reminder stays when due_at moves");

	snprintf(args, sizeof args,
		 "{\"id\":%lld,\"due_at\":null,\"remind_at\":\"\",\"category\":null,\"rrule\":\"\"}",
		 (long long)id);
	t = call("task.update", alice, args);
	ok(t && is_null(t, "due_at") && is_null(t, "remind_at") && is_null(t, "category") &&
		   is_null(t, "rrule"),
	   "update: null and \"\" clear due_at, remind_at, category, rrule");
	is_str(str(t, "reminder_state"), "none", "update: a cleared reminder is none");

	snprintf(args, sizeof args, "{\"id\":%lld,\"priority\":null}", (long long)id);
	expect_error("task.update", alice, args, "INVALID_PRIORITY", "priority");
	snprintf(args, sizeof args, "{\"id\":%lld,\"title\":\"\"}", (long long)id);
	expect_error("task.update", alice, args, "TITLE_REQUIRED", "title");
	snprintf(args, sizeof args, "{\"id\":%lld,\"due_at\":\"31/12/2026\"}", (long long)id);
	expect_error("task.update", alice, args, "INVALID_DUE_DATE", "due_at");
	snprintf(args, sizeof args, "{\"id\":%lld,\"status\":\"done\"}", (long long)id);
	expect_error("task.update", alice, args, "UNKNOWN_FIELD", "status");
	snprintf(args, sizeof args, "{\"id\":%lld,\"tags\":[\"a\",\"b\"]}", (long long)id);
	is_str(text(call("task.update", alice, args), "tags"), "[\"a\",\"b\"]", "update: tags set");
	snprintf(args, sizeof args, "{\"id\":%lld,\"tags\":[]}", (long long)id);
	is_str(text(call("task.update", alice, args), "tags"), "[]", "update: tags cleared");
}

/* Rules are checked and normalised by the core before SQL sees them. */
static void test_task_rrule(void)
{
	long tasks = atol(sql("SELECT count(*) FROM tasks")), events = outbox_count();
	expect_error("task.create", alice, "{\"title\":\"t\",\"rrule\":\"FREQ=DAILY;BYSETPOS=1\"}",
		     "INVALID_RECURRENCE_RULE", "rrule");
	is_str(last.text, "BYSETPOS is not supported", "create: the message names the part");
	expect_error("task.create", alice, "{\"title\":\"t\",\"rrule\":\"every monday\"}",
		     "INVALID_RECURRENCE_RULE", "rrule");
	ok(atol(sql("SELECT count(*) FROM tasks")) == tasks && outbox_count() == events,
	   "refused rules change nothing and emit nothing");

	json_object *args = json_tokener_parse("{\"title\":\"Standup\",\"rrule\":"
					       "\"rrule:byday=fr,mo,fr;freq=weekly;interval=1\"}");
	struct outcome out = { 0 };
	struct todod_err err;
	ok(store_call(st, "task.create", alice, args, NULL, NULL, on_store, &out, &err) == 0,
	   "create with a valid rule is accepted");
	wait_for(&out.done, 1, 20);
	is_str(str(out.res, "rrule"), "FREQ=WEEKLY;BYDAY=FR,MO", "create: the rule is stored normalised");
	is_str(str(args, "rrule"), "rrule:byday=fr,mo,fr;freq=weekly;interval=1",
	       "create: the caller's arguments are left alone");
	char query[128], update[256];
	int64_t id = num(out.res, "id");
	snprintf(query, sizeof query, "SELECT rrule FROM tasks WHERE id = %lld", (long long)id);
	is_str(sql(query), "FREQ=WEEKLY;BYDAY=FR,MO", "create: the row holds the normal form");
	json_object_put(out.res);
	json_object_put(args);

	snprintf(update, sizeof update, "{\"id\":%lld,\"rrule\":\"FREQ=WEEKLY;BYDAY=9XX\"}",
		 (long long)id);
	args = json_tokener_parse(update);
	memset(&out, 0, sizeof out);
	store_call(st, "task.update", alice, args, NULL, NULL, on_store, &out, &err);
	ok(!out.done, "update: a refused rule is not answered inside store_call");
	wait_for(&out.done, 1, 20);
	ok(strcmp(out.code, "INVALID_RECURRENCE_RULE") == 0 && strcmp(out.field, "rrule") == 0,
	   "update: INVALID_RECURRENCE_RULE on rrule [got %s %s]", out.code, out.field);
	is_str(out.text, "BYDAY: '9XX' is not a weekday", "update: the message names the part");
	json_object_put(args);
	is_str(sql(query), "FREQ=WEEKLY;BYDAY=FR,MO", "update: a refused rule keeps the old one");

	snprintf(update, sizeof update,
		 "{\"id\":%lld,\"rrule\":\"COUNT=3;BYMONTHDAY=-1;FREQ=monthly\"}", (long long)id);
	is_str(str(call("task.update", alice, update), "rrule"), "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3",
	       "update: the new rule is stored normalised");
	snprintf(update, sizeof update, "{\"id\":%lld,\"rrule\":null}", (long long)id);
	ok(is_null(call("task.update", alice, update), "rrule"), "update: null still clears the rule");
}

static void test_task_lifecycle(void)
{
	char args[256];
	int64_t id = create_task(alice, "{\"title\":\"Water plants\",\"due_at\":\"2099-01-01T09:00\","
					"\"remind_before_min\":5}");
	snprintf(args, sizeof args, "{\"id\":%lld}", (long long)id);
	long events = outbox_count();
	json_object *t = call("task.complete", alice, args);
	ok(t && strcmp(str(t, "status"), "completed") == 0 && str(t, "completed_at"),
	   "complete: completed, with completed_at");
	is_str(str(t, "reminder_state"), "skipped", "complete: a pending reminder is skipped");
	json_object *ev = last_event();
	ok(outbox_count() == events + 1 && strcmp(str(ev, "type"), "todod.task.completed") == 0 &&
		   strcmp(str(ev, "topic"), "task-events") == 0,
	   "complete: one todod.task.completed on task-events");
	json_object_put(ev);
	call("task.complete", alice, args);
	ok(last.res && outbox_count() == events + 1, "complete again: the task, and no event");

	t = call("task.uncomplete", alice, args);
	is_str(str(t, "status"), "pending", "uncomplete: pending");
	is_str(str(t, "reminder_state"), "pending", "uncomplete: a future reminder is pending again");
	ev = last_event();
	is_str(text(get(ev, "data"), "changed"), "[\"completed_at\",\"reminder_state\",\"status\"]",
	       "uncomplete: todod.task.updated with what changed");
	json_object_put(ev);
	events = outbox_count();
	call("task.uncomplete", alice, args);
	ok(outbox_count() == events, "uncomplete a pending task: no event");
	expect_error("task.complete", bob, args, "TASK_NOT_FOUND", "id");

	int64_t daily = create_task(alice, "{\"title\":\"Stretch\",\"rrule\":\"FREQ=DAILY\"}");
	snprintf(args, sizeof args, "{\"id\":%lld}", (long long)daily);
	events = outbox_count();
	call("task.complete", alice, args);
	is_str(sql("SELECT string_agg(topic, ',' ORDER BY id) FROM outbox WHERE subject = 'task/' ||"
		   " (SELECT max(id) FROM tasks WHERE title = 'Stretch') AND type = 'todod.task.completed'"),
	       "task-events,task-recurrence", "complete with an rrule: also on task-recurrence");
	ok(outbox_count() == events + 2, "complete with an rrule: two events");

	/* tags on a task */
	snprintf(args, sizeof args, "{\"id\":%lld,\"tags\":[\"garden\",\"home\"]}", (long long)id);
	is_str(text(call("task.tag_add", alice, args), "tags"), "[\"garden\",\"home\"]",
	       "tag_add: tags added (and created)");
	ev = last_event();
	is_str(text(get(ev, "data"), "changed"), "[\"tags\"]", "tag_add: changed [tags]");
	json_object_put(ev);
	events = outbox_count();
	call("task.tag_add", alice, args);
	ok(outbox_count() == events, "tag_add of present tags: no event");
	snprintf(args, sizeof args,
		 "{\"id\":%lld,\"tags\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}",
		 (long long)id);
	expect_error("task.tag_add", alice, args, "TOO_MANY_TAGS", "tags");
	snprintf(args, sizeof args, "{\"id\":%lld,\"tags\":[\"garden\",\"never\"]}", (long long)id);
	is_str(text(call("task.tag_remove", alice, args), "tags"), "[\"home\"]", "tag_remove");
	snprintf(args, sizeof args, "{\"id\":%lld}", (long long)id);
	expect_error("task.tag_add", alice, args, "FIELD_REQUIRED", "tags");

	/* deleting a tag or a category takes it off its tasks */
	json_object *tags = get(call("tag.list", alice, NULL), "tags");
	int64_t home_tag = 0;
	for (size_t i = 0; i < json_object_array_length(tags); i++)
		if (strcmp(str(json_object_array_get_idx(tags, i), "name"), "home") == 0)
			home_tag = num(json_object_array_get_idx(tags, i), "id");
	snprintf(args, sizeof args, "{\"id\":%lld}", (long long)home_tag);
	call("tag.delete", alice, args);
	snprintf(args, sizeof args, "{\"id\":%lld}", (long long)id);
	is_str(text(call("task.get", alice, args), "tags"), "[]", "tag.delete removes it from tasks");
	int64_t cat = num(call("category.create", alice, "{\"name\":\"Temp\"}"), "id");
	int64_t in_cat = create_task(alice, "{\"title\":\"Temporary\",\"category\":\"Temp\"}");
	snprintf(args, sizeof args, "{\"id\":%lld}", (long long)cat);
	call("category.delete", alice, args);
	snprintf(args, sizeof args, "{\"id\":%lld}", (long long)in_cat);
	ok(is_null(call("task.get", alice, args), "category"),
	   "category.delete leaves its tasks without a category");

	/* at most once per event */
	ok(call_once("task.create", alice, "{\"title\":\"Once\"}", "recurrence", "ev-1") != NULL,
	   "once: first delivery creates");
	ok(!call_once("task.create", alice, "{\"title\":\"Once\"}", "recurrence", "ev-1") &&
		   strcmp(last.code, "ALREADY_HANDLED") == 0,
	   "once: a repeat answers ALREADY_HANDLED (%s)", last.code);
	is_str(sql("SELECT count(*) FROM tasks WHERE title = 'Once'"), "1", "once: one task");
	ok(call_once("task.create", alice, "{\"title\":\"Once\"}", "email", "ev-1") != NULL,
	   "once: another consumer may handle the same event");
	call_once("task.create", alice, "{}", "recurrence", "ev-2");
	ok(call_once("task.create", alice, "{\"title\":\"x\"}", "recurrence", "ev-2") != NULL,
	   "once: a failed call does not use up its event");

	/* delete */
	snprintf(args, sizeof args, "{\"id\":%lld}", (long long)id);
	events = outbox_count();
	t = call("task.delete", alice, args);
	ok(t && json_object_get_boolean(get(t, "deleted")) &&
		   strcmp(str(get(t, "task"), "title"), "Water plants") == 0,
	   "delete: returns the task as it was");
	ev = last_event();
	ok(outbox_count() == events + 1 && strcmp(str(ev, "type"), "todod.task.deleted") == 0 &&
		   strcmp(str(get(get(ev, "data"), "task"), "title"), "Water plants") == 0,
	   "delete: todod.task.deleted with the snapshot before deletion");
	json_object_put(ev);
	expect_error("task.get", alice, args, "TASK_NOT_FOUND", "id");
	expect_error("task.delete", alice, args, "TASK_NOT_FOUND", "id");
}

/* Pages through task.list (or search) with `args` (no braces), collecting ids. */
static int page_all(const char *op, int64_t user, const char *args, int limit, int64_t *ids,
		    int max, json_object **tasks_out, int *pages)
{
	char cursor[512] = "", buf[1024];
	int n = 0;
	*pages = 0;
	for (;;) {
		snprintf(buf, sizeof buf, "{%s%s\"limit\":%d%s%s%s}", args, *args ? "," : "", limit,
			 *cursor ? ",\"cursor\":\"" : "", cursor, *cursor ? "\"" : "");
		json_object *r = call(op, user, buf);
		if (!r)
			return -1;
		(*pages)++;
		json_object *tasks = get(r, "tasks");
		for (size_t i = 0; i < json_object_array_length(tasks) && n < max; i++) {
			json_object *t = json_object_array_get_idx(tasks, i);
			if (tasks_out)
				tasks_out[n] = json_object_get(t);
			ids[n++] = num(t, "id");
		}
		if (!str(r, "next_cursor"))
			return n;
		snprintf(cursor, sizeof cursor, "%s", str(r, "next_cursor"));
	}
}

static int count(const char *args)
{
	int64_t ids[200];
	int pages;
	return page_all("task.list", bob, args, 100, ids, 200, NULL, &pages);
}

static const char *const priorities[] = { "low", "medium", "high", "urgent" };

static void test_list(void)
{
	call("category.create", bob, "{\"name\":\"Home\"}");
	for (int i = 0; i < 25; i++) {
		char args[512], due[64] = "", tags[64] = "";
		if (i % 2 == 0)
			snprintf(due, sizeof due, ",\"due_at\":\"2036-12-%02dT12:00\"", i / 2 + 1);
		snprintf(tags, sizeof tags, ",\"tags\":[%s%s%s]", i % 3 == 0 ? "\"three\"" : "",
			 i % 15 == 0 ? "," : "", i % 5 == 0 ? "\"five\"" : "");
		snprintf(args, sizeof args, "{\"title\":\"Item %02d\",\"priority\":\"%s\"%s%s%s%s}", i,
			 priorities[i % 4], due, tags, i < 5 ? ",\"category\":\"Home\"" : "",
			 i == 7 ? ",\"description\":\"with coffee\"" : "");
		create_task(bob, args);
	}

	int64_t ids[100];
	json_object *tasks[100];
	int pages;
	int n = page_all("task.list", bob, "", 10, ids, 100, NULL, &pages);
	bool ascending = true;
	for (int i = 1; i < n; i++)
		ascending = ascending && ids[i] > ids[i - 1];
	ok(n == 25 && pages == 3 && ascending, "list: 25 tasks in 3 pages of 10, oldest first (%d, %d)",
	   n, pages);
	json_object *r = call("task.list", bob, "{}");
	ok(json_object_array_length(get(r, "tasks")) == 20 && str(r, "next_cursor"),
	   "list: 20 by default, with a next_cursor");
	char due_cursor[512];
	snprintf(due_cursor, sizeof due_cursor, "%s",
		 str(call("task.list", bob, "{\"sort\":\"due\",\"limit\":2}"), "next_cursor"));

	n = page_all("task.list", bob, "\"sort\":\"due\"", 7, ids, 100, tasks, &pages);
	bool ordered = n == 25;
	for (int i = 0; i < 13 && ordered; i++) {
		char want[32];
		snprintf(want, sizeof want, "2036-12-%02dT12:00:00Z", i + 1);
		ordered = str(tasks[i], "due_at") && strcmp(str(tasks[i], "due_at"), want) == 0;
	}
	for (int i = 13; i < n && ordered; i++)
		ordered = is_null(tasks[i], "due_at");
	ok(ordered, "list sort=due: by due date, tasks without one last, across 4 pages");
	for (int i = 0; i < n; i++)
		json_object_put(tasks[i]);

	n = page_all("task.list", bob, "\"sort\":\"priority\"", 4, ids, 100, tasks, &pages);
	ordered = n == 25 && strcmp(str(tasks[0], "priority"), "urgent") == 0 &&
		  strcmp(str(tasks[24], "priority"), "low") == 0;
	for (int i = 1; i < n && ordered; i++) {
		int a = 0, b = 0;
		for (int p = 0; p < 4; p++) {
			a = strcmp(str(tasks[i - 1], "priority"), priorities[p]) == 0 ? p : a;
			b = strcmp(str(tasks[i], "priority"), priorities[p]) == 0 ? p : b;
		}
		ordered = a > b || (a == b && ids[i] > ids[i - 1]);
	}
	ok(ordered, "list sort=priority: urgent first, then by id, across pages");
	for (int i = 0; i < n; i++)
		json_object_put(tasks[i]);

	ok(count("\"priority\":\"urgent\"") == 6, "list: priority filter");
	ok(count("\"category\":\"Home\"") == 5, "list: category filter");
	ok(count("\"tags\":[\"three\"]") == 9, "list: one tag");
	ok(count("\"tags\":[\"three\",\"five\"]") == 12, "list: tags, any");
	ok(count("\"tags\":[\"three\",\"five\"],\"tags_mode\":\"all\"") == 2, "list: tags, all");
	ok(count("\"due_before\":\"2036-12-05\"") == 4, "list: due_before");
	ok(count("\"due_after\":\"2036-12-10T12:00\"") == 3, "list: due_after");
	ok(count("\"query\":\"coffee\"") == 1, "list: full-text query");

	char args[640];
	snprintf(args, sizeof args, "{\"id\":%lld}", (long long)ids[0]);
	call("task.complete", bob, args);
	snprintf(args, sizeof args, "{\"id\":%lld}", (long long)ids[1]);
	call("task.complete", bob, args);
	ok(count("") == 23 && count("\"status\":\"completed\"") == 2 &&
		   count("\"status\":\"all\"") == 25,
	   "list: status pending (default), completed, all");
	ok(count("\"status\":\"all\",\"query\":\"item\",\"priority\":\"urgent\",\"category\":\"Home\"") ==
		   1,
	   "list: filters combine");

	/* Pages of 3 must give the order of one page of 100, whichever
	 * indexes a sort and status read. */
	static const char *const paged[] = {
		"\"status\":\"all\"",
		"\"status\":\"all\",\"sort\":\"due\"",
		"\"status\":\"all\",\"sort\":\"priority\"",
		"\"status\":\"completed\",\"sort\":\"priority\"",
		"\"sort\":\"due\",\"due_after\":\"2036-12-03\",\"tags\":[\"three\",\"five\"]",
		"\"sort\":\"due\",\"due_before\":\"2036-12-09\",\"priority\":\"low\"",
	};
	for (size_t i = 0; i < sizeof paged / sizeof *paged; i++) {
		int64_t whole[100];
		int whole_n = page_all("task.list", bob, paged[i], 100, whole, 100, NULL, &pages);
		n = page_all("task.list", bob, paged[i], 3, ids, 100, NULL, &pages);
		ok(n > 0 && n == whole_n && memcmp(ids, whole, n * sizeof *ids) == 0,
		   "list {%s}: pages of 3 as one page (%d, %d)", paged[i], n, whole_n);
	}

	expect_error("task.list", bob, "{\"limit\":0}", "INVALID_LIMIT", "limit");
	expect_error("task.list", bob, "{\"limit\":101}", "INVALID_LIMIT", "limit");
	expect_error("task.list", bob, "{\"cursor\":\"garbage!!\"}", "INVALID_CURSOR", "cursor");
	snprintf(args, sizeof args, "{\"cursor\":\"%s\"}", due_cursor);
	expect_error("task.list", bob, args, "INVALID_CURSOR", "cursor");
	expect_error("task.list", bob, "{\"status\":\"done\"}", "INVALID_STATUS", "status");
	expect_error("task.list", bob, "{\"sort\":\"title\"}", "INVALID_SORT", "sort");
	expect_error("task.list", bob, "{\"tags_mode\":\"some\"}", "INVALID_TAGS_MODE", "tags_mode");
	expect_error("task.list", bob, "{\"due_before\":\"soon\"}", "INVALID_DUE_DATE", "due_before");
	expect_error("task.list", bob, "{\"category\":\"Nope\"}", "CATEGORY_NOT_FOUND", "category");
	expect_error("task.list", bob, "{\"page\":2}", "UNKNOWN_FIELD", "page");

	n = page_all("task.list", alice, "\"status\":\"all\"", 100, ids, 100, NULL, &pages);
	bool isolated = n > 0;
	char check[256];
	for (int i = 0; i < n; i++) {
		snprintf(check, sizeof check, "SELECT user_id FROM tasks WHERE id = %lld",
			 (long long)ids[i]);
		isolated = isolated && atoll(sql(check)) == alice;
	}
	snprintf(check, sizeof check, "SELECT count(*) FROM tasks WHERE user_id = %lld",
		 (long long)alice);
	ok(isolated && n == atoi(sql(check)), "list: a user sees exactly their own tasks (%d)", n);
}

static void test_search(void)
{
	create_task(bob, "{\"title\":\"Kitchen\",\"description\":\"buy coffee filters\"}");
	create_task(bob, "{\"title\":\"Coffee beans\"}");
	int64_t ids[100];
	json_object *tasks[100];
	int pages;
	int n = page_all("task.search", bob, "\"query\":\"coffee\"", 1, ids, 100, tasks, &pages);
	ok(n == 3 && pages == 3, "search: three matches, one per page (%d)", n);
	is_str(n > 0 ? str(tasks[0], "title") : NULL, "Coffee beans",
	       "search: a title match ranks first");
	for (int i = 0; i < n; i++)
		json_object_put(tasks[i]);
	n = page_all("task.search", bob, "\"query\":\"\"", 10, ids, 100, NULL, &pages);
	ok(n == 27, "search: an empty query lists every task, completed too (%d)", n);
	n = page_all("task.search", bob, "\"query\":\"coffee -kitchen\"", 10, ids, 100, NULL, &pages);
	ok(n == 2, "search: web search syntax (%d)", n);
	n = page_all("task.search", bob, "\"query\":\"!!!\"", 10, ids, 100, NULL, &pages);
	ok(n == 0, "search: a query without words matches nothing");
	ok(page_all("task.search", alice, "\"query\":\"kitchen\"", 10, ids, 100, NULL, &pages) == 0,
	   "search: another user's tasks are not found");
	expect_error("task.search", bob, "{\"query\":\"x\",\"sort\":\"due\"}", "UNKNOWN_FIELD", "sort");
	expect_error("task.search", bob, "{\"query\":\"x\",\"limit\":1000}", "INVALID_LIMIT", "limit");
}

/* ---- the event statements: typed answers, and the relay's hook -------------------- */

static void count_call(void *arg)
{
	(*(int *)arg)++;
}

struct claim {
	int done;
	struct outbox_row *rows;
	size_t n;
	char error[256];
};

static void on_claim(struct outbox_row *rows, size_t n, const char *error, void *arg)
{
	struct claim *c = arg;
	c->done = 1;
	/* The array is the store's; the rows' contents are ours. */
	c->rows = n ? memcpy(malloc(n * sizeof *rows), rows, n * sizeof *rows) : NULL;
	c->n = n;
	snprintf(c->error, sizeof c->error, "%s", error ? error : "");
}

static void claim_with(const struct outbox_claim *claim, struct claim *c)
{
	*c = (struct claim){ 0 };
	store_outbox_claim(st, claim, on_claim, c);
	wait_for(&c->done, 1, 20);
}

static void claim_marking(const char *owner, int limit, const int64_t *sent, size_t n_sent,
			  const int64_t *in_flight, size_t n_in_flight, struct claim *c)
{
	const struct outbox_claim claim = { .owner = owner, .lease_ms = 60000, .limit = limit,
					    .sent = sent, .n_sent = n_sent,
					    .in_flight = in_flight, .n_in_flight = n_in_flight };
	claim_with(&claim, c);
}

static void claim_as(const char *owner, int limit, struct claim *c)
{
	claim_marking(owner, limit, NULL, 0, NULL, 0, c);
}

static void claim_free(struct claim *c)
{
	for (size_t i = 0; i < c->n; i++)
		store_outbox_row_clear(&c->rows[i]);
	free(c->rows);
}

struct answer {
	int done;
	char error[256];
	struct outbox_depth depth;
	bool found[4];
	size_t n;
};

static void on_done(const char *error, void *arg)
{
	struct answer *a = arg;
	a->done = 1;
	snprintf(a->error, sizeof a->error, "%s", error ? error : "");
}

static void on_depth(const struct outbox_depth *depth, const char *error, void *arg)
{
	struct answer *a = arg;
	if (depth)
		a->depth = *depth;
	on_done(error, arg);
}

static void on_found(const bool *found, size_t n, const char *error, void *arg)
{
	struct answer *a = arg;
	a->n = n;
	for (size_t i = 0; found && i < n && i < 4; i++)
		a->found[i] = found[i];
	on_done(error, arg);
}

/* "101": the answer's found[] as digits. */
static const char *found_text(const struct answer *a)
{
	static char digits[8];
	for (size_t i = 0; i < a->n && i < 4; i++)
		digits[i] = a->found[i] ? '1' : '0';
	digits[a->n < 4 ? a->n : 4] = '\0';
	return digits;
}

static void test_events_committed_hook(void)
{
	int kicks = 0;
	store_on_events_committed(st, count_call, &kicks);
	call("task.create", alice, "{\"title\":\"hook\"}");
	ok(kicks == 1, "a change that writes an event tells the hook (%d)", kicks);
	call("task.get", alice, "{\"id\":1}");
	call("category.list", alice, NULL);
	expect_error("task.create", alice, "{\"title\":\"\"}", "TITLE_REQUIRED", "title");
	ok(kicks == 1, "reads, label operations and refused changes do not (%d)", kicks);
	struct answer a = { 0 };
	store_outbox_append(st, "bus-topic", "test.appended", "", "k1", "{\"n\":1.5}", on_done, &a);
	wait_for(&a.done, 1, 20);
	ok(a.error[0] == '\0' && kicks == 2, "an appended event tells it too (%s)",
	   a.error[0] ? a.error : "no error");
	store_on_events_committed(st, NULL, NULL);
}

static void test_outbox_rows(void)
{
	struct answer depth = { 0 };
	store_outbox_depth(st, on_depth, &depth);
	wait_for(&depth.done, 1, 20);
	long unsent = atol(sql("SELECT count(*) FROM outbox WHERE sent_at IS NULL"));
	ok(depth.error[0] == '\0' && depth.depth.pending == unsent && depth.depth.oldest_age_s > 0,
	   "depth: %lld pending (%ld in the table), the oldest %.3f s old",
	   (long long)depth.depth.pending, unsent, depth.depth.oldest_age_s);

	struct claim c, other;
	claim_as("test-a", 1000, &c);
	ok(c.error[0] == '\0' && c.n == (size_t)unsent, "claim: every unsent event (%zu)", c.n);
	bool ordered = true, typed = true;
	for (size_t i = 0; i < c.n; i++) {
		const struct outbox_row *r = &c.rows[i];
		ordered = ordered && (i == 0 || r->id > c.rows[i - 1].id);
		typed = typed && r->ev.id && *r->ev.id && r->ev.topic && r->ev.type && r->ev.key &&
			r->ev.time && !r->ev.source && !r->ev.raw &&
			json_object_is_type(r->ev.data, json_type_object) &&
			r->created_ms > 1700000000000 && r->created_ms <= clock_wall_ms();
	}
	ok(ordered && typed, "claim: rows in commit order, each a typed event with parsed data");
	const struct outbox_row *last_row = c.n ? &c.rows[c.n - 1] : NULL;
	ok(last_row && strcmp(last_row->ev.type, "test.appended") == 0 && !last_row->ev.subject &&
	   !last_row->ev.traceparent && strcmp(last_row->ev.key, "k1") == 0 &&
	   json_object_get_double(json_object_object_get(last_row->ev.data, "n")) == 1.5,
	   "claim: an empty subject and no traceparent are NULL, data as written");
	claim_as("test-b", 1000, &other);
	ok(other.error[0] == '\0' && other.n == 0, "claim: nothing while another owner holds the lease");

	/* The owner marks two sent and, with the third still out, asks for
	 * one more: the fourth. */
	int64_t ids[3] = { c.rows[0].id, c.rows[1].id, c.rows[2].id };
	struct claim next;
	claim_marking("test-a", 1, ids, 2, ids + 2, 1, &next);
	ok(next.error[0] == '\0' && next.n == 1 && next.rows[0].id == c.rows[3].id &&
	   atol(sql("SELECT count(*) FROM outbox WHERE sent_at IS NULL")) == unsent - 2,
	   "claim: marks the acknowledged sent and leaves out the one still out");
	claim_free(&next);
	/* Another owner's claim marks what it was given even without the
	 * lease (acknowledged is acknowledged) and returns nothing. */
	claim_marking("test-b", 1000, ids + 2, 1, NULL, 0, &other);
	ok(other.error[0] == '\0' && other.n == 0 &&
	   atol(sql("SELECT count(*) FROM outbox WHERE sent_at IS NULL")) == unsent - 3,
	   "claim: marks sent without the lease, returns nothing");
	struct answer released = { 0 };
	store_outbox_release(st, "test-a", on_done, &released);
	wait_for(&released.done, 1, 20);
	ok(released.error[0] == '\0', "the lease released");
	claim_free(&c);
	claim_as("test-b", 1, &other);
	ok(other.n == 1 && other.rows[0].id > ids[2], "claim: another owner takes over, after the sent");
	claim_free(&other);
	struct answer again = { 0 };
	store_outbox_release(st, "test-b", on_done, &again);
	wait_for(&again.done, 1, 20);
}

/* sent_at is the acknowledgement time the relay sends, kept between the
 * event's creation and the database's now. */
static void test_outbox_ack_times(void)
{
	for (int i = 0; i < 3; i++) {
		struct answer a = { 0 };
		store_outbox_append(st, "bus-topic", "test.acked", "", "k2", "{}", on_done, &a);
		wait_for(&a.done, 1, 20);
	}
	struct claim c;
	claim_as("test-acks", 1000, &c);
	ok(c.error[0] == '\0' && c.n >= 3, "ack times: events to mark (%zu)", c.n);
	if (c.n < 3)
		return;
	int64_t ids[3], now_us = clock_wall_us();
	for (int i = 0; i < 3; i++)
		ids[i] = c.rows[c.n - 3 + i].id;
	/* Now, before every event was written, an hour ahead. */
	const int64_t sent_us[3] = { now_us, 0, now_us + 3600 * INT64_C(1000000) };
	struct claim marked;
	const struct outbox_claim claim = { .owner = "test-acks", .lease_ms = 60000,
					    .sent = ids, .sent_us = sent_us, .n_sent = 3 };
	claim_with(&claim, &marked);
	char query[160];
	snprintf(query, sizeof query,
		 "SELECT (extract(epoch FROM sent_at) * 1000000)::bigint FROM outbox WHERE id = %lld",
		 (long long)ids[0]);
	ok(marked.error[0] == '\0' && atoll(sql(query)) == now_us,
	   "ack times: sent_at is the acknowledgement time to the microsecond (%s)", sql_value);
	snprintf(query, sizeof query, "SELECT sent_at = created_at FROM outbox WHERE id = %lld",
		 (long long)ids[1]);
	is_str(sql(query), "t", "ack times: one before the event's creation is its creation");
	snprintf(query, sizeof query, "SELECT sent_at <= clock_timestamp() FROM outbox WHERE id = %lld",
		 (long long)ids[2]);
	is_str(sql(query), "t", "ack times: one ahead of the database's clock is its now");
	claim_free(&c);
	struct answer released = { 0 };
	store_outbox_release(st, "test-acks", on_done, &released);
	wait_for(&released.done, 1, 20);
}

/* A claim renews the lease row only when less than two thirds of the
 * lease is left; otherwise it only reads it. */
static void test_outbox_lease_writes(void)
{
	struct outbox_claim lease = { .owner = "test-lease", .lease_ms = 60000 };
	struct claim c;
	claim_with(&lease, &c);
	char version[64];
	snprintf(version, sizeof version, "%s", sql("SELECT xmin FROM outbox_lease"));
	claim_with(&lease, &c);
	ok(c.error[0] == '\0', "lease: claimed again (%s)", c.error[0] ? c.error : "no error");
	is_str(sql("SELECT xmin FROM outbox_lease"), version,
	       "lease: most of it left, the row is not written");
	/* 60 s left of a 100 s lease is less than two thirds. */
	lease.lease_ms = 100000;
	claim_with(&lease, &c);
	ok(strcmp(sql("SELECT xmin FROM outbox_lease"), version) != 0 &&
	   strcmp(sql("SELECT expires_at > clock_timestamp() + interval '90 seconds'"
		      " FROM outbox_lease"), "t") == 0,
	   "lease: less than two thirds left, renewed for the whole lease");
	struct answer released = { 0 };
	store_outbox_release(st, "test-lease", on_done, &released);
	wait_for(&released.done, 1, 20);
}

static void test_inbox_statements(void)
{
	const struct todod_inbox_key keys[] = {
		{ "c1", "e\"1" }, { "c1", "e\"1" }, { "c2", "e\"1" }, { "c1", "e2" },
	};
	struct answer a = { 0 };
	store_inbox_seen(st, keys, 4, on_found, &a);
	wait_for(&a.done, 1, 20);
	is_str(found_text(&a), "0000", "inbox seen: nothing yet");
	a = (struct answer){ 0 };
	store_inbox_record(st, keys, 3, on_found, &a);
	wait_for(&a.done, 1, 20);
	is_str(found_text(&a), "010", "inbox record: a key twice counts as there by its second");
	a = (struct answer){ 0 };
	store_dead_letter(st, "c1", "t", "e2", "{}", "gave up", 3, on_done, &a);
	wait_for(&a.done, 1, 20);
	ok(a.error[0] == '\0', "dead letter kept (%s)", a.error[0] ? a.error : "no error");
	a = (struct answer){ 0 };
	store_inbox_seen(st, keys, 4, on_found, &a);
	wait_for(&a.done, 1, 20);
	is_str(found_text(&a), "1111", "inbox seen: recorded and dead-lettered keys are handled");
}

/* ---- the pool itself -------------------------------------------------------------- */

struct tally {
	int done, failed, unavailable;
	bool inside_db_query;
	bool called_inside;
};

static void on_query(PGresult *res, const char *error, void *arg)
{
	struct tally *t = arg;
	t->done++;
	t->called_inside = t->called_inside || t->inside_db_query;
	if (error) {
		t->failed++;
		if (strncmp(error, "database unavailable", 20) == 0)
			t->unavailable++;
	}
}

static void test_concurrency(void)
{
	struct tally t = { 0 };
	enum { N = 40 };
	for (int i = 0; i < N; i++) {
		t.inside_db_query = true;
		db_query(pool, "SELECT pg_sleep(0.01), $1::int", 1, (const char *const[]){ "7" },
			 on_query, &t);
		t.inside_db_query = false;
	}
	ok(db_pool_busy(pool) == N, "db_pool_busy counts queued statements (%d)", db_pool_busy(pool));
	wait_for(&t.done, N, 20);
	ok(t.done == N && t.failed == 0 && !t.called_inside,
	   "%d statements on 2 connections all succeed, none reported inside db_query", N);
	ok(db_pool_busy(pool) == 0, "the pool is idle afterwards");

	struct tally bad = { 0 };
	db_query(pool, "SELECT nonsense FROM nowhere", 0, NULL, on_query, &bad);
	db_query(pool, "SELECT 1", 0, NULL, on_query, &bad);
	wait_for(&bad.done, 2, 10);
	ok(bad.failed == 1 && bad.unavailable == 0, "an SQL error fails its statement only");

	/* Far more than a socket buffer: the send needs several writable turns. */
	enum { BIG = 8 << 20 };
	char *big = malloc(BIG + 1);
	memset(big, 'x', BIG);
	big[BIG] = '\0';
	struct tally sent = { 0 };
	db_query(pool, "SELECT length($1)", 1, (const char *const[]){ big }, on_query, &sent);
	free(big);
	wait_for(&sent.done, 1, 20);
	ok(sent.done == 1 && sent.failed == 0, "an 8 MiB parameter is sent without blocking");
}

/* What one pipelined statement must answer its own caller. */
struct echo {
	const char *want; /* the value it returns, or the start of its error */
	bool right;
};

static int echoes;

static void on_echo(PGresult *res, const char *error, void *arg)
{
	struct echo *e = arg;
	echoes++;
	if (error)
		e->right = strncmp(error, e->want, strlen(e->want)) == 0;
	else
		e->right = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), e->want) == 0;
}

struct comeback {
	struct db_pool *pool;
	bool seen_down; /* reconnecting waits 100 ms at least: a 20 ms tick sees it */
	int back;
};

static void on_comeback_tick(evutil_socket_t fd, short what, void *arg)
{
	struct comeback *c = arg;
	if (db_pool_live(c->pool) == 0)
		c->seen_down = true;
	else if (c->seen_down)
		c->back = 1;
}

/* One connection, statements queued in one turn so they share its
 * pipeline: good ones, ones the server cannot prepare, ones that fail
 * as they run.  Each answers its own caller with its own error; then
 * the same statements run again on a new session after a lost one. */
static void test_pipeline(const char *dsn)
{
	struct todod_err err;
	char conninfo[2048];
	snprintf(conninfo, sizeof conninfo, "%s application_name='todod_test_pipeline'", dsn);
	struct db_pool *one = db_pool_new(base, 1, &err);
	db_pool_start(one, conninfo, &err);

	enum { N = 60 };
	static const char *const values[] = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" };
	struct echo e[N];
	echoes = 0;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			const char *v = values[i % 10];
			switch (i % 3) {
			case 0:
				e[i] = (struct echo){ v, false };
				db_query(one, "SELECT $1::int", 1, &v, on_echo, &e[i]);
				break;
			case 1:
				e[i] = (struct echo){ "division by zero", false };
				db_query(one, "SELECT 1 / ($1::int - $1::int)", 1, &v, on_echo, &e[i]);
				break;
			default:
				e[i] = (struct echo){ "relation \"nowhere\" does not exist", false };
				db_query(one, "SELECT nonsense FROM nowhere", 0, NULL, on_echo, &e[i]);
				break;
			}
		}
		wait_for(&echoes, N, 20);
		int right = 0;
		for (int i = 0; i < N; i++)
			right += e[i].right;
		ok(right == N, "%s: %d statements in one pipeline, each answered its own caller, "
		   "each error its own (%d right)", round ? "new session" : "first session", N, right);
		if (round)
			break;
		/* Lose the session: its prepared statements go with it. */
		sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		    " WHERE application_name = 'todod_test_pipeline'");
		struct comeback cb = { one, false, 0 };
		struct timeval every = { 0, 20000 };
		struct event *tick = event_new(base, -1, EV_PERSIST, on_comeback_tick, &cb);
		event_add(tick, &every);
		wait_for(&cb.back, 1, 10);
		event_free(tick);
		ok(cb.back, "the pool reconnected after its session was ended");
		echoes = 0;
	}
	db_pool_free(one);

	struct tally many = { 0 };
	char text[64];
	for (int i = 0; i < 200; i++) {
		snprintf(text, sizeof text, "SELECT %d", i);
		db_query(pool, text, 0, NULL, on_query, &many);
	}
	wait_for(&many.done, 200, 20);
	ok(many.done == 200 && many.failed == 0,
	   "200 different statement texts all run (past the prepared ones' bound too)");
}

static void test_unreachable(void)
{
	struct todod_err err;
	struct db_pool *dead = db_pool_new(base, 1, &err);
	struct store *dead_store = store_new(base, dead);
	struct store *saved = st;
	db_pool_start(dead, "hostaddr=127.0.0.1 port=1 dbname=x", &err);
	st = dead_store;
	call("user.get", alice, NULL);
	ok(strcmp(last.code, "DATABASE_UNAVAILABLE") == 0 && strstr(last.text, "database unavailable"),
	   "no server: DATABASE_UNAVAILABLE (%s)", last.text);
	ok(!db_pool_ready(dead, &err), "no server: not ready: %s", err.text);
	expect_error("task.create", alice, "{\"title\":\"t\",\"rrule\":\"FREQ=HOURLY\"}",
		     "INVALID_RECURRENCE_RULE", "rrule");

	struct tally t = { .inside_db_query = true };
	db_query(dead, "SELECT 1", 0, NULL, on_query, &t);
	t.inside_db_query = false;
	ok(t.done == 0, "a down pool fails statements later, not inside db_query");
	wait_for(&t.done, 1, 10);
	ok(t.unavailable == 1 && !t.called_inside, "... and at once, on the next loop turn");
	st = saved;
	store_free(dead_store);
	db_pool_free(dead);

	ok(db_pool_new(base, 0, &err) == NULL, "pool size 0 refused: %s", err.text);
	struct db_pool *unstarted = db_pool_new(base, 1, &err);
	ok(db_pool_start(unstarted, "nonsense", &err) != 0, "bad conninfo refused: %s", err.text);
	db_pool_free(unstarted);
	PGconn *c = db_connect_blocking("hostaddr=127.0.0.1 port=1", &err);
	ok(!c && strstr(err.text, "database unavailable"), "db_connect_blocking fails: %s", err.text);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = db_pool_ready(pool, NULL);
}

static void test_restart(const char *stop_cmd, const char *start_cmd)
{
	struct tally t = { 0 };
	enum { N = 10 };
	for (int i = 0; i < N; i++)
		db_query(pool, "SELECT pg_sleep(0.5)", 0, NULL, on_query, &t);
	/* Let the first two statements reach the server. */
	for (int i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	int64_t t0 = clock_mono_ms();
	ok(system(stop_cmd) == 0, "server stopped with statements running and queued");
	wait_for(&t.done, N, 20);
	printf("# after stop (%lld ms): %d of %d statements failed, %d as 'database unavailable'\n",
	       (long long)(clock_mono_ms() - t0), t.failed, N, t.unavailable);
	ok(t.failed == N, "every running or queued statement failed");
	ok(t.unavailable >= N - 2, "queued ones failed with 'database unavailable'");
	int64_t f0 = clock_mono_ms();
	call("user.get", alice, NULL);
	ok(strcmp(last.code, "DATABASE_UNAVAILABLE") == 0,
	   "store calls while down: DATABASE_UNAVAILABLE in %lld ms (%s)",
	   (long long)(clock_mono_ms() - f0), last.text);

	ok(system(start_cmd) == 0, "server started again");
	int64_t s0 = clock_mono_ms();
	int ready = 0;
	struct timeval every = { 0, 20000 };
	struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, &ready);
	event_add(tick, &every);
	wait_for(&ready, 1, 15);
	event_free(tick);
	printf("# pool ready %lld ms after the start command returned\n",
	       (long long)(clock_mono_ms() - s0));
	ok(ready, "the same pool reconnects by itself");
	ok(call("user.get", alice, NULL) != NULL, "and store calls succeed again");
}

int main(void)
{
	const char *dsn = getenv("TODOD_TEST_DSN");
	if (!dsn || !*dsn) {
		printf("1..0 # SKIP no database\n");
		return 0;
	}
	log_set_level(getenv("TODOD_TEST_DEBUG") ? TODOD_LOG_DEBUG : TODOD_LOG_ERROR);
	struct todod_err err = { "" };
	PGconn *server = db_connect_blocking(dsn, &err);
	if (!server) {
		printf("not ok 1 - connect to TODOD_TEST_DSN: %s\n1..1\n", err.text);
		return 1;
	}
	char dbname[64], query[128];
	snprintf(dbname, sizeof dbname, "todod_test_store_%d", (int)getpid());
	snprintf(query, sizeof query, "CREATE DATABASE %s", dbname);
	PGresult *res = PQexec(server, query);
	ok(PQresultStatus(res) == PGRES_COMMAND_OK, "created database %s %s", dbname,
	   PQresultErrorMessage(res));
	PQclear(res);
	char *test_dsn = dsn_with_db(dsn, dbname);
	admin = db_connect_blocking(test_dsn, &err);
	if (!admin) {
		printf("not ok - connect to %s: %s\n", dbname, err.text);
		return tap_done();
	}

	test_migrations();
	test_users_table();

	base = event_base_new();
	pool = db_pool_new(base, 2, &err);
	st = store_new(base, pool);
	db_pool_start(pool, test_dsn, &err);

	test_dispatch();
	test_user_ops();
	test_labels(&(struct label_kind){ "category", "categories", "CATEGORY", 50 });
	test_labels(&(struct label_kind){ "tag", "tags", "TAG", 30 });
	test_task_create();
	test_task_get_update();
	test_task_rrule();
	test_task_lifecycle();
	test_list();
	test_search();
	test_events_committed_hook();
	test_outbox_rows();
	test_outbox_ack_times();
	test_outbox_lease_writes();
	test_inbox_statements();
	test_concurrency();
	test_pipeline(test_dsn);
	test_unreachable();

	const char *stop_cmd = getenv("TODOD_TEST_PG_STOP");
	const char *start_cmd = getenv("TODOD_TEST_PG_START");
	if (stop_cmd && start_cmd) {
		PQfinish(admin);
		admin = NULL;
		PQfinish(server);
		test_restart(stop_cmd, start_cmd);
		server = db_connect_blocking(dsn, &err);
	} else {
		printf("# skipping the restart test: set TODOD_TEST_PG_STOP and TODOD_TEST_PG_START\n");
	}

	json_object_put(last.res);
	store_free(st);
	db_pool_free(pool);
	event_base_free(base);
	PQfinish(admin);
	snprintf(query, sizeof query, "DROP DATABASE %s", dbname);
	res = PQexec(server, query);
	ok(PQresultStatus(res) == PGRES_COMMAND_OK, "dropped database %s %s", dbname,
	   PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(server);
	free(test_dsn);
	return tap_done();
}
