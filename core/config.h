/* config.h - the INI parser and the typed option binder.
 *
 * Parsing keeps file:line on every section and key, so every later error
 * (unknown key, wrong type, out of range, missing) can name its place. */
#ifndef TODOD_CONFIG_H
#define TODOD_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
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

/* Check every key of `sec` against `schema`, apply defaults, convert and
 * store into `conf` (zeroed by the caller, sized by the schema's owner).
 * `sec` may be NULL (defaults only; a REQUIRED key is then an error naming
 * FILE alone).  On error `conf` is released with cfg_conf_free.  Messages:
 *   "FILE:LINE: [plugin.x] unknown key 'k'"
 *   "FILE:LINE: [plugin.x] key 'port': expected an integer, got 'abc'"
 *   "FILE:LINE: [plugin.x] key 'port': 70000 is out of range 1..65535"
 *   "FILE:LINE: [plugin.x] missing required key 'brokers'"  (LINE of the header) */
int cfg_bind(const struct todod_opt *schema, const struct cfg_file *cf,
	     const struct cfg_section *sec, void *conf, struct todod_err *err);
void cfg_conf_free(const struct todod_opt *schema, void *conf);

/* Whether one option has the same value in two bound confs. */
bool cfg_opt_equal(const struct todod_opt *opt, const void *a, const void *b);

/* Resolve a secret reference: "env:NAME", "file:/path", or a literal. */
int cfg_resolve_secret(const char *ref, char **out, struct todod_err *err);

/* Single-value parsers shared with the CLI; 0 on success. */
int cfg_parse_duration_ms(const char *s, int64_t *out);
int cfg_parse_size(const char *s, int64_t *out);
int cfg_parse_bool(const char *s, bool *out);

/* Shared by the reader (config_parse.c) and the binder (config.c). */
/* "PATH:LINE: [SECTION] message"; LINE is left out when 0, SECTION when NULL. */
int cfg_located_fail(struct todod_err *err, const char *path, int line, const char *section,
		     const char *fmt, ...) TODOD_PRINTF(5, 6);
/* Up to `cap` bytes, retrying short reads; with `stop_at_newline` it
 * returns as soon as a '\n' has arrived.  -1 with errno on failure. */
ssize_t cfg_read_fd(int fd, char *buf, size_t cap, bool stop_at_newline);
static inline bool cfg_is_blank(char c) { return c == ' ' || c == '\t'; }

/* `todod -t`: "key = value" per option, secrets shown as "(secret)". */
void cfg_print(FILE *out, const char *section, const struct todod_opt *schema,
	       const void *conf);
/* `todod --help-plugin NAME`: key, type, default, flags, description. */
void cfg_print_help(FILE *out, const struct todod_opt *schema);

#endif
