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
	{ .key = "name", .type = TODOD_OPT_STRING, .default_value = "todod", .offset = FIELD(name),
	  .description = "a string" },
	{ .key = "port", .type = TODOD_OPT_INT, .default_value = "8080", .offset = FIELD(port),
	  .min = 1, .max = 65535, .description = "bounded int" },
	{ .key = "verbose", .type = TODOD_OPT_BOOL, .default_value = "no", .offset = FIELD(verbose),
	  .description = "a bool" },
	{ .key = "timeout", .type = TODOD_OPT_DURATION, .default_value = "30s",
	  .offset = FIELD(timeout_ms), .min = 1, .max = 86400000,
	  .description = "bounded duration" },
	{ .key = "max.body", .type = TODOD_OPT_SIZE, .default_value = "1M",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = FIELD(max_body),
	  .description = "unbounded size" },
	{ .key = "mode", .type = TODOD_OPT_ENUM, .default_value = "plain", .offset = FIELD(mode),
	  .choices = modes, .description = "an enum" },
	{ .key = "brokers", .type = TODOD_OPT_LIST, .offset = FIELD(brokers),
	  .description = "a list" },
	{ .key = "password", .type = TODOD_OPT_SECRET, .offset = FIELD(password),
	  .description = "a secret" },
	{ .key = NULL },
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
