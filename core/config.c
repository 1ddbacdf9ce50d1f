/* config.c - the typed option binder: values of a parsed file
 * (config_parse.c) checked against a plugin's schema, env: and file:
 * secrets resolved (references to plugins' resolvers kept aside for
 * core/secrets.c), and the result printed back for `todod -t`.
 *
 * Values never appear in a message unless they failed a type check, and a
 * secret never fails one, so error text is safe to log.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_MAX_SECRET (64 * 1024)

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Single values ---- */

struct unit {
	const char *suffix;
	int64_t factor;
};

/* Formatting takes the first entry whose factor divides the value, so the
 * preferred spelling of each factor comes first. */
static const struct unit duration_units[] = {
	{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
	{ "ms", 1 }, { "", 1000 },
};

static const struct unit size_units[] = {
	{ "G", 1 << 30 }, { "M", 1 << 20 }, { "k", 1 << 10 },
	{ "g", 1 << 30 }, { "m", 1 << 20 }, { "K", 1 << 10 }, { "", 1 },
};


/* Decimal digits, with a leading '-' when `allow_minus`; `*end` is where
 * the digits stop. */
static int parse_digits(const char *s, bool allow_minus, int64_t *out, const char **end)
{
	bool neg = allow_minus && *s == '-';
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	uint64_t v = 0;

	if (neg)
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (limit - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = !neg ? (int64_t)v : v == limit ? INT64_MIN : -(int64_t)v;
	*end = s;
	return 0;
}

static int parse_int64(const char *s, int64_t *out)
{
	const char *end;
	return parse_digits(s, true, out, &end) || *end ? -1 : 0;
}

/* A non-negative number followed by exactly one of the suffixes among
 * the first `len` bytes of `s`. */
static int parse_scaled(const char *s, size_t len, const struct unit *units, size_t n_units,
			int64_t *out)
{
	const char *end;
	int64_t v;

	if (parse_digits(s, false, &v, &end) || end > s + len)
		return -1;
	size_t suffix_len = (size_t)(s + len - end);
	for (size_t i = 0; i < n_units; i++)
		if (strlen(units[i].suffix) == suffix_len &&
		    memcmp(units[i].suffix, end, suffix_len) == 0)
			return __builtin_mul_overflow(v, units[i].factor, out) ? -1 : 0;
	return -1;
}

static void format_scaled(int64_t v, const struct unit *units, size_t n_units, char *buf,
			  size_t size)
{
	snprintf(buf, size, "%" PRId64, v);
	for (size_t i = 0; v && i < n_units; i++) {
		if (v % units[i].factor == 0) {
			snprintf(buf, size, "%" PRId64 "%s", v / units[i].factor, units[i].suffix);
			return;
		}
	}
}

int cfg_parse_duration_ms(const char *s, int64_t *out)
{
	return parse_scaled(s, strlen(s), duration_units, ARRAY_LEN(duration_units), out);
}

int cfg_parse_size(const char *s, int64_t *out)
{
	size_t len = strlen(s);
	if (len && s[len - 1] == 'B')
		len--;
	return parse_scaled(s, len, size_units, ARRAY_LEN(size_units), out);
}

int cfg_parse_bool(const char *s, bool *out)
{
	static const char *const truths[] = { "yes", "true", "on", "1" };
	static const char *const falsehoods[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < ARRAY_LEN(truths); i++) {
		if (strcasecmp(s, truths[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, falsehoods[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* The three int64_t-stored types differ only in their syntax. */
static int parse_number(enum todod_opt_type type, const char *s, int64_t *out)
{
	if (type == TODOD_OPT_DURATION)
		return cfg_parse_duration_ms(s, out);
	if (type == TODOD_OPT_SIZE)
		return cfg_parse_size(s, out);
	return parse_int64(s, out);
}

static void format_number(enum todod_opt_type type, int64_t v, char *buf, size_t size)
{
	if (type == TODOD_OPT_DURATION)
		format_scaled(v, duration_units, ARRAY_LEN(duration_units), buf, size);
	else if (type == TODOD_OPT_SIZE)
		format_scaled(v, size_units, ARRAY_LEN(size_units), buf, size);
	else
		snprintf(buf, size, "%" PRId64, v);
}

/* ---- Secrets ---- */

static int read_secret_file(const char *path, char **out, struct todod_err *err)
{
	if (!*path)
		return todod_err_set(err, "'file:' needs a path");
	/* O_NONBLOCK: opening a FIFO must not hang the daemon at start. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return todod_err_set(err, "cannot read secret file %s: %s", path, strerror(errno));
	struct stat st;
	const char *unusable = fstat(fd, &st) != 0  ? strerror(errno)
			       : !S_ISREG(st.st_mode) ? "not a regular file"
						      : NULL;
	if (unusable) {
		close(fd);
		return todod_err_set(err, "cannot read secret file %s: %s", path, unusable);
	}
	char *buf = todod_xmalloc(CFG_MAX_SECRET);
	ssize_t len = cfg_read_fd(fd, buf, CFG_MAX_SECRET, true);
	int saved = errno;
	close(fd);

	int rc = 0;
	if (len < 0) {
		rc = todod_err_set(err, "cannot read secret file %s: %s", path, strerror(saved));
	} else {
		const char *nl = memchr(buf, '\n', (size_t)len);
		size_t n = nl ? (size_t)(nl - buf) : (size_t)len;
		if (!nl && n == CFG_MAX_SECRET)
			rc = todod_err_set(err, "secret file %s: first line longer than %d bytes",
					   path, CFG_MAX_SECRET);
		else if (n && buf[n - 1] == '\r')
			n--;
		if (!rc)
			*out = todod_xstrndup(buf, n);
		explicit_bzero(buf, (size_t)len);
	}
	free(buf);
	return rc;
}

int cfg_resolve_secret(const char *ref, char **out, struct todod_err *err)
{
	const char *value = ref;

	*out = NULL;
	if (strncmp(ref, "file:", 5) == 0)
		return read_secret_file(ref + 5, out, err);
	if (strncmp(ref, "env:", 4) == 0) {
		if (!ref[4])
			return todod_err_set(err, "'env:' needs a variable name");
		value = getenv(ref + 4);
		if (!value)
			return todod_err_set(err, "environment variable %s is not set", ref + 4);
	}
	*out = todod_xstrdup(value);
	return 0;
}

/* ---- Binding ---- */

static const struct {
	const char *name;
	const char *expected; /* for a value of the wrong shape */
} type_info[] = {
	[TODOD_OPT_STRING] = { "string", NULL },
	[TODOD_OPT_INT] = { "int", "expected an integer" },
	[TODOD_OPT_BOOL] = { "bool", "expected yes or no" },
	[TODOD_OPT_DURATION] = { "duration", "expected a duration like 30s or 500ms" },
	[TODOD_OPT_SIZE] = { "size", "expected a size like 512k or 1M" },
	[TODOD_OPT_ENUM] = { "enum", NULL },
	[TODOD_OPT_LIST] = { "list", NULL },
	[TODOD_OPT_SECRET] = { "secret", NULL },
	[TODOD_OPT_PREFIX] = { "prefix", NULL },
};

static const char *type_name(enum todod_opt_type type)
{
	bool known = (unsigned)type < ARRAY_LEN(type_info) && type_info[type].name;
	return known ? type_info[type].name : "?";
}

static void *field_of(const struct todod_opt *opt, void *conf)
{
	return (char *)conf + opt->offset;
}

static const void *const_field_of(const struct todod_opt *opt, const void *conf)
{
	return (const char *)conf + opt->offset;
}

static bool has_bounds(const struct todod_opt *opt)
{
	return opt->min != 0 || opt->max != 0;
}

static void join_choices(const char *const *choices, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; choices && choices[i] && used < size; i++) {
		int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", choices[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static const char *choice_name(const struct todod_opt *opt, int index)
{
	for (int i = 0; opt->choices && opt->choices[i]; i++)
		if (i == index)
			return opt->choices[i];
	return "?";
}

/* Blank- or comma-separated; runs of separators make no empty items. */
static const char *next_list_item(const char **cursor, size_t *len)
{
	const char *s = *cursor + strspn(*cursor, ", \t");
	if (!*s)
		return NULL;
	*len = strcspn(s, ", \t");
	*cursor = s + *len;
	return s;
}

/* The item array is NULL-terminated too, for APIs that want that. */
static void store_list(struct todod_list *list, const char *value)
{
	const char *cursor = value, *item;
	size_t count = 0, len;

	while (next_list_item(&cursor, &len))
		count++;
	list->items = todod_xcalloc(count + 1, sizeof *list->items);
	cursor = value;
	while ((item = next_list_item(&cursor, &len)))
		list->items[list->n++] = todod_xstrndup(item, len);
}

/* A PREFIX family keeps "name=value" per line, `name` being the key
 * without the family's prefix. */
static void store_prefixed(struct todod_list *list, const char *name, const char *value)
{
	list->items = todod_xrealloc(list->items, (list->n + 2) * sizeof *list->items);
	size_t len = strlen(name) + strlen(value) + 2;
	list->items[list->n] = todod_xmalloc(len);
	snprintf(list->items[list->n], len, "%s=%s", name, value);
	list->items[++list->n] = NULL;
}

/* Converts `value` of `key` for `opt` into `conf`; `why` gets the reason
 * alone. */
static int store_value(const struct todod_opt *opt, const char *key, const char *value,
		       void *conf, struct todod_err *why)
{
	void *field = field_of(opt, conf);
	char choices[400], lo[32], hi[32];
	int64_t n;

	switch (opt->type) {
	case TODOD_OPT_STRING:
		*(char **)field = todod_xstrdup(value);
		return 0;
	case TODOD_OPT_SECRET:
		return cfg_resolve_secret(value, (char **)field, why);
	case TODOD_OPT_INT:
	case TODOD_OPT_DURATION:
	case TODOD_OPT_SIZE:
		if (parse_number(opt->type, value, &n))
			return todod_err_set(why, "%s, got '%s'", type_info[opt->type].expected,
					     value);
		if (has_bounds(opt) && (n < opt->min || n > opt->max)) {
			format_number(opt->type, opt->min, lo, sizeof lo);
			format_number(opt->type, opt->max, hi, sizeof hi);
			return todod_err_set(why, "%s is out of range %s..%s", value, lo, hi);
		}
		*(int64_t *)field = n;
		return 0;
	case TODOD_OPT_BOOL:
		if (cfg_parse_bool(value, (bool *)field))
			return todod_err_set(why, "%s, got '%s'", type_info[opt->type].expected,
					     value);
		return 0;
	case TODOD_OPT_ENUM:
		for (int i = 0; opt->choices && opt->choices[i]; i++) {
			if (strcmp(value, opt->choices[i]) == 0) {
				*(int *)field = i;
				return 0;
			}
		}
		join_choices(opt->choices, choices, sizeof choices);
		return todod_err_set(why, "expected one of: %s, got '%s'", choices, value);
	case TODOD_OPT_LIST:
		store_list(field, value);
		return 0;
	case TODOD_OPT_PREFIX:
		store_prefixed(field, key + strlen(opt->key), value);
		return 0;
	}
	return todod_err_set(why, "unsupported option type %d", (int)opt->type);
}

/* References to plugins' resolvers. */

bool cfg_resolver_scheme(const char *s, size_t len)
{
	if (len == 0 || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 1; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return !(len == 3 && memcmp(s, "env", 3) == 0) && !(len == 4 && memcmp(s, "file", 4) == 0);
}

size_t cfg_secret_scheme_len(const char *value)
{
	const char *colon = strchr(value, ':');
	size_t len = colon ? (size_t)(colon - value) : 0;
	return cfg_resolver_scheme(value, len) ? len : 0;
}

void cfg_secret_ref_free(struct cfg_secret_ref *ref)
{
	if (ref->text)
		explicit_bzero(ref->text, strlen(ref->text));
	free(ref->text);
	free(ref);
}

void cfg_secret_refs_clear(struct cfg_secret_refs *refs)
{
	struct cfg_secret_ref *ref;
	while ((ref = STAILQ_FIRST(refs))) {
		STAILQ_REMOVE_HEAD(refs, link);
		cfg_secret_ref_free(ref);
	}
}

/* The field reads "" until the reference is settled: a plugin's validate
 * sees the option as set, and nothing ever reads the reference's text as
 * the secret. */
static int defer_secret(const struct todod_opt *opt, const struct cfg_entry *e, const char *path,
			const char *section, void *conf, struct cfg_secret_refs *refs,
			struct todod_err *why)
{
	struct cfg_secret_ref *ref = todod_xcalloc(1, sizeof *ref);
	char **field = field_of(opt, conf);
	ref->text = todod_xstrdup(e->value);
	*field = todod_xstrdup("");
	ref->field = field;
	cfg_located_fail(&ref->where, path, e->line, section, "key '%s'", e->key);
	STAILQ_INSERT_TAIL(refs, ref, link);
	return 0;
}

static const struct todod_opt *find_opt(const struct todod_opt *schema, const char *key)
{
	const struct todod_opt *family = NULL;
	for (; schema->key; schema++) {
		size_t n = strlen(schema->key);
		if (strcmp(schema->key, key) == 0 && schema->type != TODOD_OPT_PREFIX)
			return schema;
		if (schema->type == TODOD_OPT_PREFIX && strncmp(schema->key, key, n) == 0 &&
		    key[n] != '\0')
			family = schema;
	}
	return family;
}

static bool section_has(const struct cfg_section *sec, const char *key)
{
	for (size_t i = 0; i < sec->n_entries; i++)
		if (strcmp(sec->entries[i].key, key) == 0)
			return true;
	return false;
}

/* `refs` NULL: every SECRET value is resolved now. */
static int bind(const struct todod_opt *schema, const struct cfg_file *cf,
		const struct cfg_section *sec, void *conf, struct cfg_secret_refs *refs,
		struct todod_err *err)
{
	const char *path = cf ? cf->path : "(no file)";
	const char *section = sec ? sec->name : NULL;
	int header_line = sec ? sec->line : 0;
	struct todod_err why;

	/* File order first, so the first complaint is the first bad line. */
	for (size_t i = 0; sec && i < sec->n_entries; i++) {
		const struct cfg_entry *e = &sec->entries[i];
		const struct todod_opt *opt = find_opt(schema, e->key);
		if (!opt) {
			cfg_located_fail(err, path, e->line, section, "unknown key '%s'", e->key);
			goto fail;
		}
		bool deferred = refs && opt->type == TODOD_OPT_SECRET &&
				cfg_secret_scheme_len(e->value) > 0;
		if (deferred ? defer_secret(opt, e, path, section, conf, refs, &why)
			     : store_value(opt, e->key, e->value, conf, &why)) {
			cfg_located_fail(err, path, e->line, section, "key '%s': %s", e->key, why.text);
			goto fail;
		}
	}
	for (const struct todod_opt *opt = schema; opt->key; opt++) {
		if (sec && section_has(sec, opt->key))
			continue;
		if (opt->flags & TODOD_OPT_REQUIRED) {
			cfg_located_fail(err, path, header_line, section, "missing required key '%s'",
				     opt->key);
			goto fail;
		}
		if (opt->type == TODOD_OPT_PREFIX)
			continue;
		if (opt->default_value && store_value(opt, opt->key, opt->default_value, conf, &why)) {
			cfg_located_fail(err, path, header_line, section, "key '%s' (default): %s",
				     opt->key, why.text);
			goto fail;
		}
	}
	return 0;
fail:
	cfg_conf_free(schema, conf);
	return -1;
}

int cfg_bind(const struct todod_opt *schema, const struct cfg_file *cf,
	     const struct cfg_section *sec, void *conf, struct todod_err *err)
{
	return bind(schema, cf, sec, conf, NULL, err);
}

int cfg_bind_deferring(const struct todod_opt *schema, const struct cfg_file *cf,
		       const struct cfg_section *sec, void *conf, struct cfg_secret_refs *refs,
		       struct todod_err *err)
{
	/* A failed bind frees the fields its references point to. */
	struct cfg_secret_refs mine = STAILQ_HEAD_INITIALIZER(mine);
	if (bind(schema, cf, sec, conf, &mine, err) != 0) {
		cfg_secret_refs_clear(&mine);
		return -1;
	}
	STAILQ_CONCAT(refs, &mine);
	return 0;
}

void cfg_conf_free(const struct todod_opt *schema, void *conf)
{
	if (!conf)
		return;
	for (const struct todod_opt *opt = schema; opt->key; opt++) {
		void *field = field_of(opt, conf);
		char **str = field;
		struct todod_list *list = field;

		switch (opt->type) {
		case TODOD_OPT_SECRET:
			if (*str)
				explicit_bzero(*str, strlen(*str));
			/* fall through */
		case TODOD_OPT_STRING:
			free(*str);
			*str = NULL;
			break;
		case TODOD_OPT_LIST:
		case TODOD_OPT_PREFIX:
			for (size_t i = 0; i < list->n; i++)
				free(list->items[i]);
			free(list->items);
			*list = (struct todod_list){ 0 };
			break;
		default:
			break;
		}
	}
}

static bool str_equal(const char *a, const char *b)
{
	return a && b ? strcmp(a, b) == 0 : a == b;
}

bool cfg_opt_equal(const struct todod_opt *opt, const void *a, const void *b)
{
	const void *fa = const_field_of(opt, a), *fb = const_field_of(opt, b);
	const struct todod_list *la = fa, *lb = fb;

	switch (opt->type) {
	case TODOD_OPT_STRING:
	case TODOD_OPT_SECRET:
		return str_equal(*(char *const *)fa, *(char *const *)fb);
	case TODOD_OPT_INT:
	case TODOD_OPT_DURATION:
	case TODOD_OPT_SIZE:
		return *(const int64_t *)fa == *(const int64_t *)fb;
	case TODOD_OPT_BOOL:
		return *(const bool *)fa == *(const bool *)fb;
	case TODOD_OPT_ENUM:
		return *(const int *)fa == *(const int *)fb;
	case TODOD_OPT_LIST:
	case TODOD_OPT_PREFIX:
		if (la->n != lb->n)
			return false;
		for (size_t i = 0; i < la->n; i++)
			if (strcmp(la->items[i], lb->items[i]) != 0)
				return false;
		return true;
	}
	return false;
}

/* Bytes a bound value of `type` takes in a conf; 0 for a type the binder
 * does not know (such an option was never stored). */
static size_t field_size(enum todod_opt_type type)
{
	switch (type) {
	case TODOD_OPT_STRING:
	case TODOD_OPT_SECRET:
		return sizeof(char *);
	case TODOD_OPT_INT:
	case TODOD_OPT_DURATION:
	case TODOD_OPT_SIZE:
		return sizeof(int64_t);
	case TODOD_OPT_BOOL:
		return sizeof(bool);
	case TODOD_OPT_ENUM:
		return sizeof(int);
	case TODOD_OPT_LIST:
	case TODOD_OPT_PREFIX:
		return sizeof(struct todod_list);
	}
	return 0;
}

void cfg_no_reload_changes(const struct todod_opt *schema, const void *running,
			   const void *fresh, char *out, size_t size)
{
	size_t len = 0;
	out[0] = '\0';
	for (const struct todod_opt *o = schema; o && o->key; o++)
		if ((o->flags & TODOD_OPT_NO_RELOAD) && !cfg_opt_equal(o, running, fresh))
			len += (size_t)snprintf(out + len, len < size ? size - len : 0, "%s%s",
						len ? ", " : "", o->key);
}

void cfg_take_reloadable(const struct todod_opt *schema, void *running, void *fresh)
{
	unsigned char held[sizeof(struct todod_list)]; /* the largest field */
	for (const struct todod_opt *o = schema; o && o->key; o++) {
		size_t n = field_size(o->type);
		if ((o->flags & TODOD_OPT_NO_RELOAD) || n == 0)
			continue;
		memcpy(held, field_of(o, running), n);
		memcpy(field_of(o, running), field_of(o, fresh), n);
		memcpy(field_of(o, fresh), held, n);
	}
}

/* ---- Printing ---- */

/* Quoted only when the parser would otherwise read it differently. */
static void print_string(FILE *out, const char *s)
{
	size_t n = strlen(s);

	if (n && !cfg_is_blank(s[0]) && !cfg_is_blank(s[n - 1]) && s[0] != '"' && !strchr(s, '#')) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

/* Pass-through values may carry credentials (sasl.password,
 * sasl.oauthbearer.config, ...): those whose name says so are not
 * printed. */
static bool names_credential(const char *name)
{
	static const char *const words[] = { "password", "secret", "key", "token",
					     "credential", "oauthbearer", "jaas" };
	for (size_t i = 0; i < sizeof words / sizeof *words; i++)
		if (strstr(name, words[i]))
			return true;
	return false;
}

static void print_prefixed(FILE *out, const struct todod_opt *opt, const struct todod_list *list)
{
	for (size_t i = 0; i < list->n; i++) {
		const char *eq = strchr(list->items[i], '=');
		int name_len = (int)(eq - list->items[i]);
		char name[256];
		snprintf(name, sizeof name, "%.*s", name_len, list->items[i]);
		fprintf(out, "%s%s = ", opt->key, name);
		if (names_credential(name))
			fputs("(secret)", out);
		else
			print_string(out, eq + 1);
		fputc('\n', out);
	}
}

static void print_opt(FILE *out, const struct todod_opt *opt, const void *conf)
{
	const void *field = const_field_of(opt, conf);
	const struct todod_list *list = field;
	bool is_text = opt->type == TODOD_OPT_STRING || opt->type == TODOD_OPT_SECRET;
	const char *str = is_text ? *(char *const *)field : NULL;
	char num[32];

	if (is_text && !str) {
		fprintf(out, "# %s is not set\n", opt->key);
		return;
	}
	if (opt->type == TODOD_OPT_PREFIX) {
		print_prefixed(out, opt, list);
		return;
	}
	fprintf(out, "%s = ", opt->key);
	switch (opt->type) {
	case TODOD_OPT_STRING:
		print_string(out, str);
		break;
	case TODOD_OPT_SECRET:
		fputs("(secret)", out);
		break;
	case TODOD_OPT_INT:
	case TODOD_OPT_DURATION:
	case TODOD_OPT_SIZE:
		format_number(opt->type, *(const int64_t *)field, num, sizeof num);
		fputs(num, out);
		break;
	case TODOD_OPT_BOOL:
		fputs(*(const bool *)field ? "yes" : "no", out);
		break;
	case TODOD_OPT_ENUM:
		fputs(choice_name(opt, *(const int *)field), out);
		break;
	case TODOD_OPT_LIST:
		for (size_t i = 0; i < list->n; i++)
			fprintf(out, "%s%s", i ? ", " : "", list->items[i]);
		break;
	case TODOD_OPT_PREFIX:
		break;
	}
	fputc('\n', out);
}

void cfg_print(FILE *out, const char *section, const struct todod_opt *schema,
	       const void *conf)
{
	if (section)
		fprintf(out, "[%s]\n", section);
	for (const struct todod_opt *opt = schema; opt->key; opt++)
		print_opt(out, opt, conf);
}

static const char *flags_text(unsigned flags)
{
	static const char *const texts[] = { "-", "required", "no-reload", "required,no-reload" };
	return texts[flags & (TODOD_OPT_REQUIRED | TODOD_OPT_NO_RELOAD)];
}

/* A secret's default is a secret too. */
static const char *help_default(const struct todod_opt *opt)
{
	if (!opt->default_value)
		return "-";
	if (opt->type == TODOD_OPT_SECRET && *opt->default_value)
		return "(secret)";
	return opt->default_value;
}

void cfg_print_help(FILE *out, const struct todod_opt *schema)
{
	int key_width = 3, default_width = 7;

	for (const struct todod_opt *opt = schema; opt->key; opt++) {
		int k = (int)strlen(opt->key) + (opt->type == TODOD_OPT_PREFIX ? 6 : 0);
		int d = (int)strlen(help_default(opt));
		key_width = k > key_width ? k : key_width;
		default_width = d > default_width ? d : default_width;
	}
	fprintf(out, "%-*s  %-8s  %-*s  %-18s  %s\n", key_width, "KEY", "TYPE", default_width,
		"DEFAULT", "FLAGS", "DESCRIPTION");
	for (const struct todod_opt *opt = schema; opt->key; opt++) {
		char extra[480] = "", lo[32], hi[32];

		if (opt->type == TODOD_OPT_ENUM) {
			char choices[400];
			join_choices(opt->choices, choices, sizeof choices);
			snprintf(extra, sizeof extra, " (one of: %s)", choices);
		} else if ((opt->type == TODOD_OPT_INT || opt->type == TODOD_OPT_DURATION ||
			    opt->type == TODOD_OPT_SIZE) && has_bounds(opt)) {
			format_number(opt->type, opt->min, lo, sizeof lo);
			format_number(opt->type, opt->max, hi, sizeof hi);
			snprintf(extra, sizeof extra, " (range %s..%s)", lo, hi);
		}
		char key[300];
		snprintf(key, sizeof key, "%s%s", opt->key,
			 opt->type == TODOD_OPT_PREFIX ? "<name>" : "");
		fprintf(out, "%-*s  %-8s  %-*s  %-18s  %s%s\n", key_width, key,
			type_name(opt->type), default_width, help_default(opt), flags_text(opt->flags),
			opt->description ? opt->description : "", extra);
	}
}
