/* fuzz_mcp_json.c - libFuzzer target for reading MCP messages.
 *
 * Besides crashes, leaks and undefined behaviour it checks what a client
 * relies on: a message mcp_json_read accepts serializes to JSON that it
 * accepts again as an equal value, and an integer id goes out as a JSON
 * integer (the digits found by the id scanner, never a stray slice). */
#include "mcp_json.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_object *read_back(const char *text)
{
	char why[120];
	json_object *value = NULL;
	if (mcp_json_read(text, strlen(text), &value, why, sizeof why) != 0)
		abort();
	return value;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[120];
	json_object *msg = NULL;
	if (size > 64 * 1024 ||
	    mcp_json_read((const char *)data, size, &msg, why, sizeof why) != 0)
		return 0;

	json_object *again = read_back(json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN));
	if (!json_object_equal(msg, again))
		abort();
	json_object_put(again);

	json_object *id;
	if (json_object_object_get_ex(msg, "id", &id) && json_object_is_type(id, json_type_int)) {
		const char *text = json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN);
		json_object *echoed = read_back(text);
		if (!json_object_is_type(echoed, json_type_int))
			abort();
		json_object_put(echoed);
	}
	json_object_put(msg);
	return 0;
}
