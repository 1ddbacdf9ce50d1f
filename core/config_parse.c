/* config_parse.c - the INI reader: sections, keys, values and the line
 * each came from, nothing typed yet (config.c binds values to options).
 *
 * The parser is strict on purpose: a daemon that silently ignores a typo
 * runs with a configuration nobody wrote.  Every refusal names FILE:LINE so
 * the operator can go straight to it.
 */
#include "config_parse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_MAX_FILE   (1024 * 1024)
#define CFG_MAX_LINE   4096

#define NAME_CHARS_HINT "(allowed: A-Z a-z 0-9 _ . -)"

/* ---- Messages ---- */

int cfg_located_fail(struct todod_err *err, const char *path, int line, const char *section,
		     const char *fmt, ...)
{
	char msg[sizeof(struct todod_err)];
	char where[16] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(where, sizeof where, ":%d", line);
	return todod_err_set(err, "%s%s: %s%s%s%s", path, where, section ? "[" : "",
			     section ? section : "", section ? "] " : "", msg);
}

/* ---- Small helpers ---- */

static char *skip_blanks(char *s)
{
	while (cfg_is_blank(*s))
		s++;
	return s;
}

/* Also drops the '\r' of CRLF files. */
static void trim_right(char *s)
{
	size_t n = strlen(s);
	while (n && (cfg_is_blank(s[n - 1]) || s[n - 1] == '\r'))
		s[--n] = '\0';
}

static bool is_valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* Room for element `n`; the array doubles so appends stay amortised O(1).
 * NULL on failure, the old array still valid. */
static void *reserve_one(void *arr, size_t n, size_t *cap, size_t elem)
{
	if (n < *cap)
		return arr;
	size_t ncap = *cap ? *cap * 2 : 8;
	if (ncap > SIZE_MAX / elem)
		todod_out_of_memory(SIZE_MAX);
	*cap = ncap;
	return todod_xrealloc(arr, ncap * elem);
}

ssize_t cfg_read_fd(int fd, char *buf, size_t cap, bool stop_at_newline)
{
	size_t len = 0;

	while (len < cap) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (stop_at_newline && memchr(buf + len, '\n', (size_t)n))
			return (ssize_t)(len + (size_t)n);
		len += (size_t)n;
	}
	return (ssize_t)len;
}

static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* Overlong forms, UTF-16 surrogates and beyond Unicode. */
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* ---- Duplicate detection ---- */

/* An open-addressing set of names with the line that introduced them.
 * A linear scan would make a 1 MiB file of short keys quadratic. */
struct name_slot {
	const char *name; /* borrowed from the cfg_file */
	int line;
};

struct name_index {
	struct name_slot *slots;
	size_t cap, used; /* cap is a power of two */
};

static size_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3u;
	return (size_t)h;
}

static struct name_slot *name_slot_for(struct name_slot *slots, size_t cap, const char *name)
{
	size_t i = name_hash(name) & (cap - 1);
	while (slots[i].name && strcmp(slots[i].name, name) != 0)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

/* The line of an earlier `name`, or 0 after recording this one. */
static int name_index_add(struct name_index *ix, const char *name, int line)
{
	if (2 * (ix->used + 1) > ix->cap) {
		size_t ncap = ix->cap ? ix->cap * 2 : 16;
		struct name_slot *grown = todod_xcalloc(ncap, sizeof *grown);
		for (size_t i = 0; i < ix->cap; i++)
			if (ix->slots[i].name)
				*name_slot_for(grown, ncap, ix->slots[i].name) = ix->slots[i];
		free(ix->slots);
		ix->slots = grown;
		ix->cap = ncap;
	}
	struct name_slot *slot = name_slot_for(ix->slots, ix->cap, name);
	if (slot->name)
		return slot->line;
	slot->name = name;
	slot->line = line;
	ix->used++;
	return 0;
}

static void name_index_clear(struct name_index *ix)
{
	free(ix->slots);
	*ix = (struct name_index){ 0 };
}

/* ---- Parsing ---- */

struct parser {
	struct cfg_file *cf;
	struct todod_err *err;
	int line;
	size_t cap_sections;
	size_t cap_entries;       /* of the last section, the only one growing */
	struct name_index sections;
	struct name_index keys;   /* of the last section */
};

#define parse_fail(p, ...) cfg_located_fail((p)->err, (p)->cf->path, (p)->line, NULL, __VA_ARGS__)

static int parse_section(struct parser *p, char *s)
{
	struct cfg_file *cf = p->cf;
	char *close = strchr(s, ']');

	if (!close)
		return parse_fail(p, "unterminated section header, missing ']'");
	char *rest = skip_blanks(close + 1);
	if (*rest && *rest != '#' && *rest != ';')
		return parse_fail(p, "unexpected text after section header");
	*close = '\0';
	char *name = skip_blanks(s + 1);
	trim_right(name);
	if (!*name)
		return parse_fail(p, "empty section name");
	if (!is_valid_name(name))
		return parse_fail(p, "invalid section name '%s' " NAME_CHARS_HINT, name);

	cf->sections = reserve_one(cf->sections, cf->n_sections, &p->cap_sections,
				   sizeof *cf->sections);
	struct cfg_section *sec = &cf->sections[cf->n_sections++];
	*sec = (struct cfg_section){ .name = todod_xstrdup(name), .line = p->line };

	int first = name_index_add(&p->sections, sec->name, p->line);
	if (first > 0)
		return parse_fail(p, "duplicate section [%s] (first at line %d)", name, first);
	name_index_clear(&p->keys);
	p->cap_entries = 0;
	return 0;
}

/* `v` is everything after the '='.  Unescapes in place. */
static int parse_value(struct parser *p, char *v, char **out)
{
	char *start = skip_blanks(v);

	if (*start != '"') {
		/* '#' starts a comment only after a blank, so "a#b" stays whole. */
		for (char *c = v; *c; c++) {
			if (*c == '#' && c > v && cfg_is_blank(c[-1])) {
				*c = '\0';
				break;
			}
		}
		start = skip_blanks(v);
		trim_right(start);
		*out = start;
		return 0;
	}

	char *r = start + 1, *w = start;
	for (;;) {
		if (!*r)
			return parse_fail(p, "unterminated quoted value");
		if (*r == '"')
			break;
		if (*r == '\\') {
			if (!r[1])
				return parse_fail(p, "unterminated quoted value");
			if (r[1] != '"' && r[1] != '\\')
				return parse_fail(p, "unknown escape in quoted value "
						  "(only \\\" and \\\\ are allowed)");
			r++;
		}
		*w++ = *r++;
	}
	char *rest = skip_blanks(r + 1);
	if (*rest && *rest != '#' && *rest != ';')
		return parse_fail(p, "unexpected text after closing quote");
	*w = '\0';
	*out = start;
	return 0;
}

static int parse_entry(struct parser *p, char *s)
{
	struct cfg_file *cf = p->cf;
	char *eq = strchr(s, '=');

	if (!eq)
		return parse_fail(p, "missing '=' (expected key = value)");
	*eq = '\0';
	trim_right(s);
	if (!*s)
		return parse_fail(p, "empty key");
	if (!is_valid_name(s))
		return parse_fail(p, "invalid key '%s' " NAME_CHARS_HINT, s);
	if (!cf->n_sections)
		return parse_fail(p, "key '%s' outside of any section", s);

	char *value = NULL;
	if (parse_value(p, eq + 1, &value))
		return -1;

	struct cfg_section *sec = &cf->sections[cf->n_sections - 1];
	sec->entries = reserve_one(sec->entries, sec->n_entries, &p->cap_entries,
				   sizeof *sec->entries);
	struct cfg_entry *e = &sec->entries[sec->n_entries++];
	*e = (struct cfg_entry){ .key = todod_xstrdup(s), .value = todod_xstrdup(value),
				 .line = p->line };

	int first = name_index_add(&p->keys, e->key, p->line);
	if (first > 0)
		return cfg_located_fail(p->err, cf->path, p->line, sec->name,
				    "duplicate key '%s' (first at line %d)", e->key, first);
	return 0;
}

static int parse_line(struct parser *p, const char *raw, size_t len)
{
	char line[CFG_MAX_LINE + 1];

	if (len > CFG_MAX_LINE)
		return parse_fail(p, "line longer than %d bytes", CFG_MAX_LINE);
	if (memchr(raw, '\0', len))
		return parse_fail(p, "NUL byte in line");
	if (!utf8_valid((const unsigned char *)raw, len))
		return parse_fail(p, "invalid UTF-8");
	memcpy(line, raw, len);
	line[len] = '\0';

	char *s = skip_blanks(line);
	trim_right(s);
	if (!*s || *s == '#' || *s == ';')
		return 0;
	if (*s == '[')
		return parse_section(p, s);
	return parse_entry(p, s);
}

int cfg_parse_buffer(const char *name, const char *buf, size_t len,
		     struct cfg_file **out, struct todod_err *err)
{
	struct cfg_file *cf = todod_xcalloc(1, sizeof *cf);
	struct parser p = { .cf = cf, .err = err };
	int rc = -1;

	*out = NULL;
	cf->path = todod_xstrdup(name);
	if (len > CFG_MAX_FILE) {
		/* Name the line where the limit is crossed. */
		p.line = 1;
		for (size_t i = 0; i < CFG_MAX_FILE; i++)
			p.line += buf[i] == '\n';
		parse_fail(&p, "file larger than 1 MiB");
		goto done;
	}

	size_t pos = 0;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		pos = 3; /* a UTF-8 byte order mark, as some editors write */
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;

		p.line++;
		if (parse_line(&p, buf + pos, n))
			goto done;
		pos += n + 1;
	}
	*out = cf;
	rc = 0;
done:
	name_index_clear(&p.sections);
	name_index_clear(&p.keys);
	if (rc)
		cfg_free(cf);
	return rc;
}

int cfg_parse_file(const char *path, struct cfg_file **out, struct todod_err *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return todod_err_set(err, "%s: cannot read: %s", path, strerror(errno));
	/* One byte past the limit lets cfg_parse_buffer report the size. */
	char *buf = todod_xmalloc(CFG_MAX_FILE + 1);
	ssize_t len = cfg_read_fd(fd, buf, CFG_MAX_FILE + 1, false);
	int saved = errno;
	close(fd);
	int rc = len < 0 ? todod_err_set(err, "%s: cannot read: %s", path, strerror(saved))
			 : cfg_parse_buffer(path, buf, (size_t)len, out, err);
	free(buf);
	return rc;
}

void cfg_free(struct cfg_file *cf)
{
	if (!cf)
		return;
	for (size_t i = 0; i < cf->n_sections; i++) {
		struct cfg_section *sec = &cf->sections[i];
		for (size_t j = 0; j < sec->n_entries; j++) {
			free(sec->entries[j].key);
			free(sec->entries[j].value);
		}
		free(sec->entries);
		free(sec->name);
	}
	free(cf->sections);
	free(cf->path);
	free(cf);
}

const struct cfg_section *cfg_section(const struct cfg_file *cf, const char *name)
{
	for (size_t i = 0; cf && i < cf->n_sections; i++)
		if (strcmp(cf->sections[i].name, name) == 0)
			return &cf->sections[i];
	return NULL;
}
