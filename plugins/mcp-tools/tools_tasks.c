/* tools_tasks.c - the task tools: add, list, get, update, complete,
 * delete, search, and set_reminder.
 *
 * Each is one store call; the store checks everything the arguments can
 * get wrong, including a reminder in the past (which the original system's
 * set_reminder accepted and then sent at once). */
#include "tools_internal.h"

/* An argument that is present and not null or "". */
static bool has_value(json_object *args, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(args, key, &v) && v &&
	       !(json_object_is_type(v, json_type_string) && json_object_get_string_len(v) == 0);
}

/* set_reminder: exactly one of the two.  The store refuses a reminder in
 * the past (REMINDER_IN_PAST) or on a completed task (TASK_COMPLETED). */
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
	tool_call_commit(c);
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
	"(FREQ is DAILY, WEEKLY, MONTHLY or YEARLY; also INTERVAL (a step of at most 100 years), " \
	"COUNT or UNTIL (20261231 or 20261231T235959Z), BYDAY, BYMONTHDAY, BYMONTH, WKST; " \
	"nothing else). It is stored in a " \
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
	.tool = "add_task", .op = "task.create", .wrap = "task",
};
static const struct tool_plan list_plan = { .tool = "list_tasks", .op = "task.list" };
static const struct tool_plan get_plan = {
	.tool = "get_task", .op = "task.get", .id_arg = "task_id", .wrap = "task",
};
static const struct tool_plan update_plan = {
	.tool = "update_task", .op = "task.update", .id_arg = "task_id", .wrap = "task",
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
