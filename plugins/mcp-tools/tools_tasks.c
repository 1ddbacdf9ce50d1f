/* tools_tasks.c - the task tools: add, list, get, update, complete,
 * delete, search, and set_reminder.
 *
 * Most are one store call.  What the store does not check is done here
 * before the call: a reminder that would fire in the past is refused (the
 * reminder scan would otherwise send it at once, which is what the
 * original system's set_reminder got wrong). */
#include "tools_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- times --------------------------------------------------------------- */

/* An ISO 8601 time as the store reads it: wall-clock fields, and the
 * offset when one was written. */
struct iso_time {
	int64_t wall_s; /* the fields as if they were UTC, in seconds */
	bool has_offset;
	int offset_s;   /* east of UTC */
};

static bool parse_iso_time(const char *text, struct iso_time *t)
{
	int y, mo, d, h = 0, mi = 0, s = 0, n = 0;
	*t = (struct iso_time){ 0 };
	if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return false;
	const char *p = text + n;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5)
			return false;
		p += 1 + n;
		if (*p == ':') {
			if (sscanf(p + 1, "%2d%n", &s, &n) != 1 || n != 2)
				return false;
			p += 3;
			if (*p == '.')
				for (p++; isdigit((unsigned char)*p); p++)
					;
		}
		if (*p == 'Z' || *p == 'z') {
			t->has_offset = true;
			p++;
		} else if (*p == '+' || *p == '-') {
			int oh = 0, om = 0;
			if (sscanf(p + 1, "%2d%n", &oh, &n) != 1 || n != 2)
				return false;
			const char *q = p + 3;
			if (*q == ':')
				q++;
			if (isdigit((unsigned char)*q) && (sscanf(q, "%2d%n", &om, &n) != 1 || n != 2))
				return false;
			if (isdigit((unsigned char)*q))
				q += 2;
			t->has_offset = true;
			t->offset_s = (*p == '-' ? -1 : 1) * (oh * 3600 + om * 60);
			p = q;
		}
	}
	static const int month_days[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (*p || mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] || h > 23 || mi > 59 || s > 59)
		return false;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = s };
	t->wall_s = (int64_t)timegm(&tm);
	return tm.tm_mday == d; /* 29 February of a common year moved on */
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The UTC offset of zone `tz` at instant `at`, from the system's TZif
 * files (the ones PostgreSQL reads too).  The file is a few kilobytes in
 * the page cache, and only a reminder given as wall-clock time reads it. */
static bool zone_offset(const char *tz, int64_t at, int *offset_s)
{
	if (strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0) {
		*offset_s = 0;
		return true;
	}
	if (tz[0] == '/' || strstr(tz, "..") || strlen(tz) > 64)
		return false;
	char path[128];
	snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
	static unsigned char buf[1 << 16];
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	size_t len = fread(buf, 1, sizeof buf, f);
	fclose(f);

	/* Version 2 and later repeat the data with 64-bit times after the
	 * 32-bit block; both blocks start with the same 44-byte header. */
	size_t hdr = 0;
	int tsize = 4;
	for (;;) {
		if (len < hdr + 44 || memcmp(buf + hdr, "TZif", 4) != 0)
			return false;
		const unsigned char *c = buf + hdr + 20;
		size_t isut = be32(c), isstd = be32(c + 4), leap = be32(c + 8);
		size_t times = be32(c + 12), types = be32(c + 16), chars = be32(c + 20);
		size_t data = times * (size_t)tsize + times + types * 6 + chars +
			      leap * (size_t)(tsize + 4) + isstd + isut;
		if (len < hdr + 44 + data || types == 0)
			return false;
		if (tsize == 4 && buf[hdr + 4] >= '2') {
			hdr += 44 + data;
			tsize = 8;
			continue;
		}
		const unsigned char *tp = buf + hdr + 44, *idx = tp + times * (size_t)tsize;
		const unsigned char *info = idx + times;
		size_t type = 0;
		for (size_t i = 0; i < times; i++) {
			int64_t when = tsize == 8 ? (int64_t)((uint64_t)be32(tp + 8 * i) << 32 |
							      be32(tp + 8 * i + 4))
						  : (int32_t)be32(tp + 4 * i);
			if (when > at)
				break;
			type = idx[i];
		}
		if (type >= types)
			return false;
		*offset_s = (int32_t)be32(info + 6 * type);
		return true;
	}
}

enum instant { INSTANT_KNOWN, INSTANT_NEEDS_ZONE, INSTANT_UNKNOWN };

/* The UTC instant of `text`; wall-clock times are in zone `tz` (NULL: not
 * known yet).  Twice round the offset lookup, so a time just after a DST
 * change gets the offset in force then, not at the wall time read as UTC. */
static enum instant instant_of(const char *text, const char *tz, int64_t *at)
{
	struct iso_time t;
	int offset;
	if (!text || !parse_iso_time(text, &t))
		return INSTANT_UNKNOWN;
	if (t.has_offset) {
		*at = t.wall_s - t.offset_s;
		return INSTANT_KNOWN;
	}
	if (!tz)
		return INSTANT_NEEDS_ZONE;
	if (!zone_offset(tz, t.wall_s, &offset))
		return INSTANT_UNKNOWN;
	*at = t.wall_s - offset;
	if (zone_offset(tz, *at, &offset))
		*at = t.wall_s - offset;
	return INSTANT_KNOWN;
}

/* A string argument, or NULL when absent, null or empty. */
static const char *text_arg(json_object *args, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(args, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	const char *s = json_object_get_string(v);
	return *s ? s : NULL;
}

static bool has_value(json_object *args, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(args, key, &v) && v &&
	       !(json_object_is_type(v, json_type_string) && json_object_get_string_len(v) == 0);
}

/* ---- reminders in the future --------------------------------------------- */

/* Runs the plan's change once the reminder it sets is known to lie in the
 * future.  The due date comes from the arguments or, when they do not
 * move it, from the task (memo "due_at"); a wall-clock time needs the
 * user's time zone (memo "tz"), fetched once.  What cannot be computed
 * here (a malformed time, minutes without a due date) goes to the store,
 * which answers it with its own error. */
static void commit_if_future(struct tool_call *c);

static void got_zone(struct tool_call *c, json_object *user)
{
	json_object *tz = NULL;
	json_object_object_get_ex(user, "tz", &tz);
	json_object_object_add(tool_call_memo(c), "tz",
			       json_object_new_string(tz ? json_object_get_string(tz) : "UTC"));
	commit_if_future(c);
}

static void commit_if_future(struct tool_call *c)
{
	json_object *args = tool_call_args(c), *memo = tool_call_memo(c), *v;
	const char *tz = text_arg(memo, "tz");
	const char *field = has_value(args, "remind_at") ? "remind_at" : "remind_before_min";
	int64_t at = 0;
	enum instant known;

	if (strcmp(field, "remind_at") == 0) {
		known = instant_of(text_arg(args, "remind_at"), tz, &at);
	} else {
		const char *due = json_object_object_get_ex(args, "due_at", NULL)
					  ? text_arg(args, "due_at") : text_arg(memo, "due_at");
		json_object_object_get_ex(args, "remind_before_min", &v);
		known = json_object_is_type(v, json_type_int) ? instant_of(due, tz, &at)
							       : INSTANT_UNKNOWN;
		at -= json_object_get_int64(v) * 60;
	}
	if (known == INSTANT_NEEDS_ZONE) {
		json_object *none = json_object_new_object();
		tool_call_store(c, "user.get", none, got_zone);
		json_object_put(none);
		return;
	}
	int64_t now_ms = tool_call_now_ms(c);
	if (known == INSTANT_KNOWN && at * 1000 <= now_ms) {
		char when[32];
		time_t t = (time_t)at;
		struct tm tm;
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
		tool_call_fail(c, "REMINDER_IN_PAST", field,
			       "The reminder would fire at %s, %lld minutes ago; a reminder must lie in "
			       "the future.",
			       when, (long long)((now_ms / 1000 - at) / 60));
		return;
	}
	tool_call_commit(c);
}

static void got_task(struct tool_call *c, json_object *task)
{
	json_object *v;
	if (json_object_object_get_ex(task, "status", &v) &&
	    strcmp(json_object_get_string(v), "completed") == 0) {
		tool_call_fail(c, "TASK_COMPLETED", "task_id",
			       "The task is completed, so a reminder for it would never be useful.");
		return;
	}
	if (json_object_object_get_ex(task, "due_at", &v) && json_object_is_type(v, json_type_string))
		json_object_object_add(tool_call_memo(c), "due_at", json_object_get(v));
	commit_if_future(c);
}

static void fetch_task(struct tool_call *c)
{
	json_object *get = json_object_new_object(), *id;
	if (json_object_object_get_ex(tool_call_args(c), "id", &id))
		json_object_object_add(get, "id", json_object_get(id));
	tool_call_store(c, "task.get", get, got_task);
	json_object_put(get);
}

/* Whether the arguments set a reminder (rather than clear or keep one). */
static bool sets_reminder(json_object *args)
{
	return has_value(args, "remind_at") || has_value(args, "remind_before_min");
}

/* add_task and update_task: no reminder in the past.
 * Only minutes before a due date the update does not move need the task. */
static void begin_change(struct tool_call *c)
{
	json_object *args = tool_call_args(c);
	if (!sets_reminder(args) || (has_value(args, "remind_at") && has_value(args, "remind_before_min")))
		tool_call_commit(c); /* nothing to check, or the store's REMINDER_CONFLICT */
	else if (!json_object_object_get_ex(args, "id", NULL) ||
		 json_object_object_get_ex(args, "due_at", NULL) || has_value(args, "remind_at"))
		commit_if_future(c);
	else
		fetch_task(c);
}

/* set_reminder: one of the two, on a task that is not done yet. */
static void begin_set_reminder(struct tool_call *c)
{
	json_object *args = tool_call_args(c);
	bool at = has_value(args, "remind_at"), before = has_value(args, "remind_before_min");
	if (at == before) {
		tool_call_fail(c, at ? "REMINDER_CONFLICT" : "FIELD_REQUIRED", "remind_at",
			       "Give exactly one of remind_at (a time) and remind_before_min "
			       "(minutes before the due date).");
		return;
	}
	fetch_task(c);
}

/* ---- schemas --------------------------------------------------------------- */

/* ISO 8601 as the store reads it; an update may also send "" to clear. */
#define ISO_TIME "[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?" \
	"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?)?"
#define TIME_FORMAT_HELP "ISO 8601: 2026-11-27T10:00 or 2026-11-27 (midnight) is the user's " \
	"own time zone; add Z or an offset (2026-11-27T09:00:00Z, 2026-11-27T10:00+01:00) for an exact instant."

#define P_TIME(name, what) \
	"\"" name "\":{\"type\":\"string\",\"pattern\":\"^" ISO_TIME "$\"," \
	"\"description\":\"" what " " TIME_FORMAT_HELP "\"}"
#define P_TIME_CLEARABLE(name, what) \
	"\"" name "\":{\"type\":[\"string\",\"null\"],\"pattern\":\"^(" ISO_TIME ")?$\"," \
	"\"description\":\"" what " " TIME_FORMAT_HELP " null or \\\"\\\" removes it.\"}"

#define P_TITLE \
	"\"title\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200," \
	"\"description\":\"What is to be done, in a few words (1-200 characters).\"}"
#define P_PRIORITY \
	"\"priority\":{\"enum\":[\"low\",\"medium\",\"high\",\"urgent\"]," \
	"\"description\":\"low, medium (the default for new tasks), high or urgent.\"}"
#define P_REMIND_BEFORE(types) \
	"\"remind_before_min\":{\"type\":" types ",\"minimum\":0,\"maximum\":5256000," \
	"\"description\":\"Remind this many minutes before the due date (0 = at the due time); " \
	"the reminder moves when the due date moves. Needs a due date. Not together with remind_at.\"}"
#define P_RRULE(types) \
	"\"rrule\":{\"type\":" types ",\"maxLength\":500,\"description\":\"Makes the task recur: an " \
	"RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=MO,WE or FREQ=MONTHLY;BYDAY=-1FR;COUNT=12 " \
	"(FREQ is DAILY, WEEKLY, MONTHLY or YEARLY; also INTERVAL, COUNT or UNTIL (20261231 or " \
	"20261231T235959Z), BYDAY, BYMONTHDAY, BYMONTH, WKST; nothing else). It is stored in a " \
	"normal form. When the task is completed, the next one is created with the next " \
	"due date. Needs a due date to be useful.\"}"
#define P_LIMIT \
	"\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100," \
	"\"description\":\"Tasks per page, 1-100; default 20.\"}"
#define P_CURSOR \
	"\"cursor\":{\"type\":\"string\",\"description\":\"next_cursor of the previous page, " \
	"unchanged, with the same other arguments; omit for the first page.\"}"

#define SCHEMA_TASK_PAGE \
	"{\"type\":\"object\",\"properties\":{" \
	"\"tasks\":{\"type\":\"array\",\"items\":" SCHEMA_TASK "}," \
	"\"next_cursor\":{\"type\":[\"string\",\"null\"],\"description\":\"pass as cursor for the " \
	"next page; null on the last page\"}},\"required\":[\"tasks\",\"next_cursor\"]}"

#define SCHEMA_ONLY_TASK_ID \
	"{\"type\":\"object\",\"properties\":{" SCHEMA_TASK_ID_PROPERTY "}," \
	"\"required\":[\"task_id\"],\"additionalProperties\":false}"

/* ---- the tools --------------------------------------------------------------- */

static const struct tool_plan add_plan = {
	.tool = "add_task", .op = "task.create", .wrap = "task", .begin = begin_change,
};
static const struct tool_plan list_plan = { .tool = "list_tasks", .op = "task.list" };
static const struct tool_plan get_plan = {
	.tool = "get_task", .op = "task.get", .id_arg = "task_id", .wrap = "task",
};
static const struct tool_plan update_plan = {
	.tool = "update_task", .op = "task.update", .id_arg = "task_id", .wrap = "task",
	.begin = begin_change,
};
static const struct tool_plan complete_plan = {
	.tool = "complete_task", .op = "task.complete", .id_arg = "task_id", .wrap = "task",
};
static const struct tool_plan delete_plan = {
	.tool = "delete_task", .op = "task.delete", .id_arg = "task_id",
};
static const struct tool_plan search_plan = { .tool = "search_tasks", .op = "task.search" };
static const struct tool_plan reminder_plan = {
	.tool = "set_reminder", .op = "task.update", .id_arg = "task_id", .wrap = "task",
	.begin = begin_set_reminder,
};

TOOL_RUN(run_add, add_plan)
TOOL_RUN(run_list, list_plan)
TOOL_RUN(run_get, get_plan)
TOOL_RUN(run_update, update_plan)
TOOL_RUN(run_complete, complete_plan)
TOOL_RUN(run_delete, delete_plan)
TOOL_RUN(run_search, search_plan)
TOOL_RUN(run_set_reminder, reminder_plan)

const struct tool task_tools[] = {
	{
		.name = "add_task",
		.title = "Add a task",
		.description =
			"Creates a task for the user and returns it. Only title is required. Dates "
			"without Z or an offset are in the user's own time zone, so pass what the user "
			"said (\"tomorrow 9:00\" -> 2026-11-28T09:00) rather than converting it. category "
			"is the name of an existing category (see list_categories; create_category makes "
			"one); tags are names, created when missing, at most 10. A reminder is either "
			"remind_at (a time) or remind_before_min (minutes before due_at), and must lie in "
			"the future. rrule makes the task recur when it is completed. Errors name the "
			"field: TITLE_TOO_LONG, INVALID_DUE_DATE, CATEGORY_NOT_FOUND, TOO_MANY_TAGS, "
			"INVALID_RECURRENCE_RULE, REMINDER_IN_PAST, ...",
		.input_schema =
			"{\"type\":\"object\",\"properties\":{" P_TITLE ","
			"\"description\":{\"type\":\"string\",\"maxLength\":10000,"
			"\"description\":\"Details, up to 10000 characters.\"}," P_PRIORITY ","
			P_TIME("due_at", "When the task is due.") ","
			P_TIME("remind_at", "When to remind the user (must be in the future).") ","
			P_REMIND_BEFORE("\"integer\"") ","
			"\"category\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":50,"
			"\"description\":\"Name of an existing category.\"},"
			"\"tags\":" SCHEMA_TAG_NAMES("Tag names (1-30 characters each, at most 10); "
						     "missing tags are created.") ","
			P_RRULE("\"string\"") "},"
			"\"required\":[\"title\"],\"additionalProperties\":false}",
		.output_schema = SCHEMA_TASK_RESULT,
		.run = run_add,
	},
	{
		.name = "list_tasks",
		.title = "List tasks",
		.description =
			"Lists the user's tasks, filtered and sorted, one page at a time. By default "
			"only pending (not completed) tasks, oldest first, 20 per page. Filters combine "
			"with AND: status (pending, completed or all), priority, category (name), tags "
			"(with tags_mode any = at least one of them, all = every one), due_before / "
			"due_after (strictly before / after; tasks without a due date never match), and "
			"query (words that must occur in title or description). sort is created, due "
			"(soonest first, undated last) or priority (urgent first). When next_cursor is "
			"not null there are more: call again with cursor = next_cursor and the same "
			"arguments. For a ranked text search over all tasks use search_tasks.",
		.input_schema =
			"{\"type\":\"object\",\"properties\":{"
			"\"status\":{\"enum\":[\"pending\",\"completed\",\"all\"],"
			"\"description\":\"pending (default), completed or all.\"}," P_PRIORITY ","
			"\"category\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":50,"
			"\"description\":\"Only tasks in this category (its name).\"},"
			"\"tags\":" SCHEMA_TAG_NAMES("Only tasks with these tags (see tags_mode).") ","
			"\"tags_mode\":{\"enum\":[\"any\",\"all\"],\"description\":\"any (default): "
			"a task needs one of tags; all: every one of them.\"},"
			P_TIME("due_before", "Only tasks due before this time.") ","
			P_TIME("due_after", "Only tasks due after this time.") ","
			"\"query\":{\"type\":\"string\",\"maxLength\":500,\"description\":\"Words that "
			"must occur in the title or description; \\\"a phrase\\\" and -word work.\"},"
			"\"sort\":{\"enum\":[\"created\",\"due\",\"priority\"],\"description\":\"created "
			"(default, oldest first), due (soonest first) or priority (urgent first).\"},"
			P_LIMIT "," P_CURSOR "},\"additionalProperties\":false}",
		.output_schema = SCHEMA_TASK_PAGE,
		.read_only = true,
		.idempotent = true,
		.run = run_list,
	},
	{
		.name = "get_task",
		.title = "Get a task",
		.description =
			"Returns one task with all its fields (category, tags, due date, reminder and "
			"its state, recurrence rule, completion). task_id is the id from add_task, "
			"list_tasks or search_tasks. Fails with TASK_NOT_FOUND when the user has no such "
			"task.",
		.input_schema = SCHEMA_ONLY_TASK_ID,
		.output_schema = SCHEMA_TASK_RESULT,
		.read_only = true,
		.idempotent = true,
		.run = run_get,
	},
	{
		.name = "update_task",
		.title = "Update a task",
		.description =
			"Changes fields of a task and returns it; fields not given stay as they are. "
			"null or \"\" removes the description, due date, reminder, recurrence rule or "
			"category. tags replaces the whole set (add_tag_to_task / remove_tag_from_task "
			"change single tags). Moving due_at also moves a reminder that was given as "
			"remind_before_min. A new reminder must lie in the future. To mark the task "
			"done use complete_task. Dates without Z or an offset are in the user's time "
			"zone. Errors name the field (TASK_NOT_FOUND, INVALID_DUE_DATE, "
			"CATEGORY_NOT_FOUND, TOO_MANY_TAGS, INVALID_RECURRENCE_RULE, ...).",
		.input_schema =
			"{\"type\":\"object\",\"properties\":{" SCHEMA_TASK_ID_PROPERTY "," P_TITLE ","
			"\"description\":{\"type\":[\"string\",\"null\"],\"maxLength\":10000,"
			"\"description\":\"New details (up to 10000 characters); null or \\\"\\\" "
			"removes them.\"}," P_PRIORITY ","
			P_TIME_CLEARABLE("due_at", "New due date.") ","
			P_TIME_CLEARABLE("remind_at", "New reminder time (must be in the future).") ","
			P_REMIND_BEFORE("[\"integer\",\"null\"]") ","
			"\"category\":{\"type\":[\"string\",\"null\"],\"maxLength\":50,"
			"\"description\":\"Name of an existing category; null or \\\"\\\" removes "
			"the task from its category.\"},"
			"\"tags\":" SCHEMA_TAG_NAMES("The task's new set of tag names (replaces the "
						     "old set; [] removes all).") ","
			P_RRULE("[\"string\",\"null\"]") "},"
			"\"required\":[\"task_id\"],\"additionalProperties\":false}",
		.output_schema = SCHEMA_TASK_RESULT,
		.idempotent = true,
		.run = run_update,
	},
	{
		.name = "complete_task",
		.title = "Complete a task",
		.description =
			"Marks a task as done and returns it. A pending reminder is cancelled. If the "
			"task has a recurrence rule, the next occurrence is created shortly after "
			"(find it with list_tasks). Completing a task that is already completed changes "
			"nothing and is not an error.",
		.input_schema = SCHEMA_ONLY_TASK_ID,
		.output_schema = SCHEMA_TASK_RESULT,
		.idempotent = true,
		.run = run_complete,
	},
	{
		.name = "delete_task",
		.title = "Delete a task",
		.description =
			"Deletes a task for good (there is no undo) and returns it as it was. Prefer "
			"complete_task for tasks that were done; delete only when the user asks to "
			"remove a task. A recurring task's future occurrences are not created any more.",
		.input_schema = SCHEMA_ONLY_TASK_ID,
		.output_schema =
			"{\"type\":\"object\",\"properties\":{\"deleted\":{\"const\":true},"
			"\"task\":" SCHEMA_TASK "},\"required\":[\"deleted\",\"task\"]}",
		.destructive = true,
		.idempotent = true,
		.run = run_delete,
	},
	{
		.name = "search_tasks",
		.title = "Search tasks",
		.description =
			"Full-text search over the titles and descriptions of all the user's tasks, "
			"pending and completed, best match first (a match in the title ranks above one "
			"in the description). query takes words (all must match), \"a phrase\" in "
			"quotes, \"or\" between alternatives and -word to exclude; matching is by whole "
			"words, without stemming. An empty query lists every task. Pages as list_tasks "
			"does (limit, cursor, next_cursor).",
		.input_schema =
			"{\"type\":\"object\",\"properties\":{"
			"\"query\":{\"type\":\"string\",\"maxLength\":500,\"description\":\"What to "
			"look for, e.g. dentist or \\\"annual report\\\" -draft.\"},"
			P_LIMIT "," P_CURSOR "},\"additionalProperties\":false}",
		.output_schema = SCHEMA_TASK_PAGE,
		.read_only = true,
		.idempotent = true,
		.run = run_search,
	},
	{
		.name = "set_reminder",
		.title = "Set a reminder",
		.description =
			"Sets (or replaces) the reminder of a pending task: give exactly one of "
			"remind_at, a time that must be in the future, or remind_before_min, minutes "
			"before the task's due date (the task needs one; the reminder then follows the "
			"due date when it moves). The reminder is stored; the server sends it by email "
			"at that time, nothing is sent now. Returns the task with remind_at and "
			"reminder_state pending. Remove a reminder with update_task (remind_at: null). "
			"Errors: REMINDER_IN_PAST, INVALID_REMIND_AT, DUE_DATE_REQUIRED, TASK_COMPLETED, "
			"TASK_NOT_FOUND.",
		.input_schema =
			"{\"type\":\"object\",\"properties\":{" SCHEMA_TASK_ID_PROPERTY ","
			P_TIME("remind_at", "When to remind the user; must be in the future.") ","
			P_REMIND_BEFORE("\"integer\"") "},"
			"\"required\":[\"task_id\"],\"additionalProperties\":false}",
		.output_schema = SCHEMA_TASK_RESULT,
		.idempotent = true,
		.run = run_set_reminder,
	},
};

const size_t task_tools_count = sizeof task_tools / sizeof task_tools[0];
