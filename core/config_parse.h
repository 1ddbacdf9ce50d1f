/* config_parse.h - the INI reader: sections, keys, values and the line
 * each came from, nothing typed yet (config.h binds values to options).
 *
 * Parsing keeps file:line on every section and key, so every later error
 * (unknown key, wrong type, out of range, missing) can name its place. */
#ifndef TODOD_CONFIG_PARSE_H
#define TODOD_CONFIG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "todod-plugin.h"

struct cfg_entry {
	char *key;
	char *value;  /* trimmed; surrounding double quotes removed */
	int line;
};

struct cfg_section {
	char *name;   /* "core", "plugin.email", ... */
	int line;
	struct cfg_entry *entries;
	size_t n_entries;
};

struct cfg_file {
	char *path;   /* as given; used in every message */
	struct cfg_section *sections;
	size_t n_sections;
};

/* Parse a file, or a buffer named `name` (for tests and the fuzzer).
 * Syntax errors: "FILE:LINE: <reason>".  Duplicate sections and duplicate
 * keys in a section are errors naming both lines. */
int cfg_parse_file(const char *path, struct cfg_file **out, struct todod_err *err);
int cfg_parse_buffer(const char *name, const char *buf, size_t len,
		     struct cfg_file **out, struct todod_err *err);
void cfg_free(struct cfg_file *cf);

const struct cfg_section *cfg_section(const struct cfg_file *cf, const char *name);

/* Also used by the binder (config.c), which names places the same way,
 * reads secret files and prints values back in this syntax. */

/* "PATH:LINE: [SECTION] message"; LINE is left out when 0, SECTION when NULL. */
int cfg_located_fail(struct todod_err *err, const char *path, int line, const char *section,
		     const char *fmt, ...) TODOD_PRINTF(5, 6);
/* Up to `cap` bytes, retrying short reads; with `stop_at_newline` it
 * returns as soon as a '\n' has arrived.  -1 with errno on failure. */
ssize_t cfg_read_fd(int fd, char *buf, size_t cap, bool stop_at_newline);
static inline bool cfg_is_blank(char c) { return c == ' ' || c == '\t'; }

#endif
