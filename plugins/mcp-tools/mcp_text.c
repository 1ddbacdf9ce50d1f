/* mcp_text.c - replies written around JSON text the store already wrote. */
#include "mcp_text.h"

#include <string.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static bool needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

/* json-c's escape of `c` (one that needs_escape) into `out`; its length. */
static size_t escape_into(char out[6], unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	char short_form = c == '"' ? '"' : c == '\\' ? '\\' : c == '\b' ? 'b' : c == '\f' ? 'f'
			: c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : 0;
	out[0] = '\\';
	if (short_form) {
		out[1] = short_form;
		return 2;
	}
	memcpy(out + 1, "u00", 3);
	out[4] = hex[c >> 4];
	out[5] = hex[c & 15];
	return 6;
}

void mcp_text_escape(struct printbuf *pb, const char *s, size_t len)
{
	size_t kept = 0; /* bytes before it already appended */
	for (size_t i = 0; i < len; i++) {
		if (!needs_escape((unsigned char)s[i]))
			continue;
		if (i > kept)
			printbuf_memappend(pb, s + kept, (int)(i - kept));
		char esc[6];
		printbuf_memappend(pb, esc, (int)escape_into(esc, (unsigned char)s[i]));
		kept = i + 1;
	}
	if (len > kept)
		printbuf_memappend(pb, s + kept, (int)(len - kept));
}

/* Where the text goes: appended as it is, or escaped once more. */
struct sink {
	struct printbuf *pb;
	bool quoted;
};

static void put(const struct sink *o, const char *s, size_t n)
{
	if (o->quoted)
		mcp_text_escape(o->pb, s, n);
	else if (n)
		printbuf_memappend(o->pb, s, (int)n);
}

static int hex4(const char *p, const char *end, unsigned *value)
{
	if (end - p < 4)
		return -1;
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		unsigned digit = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
				 : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
				 : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
							: 16;
		if (digit == 16)
			return -1;
		v = v << 4 | digit;
	}
	*value = v;
	return 0;
}

/* A character a \u escape named, as json-c writes it: escaped when it
 * must be, else in UTF-8. */
static void put_code_point(const struct sink *o, unsigned cp)
{
	char buf[6];
	size_t n;
	if (cp < 0x80 && needs_escape((unsigned char)cp)) {
		n = escape_into(buf, (unsigned char)cp);
	} else if (cp < 0x80) {
		buf[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		buf[0] = (char)(0xC0 | cp >> 6);
		buf[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		buf[0] = (char)(0xE0 | cp >> 12);
		buf[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		buf[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		buf[0] = (char)(0xF0 | cp >> 18);
		buf[1] = (char)(0x80 | (cp >> 12 & 0x3F));
		buf[2] = (char)(0x80 | (cp >> 6 & 0x3F));
		buf[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	put(o, buf, n);
}

/* The escape at `p` (its backslash) that json-c writes otherwise than
 * PostgreSQL's escapes (which json-c writes alike); returns what follows
 * it, or NULL when it is no escape JSON knows. */
static const char *put_escape(const struct sink *o, const char *p, const char *end)
{
	if (p[1] == '/') {
		put(o, "/", 1);
		return p + 2;
	}
	unsigned cp, low;
	if (p[1] != 'u' || hex4(p + 2, end, &cp) != 0)
		return NULL;
	p += 6;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return NULL;
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &low) != 0 ||
		    low < 0xDC00 || low > 0xDFFF)
			return NULL;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
		p += 6;
	}
	put_code_point(o, cp);
	return p;
}

/* Copies the string whose opening quote is at `p`; returns what follows
 * it, or NULL. */
static const char *copy_string(const struct sink *o, const char *p, const char *end)
{
	const char *kept = p; /* from here on not yet put */
	for (p++; p < end;) {
		unsigned char c = (unsigned char)*p;
		if (c == '"') {
			put(o, kept, (size_t)(p + 1 - kept));
			return p + 1;
		}
		if (c < 0x20 || (c == '\\' && p + 1 == end))
			return NULL;
		if (c != '\\') {
			p++;
			continue;
		}
		if (p[1] && strchr("\"\\bfnrt", p[1])) {
			p += 2;
			continue;
		}
		put(o, kept, (size_t)(p - kept));
		if (!(p = put_escape(o, p, end)))
			return NULL;
		kept = p;
	}
	return NULL;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int mcp_text_compact(struct printbuf *pb, const char *json, size_t len, bool quoted)
{
	const struct sink o = { pb, quoted };
	const char *p = json, *end = json + len;
	int depth = 0;
	bool any = false;
	while (p < end) {
		if (is_blank(*p)) {
			p++;
			continue;
		}
		any = true;
		if (*p == '"') {
			if (!(p = copy_string(&o, p, end)))
				return -1;
			continue;
		}
		const char *run = p;
		for (; p < end && *p != '"' && !is_blank(*p); p++) {
			if ((unsigned char)*p < 0x20)
				return -1;
			if (*p == '{' || *p == '[')
				depth++;
			else if ((*p == '}' || *p == ']') && --depth < 0)
				return -1;
		}
		put(&o, run, (size_t)(p - run));
	}
	return any && depth == 0 ? 0 : -1;
}

/* `{"wrap":` as a sink takes it. */
static void put_wrap_open(const struct sink *o, const char *wrap)
{
	put(o, "{\"", 2);
	for (const char *c = wrap; *c; c++) {
		char esc[6];
		if (needs_escape((unsigned char)*c))
			put(o, esc, escape_into(esc, (unsigned char)*c));
		else
			put(o, c, 1);
	}
	put(o, "\":", 2);
}

static int put_result(const struct sink *o, const char *wrap, const char *json, size_t len)
{
	if (wrap)
		put_wrap_open(o, wrap);
	if (mcp_text_compact(o->pb, json, len, o->quoted) != 0)
		return -1;
	if (wrap)
		put(o, "}", 1);
	return 0;
}

int mcp_text_tool_result(struct printbuf *pb, const char *wrap, const char *json, size_t len)
{
	const struct sink text = { pb, true }, structured = { pb, false };
	printbuf_strappend(pb, "{\"content\":[{\"type\":\"text\",\"text\":\"");
	if (put_result(&text, wrap, json, len) != 0)
		return -1;
	printbuf_strappend(pb, "\"}],\"structuredContent\":");
	if (put_result(&structured, wrap, json, len) != 0)
		return -1;
	printbuf_strappend(pb, "}");
	return 0;
}

void mcp_text_id(struct printbuf *pb, json_object *id)
{
	if (!id) {
		printbuf_strappend(pb, "null");
		return;
	}
	size_t len = 0;
	const char *text = json_object_to_json_string_length(id, JSON_FLAGS, &len);
	printbuf_memappend(pb, text, (int)len);
}
