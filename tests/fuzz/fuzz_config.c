/* fuzz_config.c - libFuzzer target: the INI parser, then the binder over
 * every option type, printing and comparison, all of it freed again. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

struct fuzz_conf {
	char *name;
	int64_t port;
	bool verbose;
	int64_t timeout_ms;
	int64_t max_body;
	int mode;
	struct todod_list brokers;
	char *password;
};

static const char *const modes[] = { "plain", "starttls", "tls", NULL };

#define FIELD(f) offsetof(struct fuzz_conf, f)

static const struct todod_opt schema[] = {
	{ "name", TODOD_OPT_STRING, "todod", 0, FIELD(name), 0, 0, NULL, "a string" },
	{ "port", TODOD_OPT_INT, "8080", 0, FIELD(port), 1, 65535, NULL, "bounded int" },
	{ "verbose", TODOD_OPT_BOOL, "no", 0, FIELD(verbose), 0, 0, NULL, "a bool" },
	{ "timeout", TODOD_OPT_DURATION, "30s", 0, FIELD(timeout_ms), 1, 86400000, NULL,
	  "bounded duration" },
	{ "max.body", TODOD_OPT_SIZE, "1M", TODOD_OPT_NO_RELOAD, FIELD(max_body), 0, 0, NULL,
	  "unbounded size" },
	{ "mode", TODOD_OPT_ENUM, "plain", 0, FIELD(mode), 0, 0, modes, "an enum" },
	{ "brokers", TODOD_OPT_LIST, NULL, 0, FIELD(brokers), 0, 0, NULL, "a list" },
	/* env: and file: are resolved for real; file: only reads regular files. */
	{ "password", TODOD_OPT_SECRET, NULL, 0, FIELD(password), 0, 0, NULL, "a secret" },
	{ NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL },
};

static void bind_and_use(const struct cfg_file *cf, const struct cfg_section *sec, FILE *sink)
{
	struct fuzz_conf conf = { 0 };
	struct todod_err err;

	if (cfg_bind(schema, cf, sec, &conf, &err) != 0)
		return;
	cfg_print(sink, sec ? sec->name : NULL, schema, &conf);
	for (const struct todod_opt *opt = schema; opt->key; opt++)
		if (!cfg_opt_equal(opt, &conf, &conf))
			__builtin_trap();
	cfg_conf_free(schema, &conf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	struct cfg_file *cf;
	struct todod_err err;

	if (!sink)
		sink = fopen("/dev/null", "w");
	if (cfg_parse_buffer("fuzz.conf", (const char *)data, size, &cf, &err) != 0)
		return 0;
	for (size_t i = 0; i < cf->n_sections; i++) {
		if (cfg_section(cf, cf->sections[i].name) != &cf->sections[i])
			__builtin_trap();
		bind_and_use(cf, &cf->sections[i], sink);
	}
	bind_and_use(cf, NULL, sink);
	cfg_free(cf);
	return 0;
}
