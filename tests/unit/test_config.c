/* test_config.c - the INI parser and the option binder: every refusal
 * with its exact message, and the values a good file turns into. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

struct test_conf {
	char *name;
	int64_t port;
	bool verbose;
	int64_t timeout_ms;
	int64_t max_body;
	int mode;
	struct todod_list brokers;
	char *password;
	int64_t socket_timeout;
	struct todod_list passthrough;
};

static const char *const modes[] = { "plain", "starttls", "tls", NULL };

#define FIELD(f) offsetof(struct test_conf, f)

static const struct todod_opt schema[] = {
	{ .key = "name", .type = TODOD_OPT_STRING, .default_value = "todod", .offset = FIELD(name),
	  .description = "instance name" },
	{ .key = "port", .type = TODOD_OPT_INT, .default_value = "8080", .offset = FIELD(port),
	  .min = 1, .max = 65535, .description = "listen port" },
	{ .key = "verbose", .type = TODOD_OPT_BOOL, .default_value = "no", .offset = FIELD(verbose),
	  .description = "chatty logs" },
	{ .key = "timeout", .type = TODOD_OPT_DURATION, .default_value = "30s",
	  .offset = FIELD(timeout_ms), .min = 1000, .max = 3600000,
	  .description = "request timeout" },
	{ .key = "max.body", .type = TODOD_OPT_SIZE, .default_value = "1M",
	  .offset = FIELD(max_body), .min = 1024, .max = 1 << 30, .description = "largest body" },
	{ .key = "mode", .type = TODOD_OPT_ENUM, .default_value = "starttls", .offset = FIELD(mode),
	  .choices = modes, .description = "TLS mode" },
	{ .key = "brokers", .type = TODOD_OPT_LIST,
	  .flags = TODOD_OPT_REQUIRED | TODOD_OPT_NO_RELOAD, .offset = FIELD(brokers),
	  .description = "bootstrap servers" },
	{ .key = "password", .type = TODOD_OPT_SECRET, .offset = FIELD(password),
	  .description = "SMTP password" },
	{ .key = "librdkafka.socket.timeout.ms", .type = TODOD_OPT_INT,
	  .offset = FIELD(socket_timeout), .description = "passed through" },
	{ .key = "librdkafka.", .type = TODOD_OPT_PREFIX, .offset = FIELD(passthrough),
	  .description = "any librdkafka property" },
	{ .key = NULL },
};

/* Parse, then bind the first section: the message of whichever failed. */
static const char *first_error(const char *name, const char *text, size_t len,
			       struct todod_err *err)
{
	struct cfg_file *cf;
	struct test_conf conf = { 0 };

	err->text[0] = '\0';
	if (cfg_parse_buffer(name, text, len, &cf, err) != 0)
		return err->text;
	if (cfg_bind(schema, cf, cf->n_sections ? &cf->sections[0] : NULL, &conf, err) == 0) {
		cfg_conf_free(schema, &conf);
		snprintf(err->text, sizeof err->text, "(accepted)");
	}
	cfg_free(cf);
	return err->text;
}

static const struct {
	const char *text;
	size_t len; /* 0: strlen(text) */
	const char *want;
} bad_configs[] = {
	/* syntax */
	{ "port = 1\n", 0, "bad.conf:1: key 'port' outside of any section" },
	{ "[plugin.x]\nport\n", 0, "bad.conf:2: missing '=' (expected key = value)" },
	{ "[plugin.x]\n  = 1\n", 0, "bad.conf:2: empty key" },
	{ "[plugin.x]\nname = \"abc\n", 0, "bad.conf:2: unterminated quoted value" },
	{ "[plugin.x]\nname = \"abc\\\"\n", 0, "bad.conf:2: unterminated quoted value" },
	{ "[plugin.x]\nna me = 1\n", 0,
	  "bad.conf:2: invalid key 'na me' (allowed: A-Z a-z 0-9 _ . -)" },
	{ "[plugin.x]\n\"name\" = 1\n", 0,
	  "bad.conf:2: invalid key '\"name\"' (allowed: A-Z a-z 0-9 _ . -)" },
	{ "[plugin.x\n", 0, "bad.conf:1: unterminated section header, missing ']'" },
	{ "# c\n[ ]\n", 0, "bad.conf:2: empty section name" },
	{ "[plu gin]\n", 0, "bad.conf:1: invalid section name 'plu gin' (allowed: A-Z a-z 0-9 _ . -)" },
	{ "[core] x\n", 0, "bad.conf:1: unexpected text after section header" },
	{ "[a]\n[b]\n\n[a]\n", 0, "bad.conf:4: duplicate section [a] (first at line 1)" },
	{ "[plugin.x]\nport = 1\n\nport = 2\n", 0,
	  "bad.conf:4: [plugin.x] duplicate key 'port' (first at line 2)" },
	{ "[plugin.x]\nname = \"a\" b\n", 0, "bad.conf:2: unexpected text after closing quote" },
	{ "[plugin.x]\nname = \"a\\nb\"\n", 0,
	  "bad.conf:2: unknown escape in quoted value (only \\\" and \\\\ are allowed)" },
	{ "[plugin.x]\nname = a\0b\n", 22, "bad.conf:2: NUL byte in line" },
	{ "[plugin.x]\nname = \xff\n", 0, "bad.conf:2: invalid UTF-8" },
	{ "[plugin.x]\nname = \xc0\xaf\n", 0, "bad.conf:2: invalid UTF-8" },
	{ "[plugin.x]\nname = \xed\xa0\x80\n", 0, "bad.conf:2: invalid UTF-8" },
	/* binding */
	{ "[plugin.x]\nbrokers = a\nbogus = 1\n", 0, "bad.conf:3: [plugin.x] unknown key 'bogus'" },
	{ "[plugin.x]\nport = abc\n", 0,
	  "bad.conf:2: [plugin.x] key 'port': expected an integer, got 'abc'" },
	{ "[plugin.x]\nport = 99999999999999999999\n", 0,
	  "bad.conf:2: [plugin.x] key 'port': expected an integer, got '99999999999999999999'" },
	{ "[plugin.x]\nport = 70000\n", 0,
	  "bad.conf:2: [plugin.x] key 'port': 70000 is out of range 1..65535" },
	{ "[plugin.x]\n\nport = 0\n", 0,
	  "bad.conf:3: [plugin.x] key 'port': 0 is out of range 1..65535" },
	{ "[plugin.x]\ntimeout = 5x\n", 0,
	  "bad.conf:2: [plugin.x] key 'timeout': expected a duration like 30s or 500ms, got '5x'" },
	{ "[plugin.x]\ntimeout = -5s\n", 0,
	  "bad.conf:2: [plugin.x] key 'timeout': expected a duration like 30s or 500ms, got '-5s'" },
	{ "[plugin.x]\ntimeout = 2h\n", 0,
	  "bad.conf:2: [plugin.x] key 'timeout': 2h is out of range 1s..1h" },
	{ "[plugin.x]\ntimeout = 500ms\n", 0,
	  "bad.conf:2: [plugin.x] key 'timeout': 500ms is out of range 1s..1h" },
	{ "[plugin.x]\nmax.body = 12q\n", 0,
	  "bad.conf:2: [plugin.x] key 'max.body': expected a size like 512k or 1M, got '12q'" },
	{ "[plugin.x]\nmax.body = 2G\n", 0,
	  "bad.conf:2: [plugin.x] key 'max.body': 2G is out of range 1k..1G" },
	{ "[plugin.x]\nverbose = maybe\n", 0,
	  "bad.conf:2: [plugin.x] key 'verbose': expected yes or no, got 'maybe'" },
	{ "[plugin.x]\nmode = ssl\n", 0,
	  "bad.conf:2: [plugin.x] key 'mode': expected one of: plain, starttls, tls, got 'ssl'" },
	{ "# head\n[plugin.x]\nport = 1\n", 0,
	  "bad.conf:2: [plugin.x] missing required key 'brokers'" },
	{ "[plugin.x]\nbrokers = a\npassword = env:TODOD_TEST_SURELY_UNSET\n", 0,
	  "bad.conf:3: [plugin.x] key 'password': environment variable TODOD_TEST_SURELY_UNSET "
	  "is not set" },
	{ "[plugin.x]\nbrokers = a\npassword = file:/nonexistent/todod-secret\n", 0,
	  "bad.conf:3: [plugin.x] key 'password': cannot read secret file "
	  "/nonexistent/todod-secret: No such file or directory" },
	{ "[plugin.x]\nbrokers = a\npassword = env:\n", 0,
	  "bad.conf:3: [plugin.x] key 'password': 'env:' needs a variable name" },
};

static void test_bad_configs(void)
{
	struct todod_err err;

	for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
		const char *text = bad_configs[i].text;
		size_t len = bad_configs[i].len ? bad_configs[i].len : strlen(text);
		is_str(first_error("bad.conf", text, len, &err), bad_configs[i].want, "bad config %zu", i);
	}
}

static void test_limits(void)
{
	struct todod_err err;
	size_t big = 1024 * 1024 + 1;
	char *buf = malloc(big);

	/* 4096 bytes is the longest line allowed, 4097 is one too many. */
	memcpy(buf, "[a]\nk = ", 8);
	memset(buf + 8, 'x', 4096 - 4);
	buf[4100] = '\n';
	struct cfg_file *cf;
	ok(cfg_parse_buffer("long.conf", buf, 4101, &cf, &err) == 0, "a 4096-byte line is fine");
	cfg_free(cf);
	buf[4100] = 'x';
	is_str(first_error("long.conf", buf, 4101, &err), "long.conf:2: line longer than 4096 bytes",
	       "a 4097-byte line is refused");

	/* 100-byte comment lines: the byte past 1 MiB sits on line 10486. */
	for (size_t i = 0; i < big; i++)
		buf[i] = i % 100 == 99 ? '\n' : '#';
	is_str(first_error("big.conf", buf, big, &err), "big.conf:10486: file larger than 1 MiB",
	       "a file over 1 MiB is refused");
	ok(cfg_parse_buffer("big.conf", buf, big - 1, &cf, &err) == 0, "exactly 1 MiB is fine");
	cfg_free(cf);
	free(buf);
}

static const char good_text[] =
	"\xef\xbb\xbf# leading comment\n"
	"  ; another comment\n"
	"\n"
	"[core]\r\n"
	"  listen = 127.0.0.1:8080   # inline comment\r\n"
	"path = /srv/a#b\n"
	"empty =\n"
	"[plugin.x]   # trailing comment\n"
	"brokers = kafka1:9092, kafka2:9092  kafka3:9092,,\n"
	"port=9000\n"
	"verbose = On\n"
	"timeout = 1500ms\n"
	"max.body = 64kB\n"
	"mode = tls\n"
	"name = \"hash # inside \\\"quoted\\\" \\\\ done\"   # trailing\n"
	"password = env:TODOD_TEST_PASSWORD\n"
	"librdkafka.socket.timeout.ms = 1500\n"
	"librdkafka.linger.ms = 7\n"
	"librdkafka.client.rack = \" rack a\"\n"
	"[plugin.defaults]\n"
	"brokers = solo\n";

static void test_parse_good(void)
{
	struct todod_err err = { "" };
	struct cfg_file *cf;

	if (!ok(cfg_parse_buffer("good.conf", good_text, strlen(good_text), &cf, &err) == 0,
		"good config parses (%s)", err.text))
		return;
	ok(cf->n_sections == 3, "three sections");
	const struct cfg_section *core = cfg_section(cf, "core");
	if (ok(core && core->n_entries == 3, "[core] has three keys")) {
		ok(core->line == 4, "[core] is on line 4");
		is_str(core->entries[0].value, "127.0.0.1:8080", "inline comment and blanks stripped");
		ok(core->entries[0].line == 5, "key line recorded");
		is_str(core->entries[1].value, "/srv/a#b", "'#' without a blank before is literal");
		is_str(core->entries[2].value, "", "empty value");
	}
	ok(cfg_section(cf, "plugin.nope") == NULL, "unknown section is NULL");

	setenv("TODOD_TEST_PASSWORD", "hunter2-from-env", 1);
	struct test_conf conf = { 0 };
	const struct cfg_section *sec = cfg_section(cf, "plugin.x");
	if (ok(cfg_bind(schema, cf, sec, &conf, &err) == 0, "binds (%s)", err.text)) {
		ok(conf.brokers.n == 3, "three brokers, empty items skipped");
		is_str(conf.brokers.items[2], "kafka3:9092", "blank-separated item");
		ok(conf.brokers.items[3] == NULL, "list is NULL-terminated");
		ok(conf.port == 9000, "int");
		ok(conf.verbose, "bool 'On'");
		ok(conf.timeout_ms == 1500, "duration in ms");
		ok(conf.max_body == 65536, "size 64kB");
		ok(conf.mode == 2, "enum index");
		is_str(conf.name, "hash # inside \"quoted\" \\ done", "quoted value with escapes");
		is_str(conf.password, "hunter2-from-env", "secret from env:");
		ok(conf.socket_timeout == 1500, "dotted key: an exact key wins over a prefix");
		if (ok(conf.passthrough.n == 2, "prefix family collects its lines")) {
			is_str(conf.passthrough.items[0], "linger.ms=7", "name=value, prefix cut");
			is_str(conf.passthrough.items[1], "client.rack= rack a", "quoted value kept");
			ok(conf.passthrough.items[2] == NULL, "prefix list is NULL-terminated");
		}

		char *printed = NULL;
		size_t size = 0;
		FILE *out = open_memstream(&printed, &size);
		cfg_print(out, "plugin.x", schema, &conf);
		fclose(out);
		ok(strstr(printed, "password = (secret)\n") != NULL, "cfg_print masks the secret");
		ok(strstr(printed, "hunter2") == NULL, "cfg_print never shows the secret");
		ok(strstr(printed, "timeout = 1500ms\n") && strstr(printed, "max.body = 64k\n") &&
			   strstr(printed, "mode = tls\n") && strstr(printed, "verbose = yes\n") &&
			   strstr(printed,
				  "brokers = kafka1:9092, kafka2:9092, kafka3:9092\n"),
		   "cfg_print renders typed values");
		ok(strstr(printed, "name = \"hash # inside \\\"quoted\\\" \\\\ done\"\n") != NULL,
		   "cfg_print quotes a string that needs it");
		ok(strstr(printed, "librdkafka.linger.ms = 7\n") != NULL,
		   "cfg_print writes a prefix family one line per name");

		/* What cfg_print writes reads back as the same conf, but for
		 * the masked secret. */
		struct cfg_file *again;
		struct test_conf conf2 = { 0 };
		if (ok(cfg_parse_buffer("printed", printed, size, &again, &err) == 0 &&
			       cfg_bind(schema, again, &again->sections[0], &conf2, &err) == 0,
		       "printed config reparses (%s)", err.text)) {
			for (const struct todod_opt *opt = schema; opt->key; opt++)
				ok(cfg_opt_equal(opt, &conf, &conf2) == (opt->type != TODOD_OPT_SECRET),
				   "round trip of '%s'", opt->key);
			cfg_free(again);
			cfg_conf_free(schema, &conf2);
		}
		free(printed);
	}

	struct test_conf defaults = { 0 };
	sec = cfg_section(cf, "plugin.defaults");
	if (ok(cfg_bind(schema, cf, sec, &defaults, &err) == 0, "binds with defaults")) {
		is_str(defaults.name, "todod", "string default");
		ok(defaults.port == 8080, "int default");
		ok(!defaults.verbose, "bool default");
		ok(defaults.timeout_ms == 30000, "duration default");
		ok(defaults.max_body == 1048576, "size default");
		ok(defaults.mode == 1, "enum default");
		ok(defaults.password == NULL, "no secret without default");
		ok(defaults.socket_timeout == 0, "int without default stays 0");
		ok(!cfg_opt_equal(&schema[1], &conf, &defaults), "ports differ");
		ok(cfg_opt_equal(&schema[7], &defaults, &defaults), "NULL secrets are equal");
		ok(!cfg_opt_equal(&schema[6], &conf, &defaults), "broker lists differ");
		ok(cfg_opt_equal(&schema[6], &conf, &conf), "a list equals itself");
	}
	cfg_conf_free(schema, &conf);
	ok(conf.password == NULL && conf.brokers.n == 0, "cfg_conf_free clears what it frees");
	cfg_conf_free(schema, &defaults);

	struct test_conf none = { 0 };
	ok(cfg_bind(schema, cf, NULL, &none, &err) != 0, "no section: required key missing");
	is_str(err.text, "good.conf: missing required key 'brokers'", "message names FILE alone");
	cfg_free(cf);
}

static void test_secret_file(void)
{
	char path[] = "/tmp/todod-test-secret-XXXXXX";
	int fd = mkstemp(path);
	struct todod_err err = { "" };
	char *secret = NULL;

	if (!ok(fd >= 0, "temp secret file"))
		return;
	ok(write(fd, "s3cr3t-file\r\nsecond line\n", 25) == 25, "secret written");
	close(fd);

	char ref[64];
	snprintf(ref, sizeof ref, "file:%s", path);
	ok(cfg_resolve_secret(ref, &secret, &err) == 0, "file: resolves (%s)", err.text);
	is_str(secret, "s3cr3t-file", "first line, line ending removed");
	free(secret);

	char text[256];
	snprintf(text, sizeof text, "[plugin.x]\nbrokers = a\npassword = %s\n", ref);
	struct cfg_file *cf;
	struct test_conf conf = { 0 };
	ok(cfg_parse_buffer("s.conf", text, strlen(text), &cf, &err) == 0 &&
		   cfg_bind(schema, cf, &cf->sections[0], &conf, &err) == 0,
	   "secret bound from file:");
	is_str(conf.password, "s3cr3t-file", "bound secret");
	char *printed = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&printed, &size);
	cfg_print(out, NULL, schema, &conf);
	fclose(out);
	ok(strstr(printed, "s3cr3t") == NULL, "cfg_print hides a file: secret");
	free(printed);
	cfg_conf_free(schema, &conf);
	cfg_free(cf);

	unlink(path);

	ok(cfg_resolve_secret("file:/dev/null", &secret, &err) != 0, "device refused");
	is_str(err.text, "cannot read secret file /dev/null: not a regular file", "why");
	ok(cfg_resolve_secret("literal", &secret, &err) == 0, "literal secret");
	is_str(secret, "literal", "literal value");
	free(secret);
}

/* A value that may name a plugin's resolver is kept aside, not bound. */
static void test_secret_refs(void)
{
	ok(cfg_resolver_scheme("dapr", 4) && cfg_resolver_scheme("a-b_9", 5), "schemes");
	ok(!cfg_resolver_scheme("env", 3) && !cfg_resolver_scheme("file", 4), "env, file are not");
	ok(!cfg_resolver_scheme("Dapr", 4) && !cfg_resolver_scheme("9a", 2) &&
		   !cfg_resolver_scheme("", 0) && !cfg_resolver_scheme("a b", 3),
	   "capitals, a leading digit, empty, blanks are not");
	ok(cfg_secret_scheme_len("dapr:store/key") == 4, "dapr:store/key has scheme dapr");
	ok(cfg_secret_scheme_len("postgresql://h/db") == 10, "a URI's scheme may be one too");
	ok(cfg_secret_scheme_len("env:HOME") == 0 && cfg_secret_scheme_len("Hunter:2") == 0 &&
		   cfg_secret_scheme_len("no colon") == 0,
	   "env:, a capital, no colon: not a reference");

	static const char text[] = "[plugin.x]\nbrokers = a\npassword = dapr:store/key\n";
	struct cfg_file *cf;
	struct todod_err err = { "" };
	struct cfg_secret_refs refs = STAILQ_HEAD_INITIALIZER(refs);
	struct test_conf conf = { 0 };
	if (!ok(cfg_parse_buffer("s.conf", text, strlen(text), &cf, &err) == 0, "parses"))
		return;
	ok(cfg_bind_deferring(schema, cf, &cf->sections[0], &conf, &refs, &err) == 0, "binds (%s)",
	   err.text);
	is_str(conf.password, "", "the field reads \"\" until settled");
	struct cfg_secret_ref *ref = STAILQ_FIRST(&refs);
	if (ok(ref && !STAILQ_NEXT(ref, link), "one reference kept")) {
		is_str(ref->text, "dapr:store/key", "as written");
		is_str(ref->where.text, "s.conf:3: [plugin.x] key 'password'", "where it was written");
		ok(ref->field == &conf.password, "pointing at its field");
	}
	cfg_secret_refs_clear(&refs);
	ok(STAILQ_EMPTY(&refs), "cleared");
	cfg_conf_free(schema, &conf);

	ok(cfg_bind(schema, cf, &cf->sections[0], &conf, &err) == 0, "cfg_bind alone");
	is_str(conf.password, "dapr:store/key", "reads it as a literal");
	cfg_conf_free(schema, &conf);
	cfg_free(cf);

	static const char bad[] = "[plugin.x]\nbrokers = a\npassword = dapr:k\nport = x\n";
	ok(cfg_parse_buffer("s.conf", bad, strlen(bad), &cf, &err) == 0 &&
		   cfg_bind_deferring(schema, cf, &cf->sections[0], &conf, &refs, &err) != 0,
	   "a bad value after a reference fails the bind");
	ok(STAILQ_EMPTY(&refs), "and keeps no reference into the freed conf");
	cfg_free(cf);

	static const char env[] = "[plugin.x]\nbrokers = a\npassword = env:TODOD_TEST_SECRET_ENV\n";
	setenv("TODOD_TEST_SECRET_ENV", "from-env", 1);
	ok(cfg_parse_buffer("s.conf", env, strlen(env), &cf, &err) == 0 &&
		   cfg_bind_deferring(schema, cf, &cf->sections[0], &conf, &refs, &err) == 0,
	   "env: binds");
	ok(STAILQ_EMPTY(&refs), "env: is resolved at once, not kept");
	is_str(conf.password, "from-env", "its value");
	cfg_conf_free(schema, &conf);
	cfg_free(cf);
}

static void test_files(void)
{
	struct todod_err err;
	struct cfg_file *cf;
	char path[] = "/tmp/todod-test-conf-XXXXXX";
	int fd = mkstemp(path);

	ok(cfg_parse_file("/nonexistent/todod.conf", &cf, &err) != 0 && cf == NULL,
	   "missing file refused");
	is_str(err.text, "/nonexistent/todod.conf: cannot read: No such file or directory",
	       "missing file message");
	ok(cfg_parse_file("/tmp", &cf, &err) != 0, "directory refused");
	is_str(err.text, "/tmp: cannot read: Is a directory", "directory message");

	ok(write(fd, "[core]\nx = 1\ny\n", 15) == 15, "temp config written");
	close(fd);
	ok(cfg_parse_file(path, &cf, &err) != 0, "bad file refused");
	char want[128];
	snprintf(want, sizeof want, "%s:3: missing '=' (expected key = value)", path);
	is_str(err.text, want, "file errors carry the path as given");
	unlink(path);
}

static void test_single_values(void)
{
	static const struct {
		const char *text;
		int64_t ms;
	} durations[] = {
		{ "500ms", 500 }, { "30s", 30000 }, { "90", 90000 }, { "2m", 120000 },
		{ "1h", 3600000 }, { "1d", 86400000 }, { "0", 0 },
	};
	static const struct {
		const char *text;
		int64_t bytes;
	} sizes[] = {
		{ "512", 512 }, { "512B", 512 }, { "64k", 65536 }, { "64K", 65536 },
		{ "1M", 1048576 }, { "1mB", 1048576 }, { "2G", 2147483648 }, { "3gB", 3221225472 },
	};
	static const char *const bad[] = { "", "s", "1.5s", "1 s", "-1", "1sB", "9999999999999999999d",
					   "B", "1BB", "1kk" };
	int64_t v;
	bool b;

	for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++)
		ok(cfg_parse_duration_ms(durations[i].text, &v) == 0 && v == durations[i].ms,
		   "duration '%s'", durations[i].text);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		ok(cfg_parse_size(sizes[i].text, &v) == 0 && v == sizes[i].bytes, "size '%s'",
		   sizes[i].text);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ok(cfg_parse_duration_ms(bad[i], &v) != 0 && cfg_parse_size(bad[i], &v) != 0,
		   "'%s' is neither a duration nor a size", bad[i]);
	ok(cfg_parse_size("8589934592G", &v) != 0, "size overflow refused");

	static const char *const yes[] = { "yes", "true", "on", "1", "YES", "True" };
	static const char *const no[] = { "no", "false", "off", "0", "Off" };
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		ok(cfg_parse_bool(yes[i], &b) == 0 && b, "bool '%s'", yes[i]);
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		ok(cfg_parse_bool(no[i], &b) == 0 && !b, "bool '%s'", no[i]);
	ok(cfg_parse_bool("y", &b) != 0 && cfg_parse_bool("", &b) != 0, "no other spellings");
}

/* Pass-through values named like credentials are never printed. */
static void test_prefix_secrets(void)
{
	static const char text[] = "[plugin.x]\nbrokers = k\n"
				   "librdkafka.sasl.password = hunter3\n"
				   "librdkafka.ssl.key.password = hunter4\n"
				   "librdkafka.debug = cgrp\n";
	struct todod_err err = { "" };
	struct cfg_file *cf;
	struct test_conf conf = { 0 };
	if (!ok(cfg_parse_buffer("p.conf", text, strlen(text), &cf, &err) == 0 &&
			cfg_bind(schema, cf, &cf->sections[0], &conf, &err) == 0,
		"pass-through secrets bind (%s)", err.text))
		return;
	char *printed = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&printed, &size);
	cfg_print(out, NULL, schema, &conf);
	fclose(out);
	ok(strstr(printed, "hunter") == NULL, "no pass-through password is printed");
	ok(strstr(printed, "librdkafka.sasl.password = (secret)\n") != NULL,
	   "a hidden pass-through value is named");
	ok(strstr(printed, "librdkafka.debug = cgrp\n") != NULL, "others are printed");
	free(printed);
	cfg_conf_free(schema, &conf);
	cfg_free(cf);
}

/* Reload: what the schema marks NO_RELOAD is reported and kept, the
 * rest is taken; each value ends up owned by exactly one conf (ASan
 * checks the frees). */
static void test_reload(void)
{
	static const char running_text[] = "[plugin.x]\nbrokers = a\nport = 1\nname = one\n";
	static const char fresh_text[] = "[plugin.x]\nbrokers = b, c\nport = 2\nname = two\n";
	struct todod_err err = { "" };
	struct cfg_file *rcf = NULL, *fcf = NULL;
	struct test_conf running = { 0 }, fresh = { 0 }, same = { 0 };
	if (!ok(cfg_parse_buffer("r.conf", running_text, strlen(running_text), &rcf, &err) == 0 &&
			cfg_bind(schema, rcf, &rcf->sections[0], &running, &err) == 0 &&
			cfg_bind(schema, rcf, &rcf->sections[0], &same, &err) == 0 &&
			cfg_parse_buffer("f.conf", fresh_text, strlen(fresh_text), &fcf, &err) == 0 &&
			cfg_bind(schema, fcf, &fcf->sections[0], &fresh, &err) == 0,
		"both confs bind (%s)", err.text))
		return;
	char keys[64];
	cfg_no_reload_changes(schema, &running, &same, keys, sizeof keys);
	ok(keys[0] == '\0', "an unchanged conf needs no restart ('%s')", keys);
	cfg_no_reload_changes(schema, &running, &fresh, keys, sizeof keys);
	ok(strcmp(keys, "brokers") == 0, "only the no-reload key is named ('%s')", keys);
	cfg_no_reload_changes(schema, &running, &fresh, keys, 4);
	ok(strcmp(keys, "bro") == 0, "the names are cut to the buffer ('%s')", keys);

	cfg_take_reloadable(schema, &running, &fresh);
	ok(running.port == 2 && strcmp(running.name, "two") == 0, "reloadable values are taken");
	ok(running.brokers.n == 1 && strcmp(running.brokers.items[0], "a") == 0,
	   "the no-reload value is kept");
	ok(fresh.port == 1 && strcmp(fresh.name, "one") == 0 && fresh.brokers.n == 2,
	   "the fresh conf holds what was replaced");
	cfg_conf_free(schema, &running);
	cfg_conf_free(schema, &fresh);
	cfg_conf_free(schema, &same);
	cfg_free(rcf);
	cfg_free(fcf);
}

static void test_help(void)
{
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	cfg_print_help(out, schema);
	fclose(out);
	ok(strstr(text, "KEY") && strstr(text, "DESCRIPTION"), "help has a header");
	ok(strstr(text, "required,no-reload") && strstr(text, "bootstrap servers"),
	   "help shows flags and descriptions");
	ok(strstr(text, "(one of: plain, starttls, tls)"), "help lists enum choices");
	ok(strstr(text, "librdkafka.<name>") && strstr(text, "prefix"),
	   "help shows a prefix family as such");
	ok(strstr(text, "(range 1s..1h)") && strstr(text, "(range 1k..1G)") &&
		   strstr(text, "(range 1..65535)"),
	   "help shows readable ranges");
	free(text);

	static const struct todod_opt with_default[] = {
		{ .key = "api_token", .type = TODOD_OPT_SECRET, .default_value = "dev-token-123",
		  .offset = 0, .description = "token" },
		{ .key = NULL },
	};
	out = open_memstream(&text, &size);
	cfg_print_help(out, with_default);
	fclose(out);
	ok(!strstr(text, "dev-token-123") && strstr(text, "(secret)"),
	   "help shows a secret's default as (secret)");
	free(text);
}

int main(void)
{
	unsetenv("TODOD_TEST_SURELY_UNSET");
	test_bad_configs();
	test_limits();
	test_parse_good();
	test_secret_file();
	test_secret_refs();
	test_files();
	test_single_values();
	test_prefix_secrets();
	test_reload();
	test_help();
	return tap_done();
}
