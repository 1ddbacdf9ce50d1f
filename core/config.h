/* config.h - the typed option binder: a parsed file's values (the INI
 * reader, config_parse.h) checked against a schema, and printed back. */
#ifndef TODOD_CONFIG_H
#define TODOD_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/queue.h>

#include "config_parse.h"
#include "todod-plugin.h"

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

/* A SECRET value "SCHEME:REF" whose SCHEME may be a plugin's resolver
 * (cfg_resolver_scheme): which schemes are is known only once plugins
 * ran init, so binding leaves "" in the field and keeps the text here
 * (core/secrets.c settles it). */
struct cfg_secret_ref {
	STAILQ_ENTRY(cfg_secret_ref) link;
	char **field;        /* the conf member the value goes to */
	char *text;          /* "SCHEME:REF" as written */
	struct todod_err where; /* "FILE:LINE: [section] key 'k'", for messages */
};
STAILQ_HEAD(cfg_secret_refs, cfg_secret_ref);

/* cfg_bind, keeping SECRET values that may name a plugin's resolver in
 * `refs` (appended on success only).  cfg_bind itself reads them as
 * literals: what has no plugins (the CLI, `todod -t`) uses that. */
int cfg_bind_deferring(const struct todod_opt *schema, const struct cfg_file *cf,
		       const struct cfg_section *sec, void *conf, struct cfg_secret_refs *refs,
		       struct todod_err *err);
/* Forget the references (their text is wiped); the fields stay. */
void cfg_secret_refs_clear(struct cfg_secret_refs *refs);
void cfg_secret_ref_free(struct cfg_secret_ref *ref);
/* Whether the `len` bytes at `s` can be a resolver's scheme: a lowercase
 * word (a-z, then a-z, 0-9, '-', '_') other than "env" and "file". */
bool cfg_resolver_scheme(const char *s, size_t len);
/* The length of the scheme of a SECRET value that may name a plugin's
 * resolver ("dapr:store/key" gives 4), or 0. */
size_t cfg_secret_scheme_len(const char *value);
void cfg_conf_free(const struct todod_opt *schema, void *conf);

/* Whether one option has the same value in two bound confs. */
bool cfg_opt_equal(const struct todod_opt *opt, const void *a, const void *b);

/* Reload.  The names of the TODOD_OPT_NO_RELOAD options whose value
 * differs between the running and the freshly bound conf, as "a, b"
 * ("" when none; cut short to fit `size`). */
void cfg_no_reload_changes(const struct todod_opt *schema, const void *running,
			   const void *fresh, char *out, size_t size);
/* Swap every option without TODOD_OPT_NO_RELOAD between the two confs:
 * `running` gets the new values of what may change at run time and keeps
 * the rest, `fresh` gets the replaced values, for cfg_conf_free. */
void cfg_take_reloadable(const struct todod_opt *schema, void *running, void *fresh);

/* Resolve a secret reference: "env:NAME", "file:/path", or a literal. */
int cfg_resolve_secret(const char *ref, char **out, struct todod_err *err);

/* Single-value parsers shared with the CLI; 0 on success. */
int cfg_parse_duration_ms(const char *s, int64_t *out);
int cfg_parse_size(const char *s, int64_t *out);
int cfg_parse_bool(const char *s, bool *out);

/* `todod -t`: "key = value" per option, secrets shown as "(secret)"
 * (a reference to a plugin's resolver too: without init, which scheme is
 * one is unknown, and "(secret from X)" would show the head of a literal
 * that merely contains a colon). */
void cfg_print(FILE *out, const char *section, const struct todod_opt *schema,
	       const void *conf);
/* `todod --help-plugin NAME`: key, type, default, flags, description. */
void cfg_print_help(FILE *out, const struct todod_opt *schema);

#endif
