/* tools_labels.c - categories and tags: create, list, update and delete
 * each, and adding tags to or removing them from a task.
 *
 * Categories and tags are the same thing to the store (a name, a colour,
 * an id) and differ in how tasks use them, so one set of macros describes
 * both kinds and only the sentences about that use differ.  Labels are
 * changed by id (category_id, tag_id: what list_categories and list_tags
 * show, and what the store takes), while tasks name them: a model that
 * just read a task can file or tag it without a lookup. */
#include "tools_internal.h"

/* ---- schemas ------------------------------------------------------------- */

#define COLOR_HELP "A color as #RRGGBB, e.g. #3366FF."

#define P_LABEL_ID(id, kind, kinds) \
	"\"" #id "\":{\"type\":\"integer\",\"minimum\":1,\"description\":\"The " #kind "'s id, " \
	"from list_" #kinds ".\"}"
#define P_LABEL_NAME(max, what) \
	"\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":" #max "," \
	"\"description\":\"" what " (1-" #max " characters, unique among the user's own).\"}"

/* Pages as list_tasks pages: limit and cursor in, next_cursor out. */
#define LABEL_PAGE_INPUT(kinds) \
	"{\"type\":\"object\",\"properties\":{" \
	"\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100," \
	"\"description\":\"" #kinds " per page, 1-100; default 20.\"}," \
	"\"cursor\":{\"type\":\"string\",\"description\":\"next_cursor of the previous page, " \
	"unchanged; omit for the first page.\"}},\"additionalProperties\":false}"
#define LABEL_PAGE_RESULT(kinds) \
	"{\"type\":\"object\",\"properties\":{\"" #kinds "\":{\"type\":\"array\",\"items\":" \
	SCHEMA_LABEL "},\"next_cursor\":{\"type\":[\"string\",\"null\"],\"description\":" \
	"\"pass as cursor for the next page; null on the last page\"}}," \
	"\"required\":[\"" #kinds "\",\"next_cursor\"]}"

#define LABEL_RESULT(kind) \
	"{\"type\":\"object\",\"properties\":{\"" #kind "\":" SCHEMA_LABEL "},\"required\":[\"" #kind "\"]}"

/* The four tools of one kind.  `about` says how tasks use the kind,
 * `on_delete` what deleting one does to its tasks. */
#define LABEL_TOOLS(kind, Kind, kinds, id, max, about, on_delete) \
	{ \
		.name = "create_" #kind, \
		.title = "Create a " #kind, \
		.description = "Creates a " #kind " and returns it with its id. " about \
			" Fails with " #Kind "_EXISTS when the user already has a " #kind \
			" of that name, and with QUOTA_EXCEEDED when the user has as many " #kinds \
			" as the server allows.", \
		.input_schema = "{\"type\":\"object\",\"properties\":{" \
			P_LABEL_NAME(max, "The " #kind "'s name") "," \
			"\"color\":{\"type\":\"string\",\"pattern\":\"^#[0-9A-Fa-f]{6}$\"," \
			"\"description\":\"" COLOR_HELP " Optional.\"}}," \
			"\"required\":[\"name\"],\"additionalProperties\":false}", \
		.output_schema = LABEL_RESULT(kind), \
		.run = run_create_##kind, \
	}, \
	{ \
		.name = "list_" #kinds, \
		.title = "List " #kinds, \
		.description = "Lists the user's " #kinds " in name order, each with its id (the " \
			#id " of update_" #kind " and delete_" #kind "), name and color, a page at " \
			"a time: when next_cursor is not null there are more; call again with " \
			"cursor = next_cursor. " about, \
		.input_schema = LABEL_PAGE_INPUT(kinds), \
		.output_schema = LABEL_PAGE_RESULT(kinds), \
		.read_only = true, \
		.idempotent = true, \
		.run = run_list_##kind, \
	}, \
	{ \
		.name = "update_" #kind, \
		.title = "Rename or recolor a " #kind, \
		.description = "Renames a " #kind " and/or changes its color, and returns it; tasks " \
			"keep it under its new name. Give " #id " (from list_" #kinds ") and name, " \
			"color or both; color null or \"\" removes the color. Fails with " #Kind \
			"_NOT_FOUND or " #Kind "_EXISTS (the new name is taken).", \
		.input_schema = "{\"type\":\"object\",\"properties\":{" \
			P_LABEL_ID(id, kind, kinds) "," P_LABEL_NAME(max, "The new name") "," \
			"\"color\":{\"type\":[\"string\",\"null\"],\"pattern\":\"^(#[0-9A-Fa-f]{6})?$\"," \
			"\"description\":\"" COLOR_HELP " null or \\\"\\\" removes the color.\"}}," \
			"\"required\":[\"" #id "\"],\"additionalProperties\":false}", \
		.output_schema = LABEL_RESULT(kind), \
		.idempotent = true, \
		.run = run_update_##kind, \
	}, \
	{ \
		.name = "delete_" #kind, \
		.title = "Delete a " #kind, \
		.description = "Deletes a " #kind " for good and returns it as it was. " on_delete \
			" Give " #id " from list_" #kinds ".", \
		.input_schema = "{\"type\":\"object\",\"properties\":{" P_LABEL_ID(id, kind, kinds) \
			"},\"required\":[\"" #id "\"],\"additionalProperties\":false}", \
		.output_schema = "{\"type\":\"object\",\"properties\":{\"deleted\":{\"const\":true}," \
			"\"" #kind "\":" SCHEMA_LABEL "},\"required\":[\"deleted\",\"" #kind "\"]}", \
		.destructive = true, \
		.idempotent = true, \
		.run = run_delete_##kind, \
	}

/* What the four tools of one kind call. */
#define LABEL_PLANS(kind, kinds, id) \
	static const struct tool_plan create_##kind = { \
		.tool = "create_" #kind, .op = #kind ".create", .wrap = #kind, \
	}; \
	static const struct tool_plan list_##kind = { .tool = "list_" #kinds, .op = #kind ".list" }; \
	static const struct tool_plan update_##kind = { \
		.tool = "update_" #kind, .op = #kind ".update", .id_arg = #id, .wrap = #kind, \
	}; \
	static const struct tool_plan delete_##kind = { \
		.tool = "delete_" #kind, .op = #kind ".delete", .id_arg = #id, \
	}; \
	TOOL_RUN(run_create_##kind, create_##kind) \
	TOOL_RUN(run_list_##kind, list_##kind) \
	TOOL_RUN(run_update_##kind, update_##kind) \
	TOOL_RUN(run_delete_##kind, delete_##kind)

LABEL_PLANS(category, categories, category_id)
LABEL_PLANS(tag, tags, tag_id)

static const struct tool_plan tag_add = {
	.tool = "add_tag_to_task", .op = "task.tag_add", .id_arg = "task_id", .wrap = "task",
};
static const struct tool_plan tag_remove = {
	.tool = "remove_tag_from_task", .op = "task.tag_remove", .id_arg = "task_id", .wrap = "task",
};
TOOL_RUN(run_tag_add, tag_add)
TOOL_RUN(run_tag_remove, tag_remove)

#define TAGS_OF_TASK_INPUT(what) \
	"{\"type\":\"object\",\"properties\":{" SCHEMA_TASK_ID_PROPERTY "," \
	"\"tags\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":10,\"items\":{\"type\":" \
	"\"string\",\"minLength\":1,\"maxLength\":30},\"description\":\"" what "\"}}," \
	"\"required\":[\"task_id\",\"tags\"],\"additionalProperties\":false}"

const struct tool label_tools[] = {
	LABEL_TOOLS(category, CATEGORY, categories, category_id, 50,
		    "A task is in at most one category: add_task and update_task take the "
		    "category's name.",
		    "Its tasks are kept and are then in no category."),
	LABEL_TOOLS(tag, TAG, tags, tag_id, 30,
		    "A task has up to 10 tags, given by name; add_task, update_task and "
		    "add_tag_to_task create missing tags themselves, so create_tag is only needed "
		    "for a tag with a color.",
		    "It is removed from every task that had it; the tasks are kept."),
	{
		.name = "add_tag_to_task",
		.title = "Tag a task",
		.description =
			"Adds one or more tags (by name) to a task, keeping its other tags, and returns "
			"the task. Tags the user does not have yet are created (QUOTA_EXCEEDED when the "
			"user has as many tags as the server allows). Adding a tag the task already has "
			"changes nothing. A task has at most 10 tags (TOO_MANY_TAGS).",
		.input_schema = TAGS_OF_TASK_INPUT("Tag names to add (1-30 characters each)."),
		.output_schema = SCHEMA_TASK_RESULT,
		.idempotent = true,
		.run = run_tag_add,
	},
	{
		.name = "remove_tag_from_task",
		.title = "Untag a task",
		.description =
			"Removes one or more tags (by name) from a task and returns the task; the tags "
			"themselves stay (delete_tag deletes a tag everywhere). Names the task does not "
			"have are ignored.",
		.input_schema = TAGS_OF_TASK_INPUT("Tag names to remove."),
		.output_schema = SCHEMA_TASK_RESULT,
		.destructive = true,
		.idempotent = true,
		.run = run_tag_remove,
	},
};

const size_t label_tools_count = sizeof label_tools / sizeof label_tools[0];
