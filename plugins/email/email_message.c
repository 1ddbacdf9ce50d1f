/* email_message.c - the reminder e-mail as text (RFC 5322, MIME, RFC 2047).
 *
 * Bodies are quoted-printable: readable in an mbox, lines of at most 76
 * bytes whatever the user typed, and no "From " at a line start. */
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "email_message.h"

static const char *const weekdays[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* ---- a growing string ---------------------------------------------------- */

struct buf {
	char *s;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->s = todod_xrealloc(b->s, cap);
		b->cap = cap;
	}
	memcpy(b->s + b->len, data, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return; /* only for a wide-character conversion, which we never use */
	if ((size_t)n < sizeof small) {
		buf_add(b, small, (size_t)n);
		return;
	}
	char *big = todod_xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf_add(b, big, (size_t)n);
	free(big);
}

/* Hands the text over and resets `b`. */
static char *buf_take(struct buf *b, size_t *len)
{
	if (!b->s)
		buf_add(b, "", 0);
	char *s = b->s;
	if (len)
		*len = b->len;
	*b = (struct buf){ 0 };
	return s;
}

/* ---- time --------------------------------------------------------------- */

void email_rfc5322_date(time_t t, char *buf, size_t size)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", weekdays[tm.tm_wday],
		 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

/* The zone is read by the core (api->tz_to_local), which refuses names
 * that are no zone and never switches the process's TZ: other threads
 * (libcurl's resolver, librdkafka) read the environment. */
int email_local_time(const struct todod_api *api, time_t t, const char *tz, char *buf,
		     size_t size)
{
	struct todod_local_time local;
	if (api->tz_to_local(tz && *tz ? tz : "UTC", (int64_t)t, &local, NULL) != 0)
		return -1;
	snprintf(buf, size, "%s %02d %s %04d %02d:%02d %s", weekdays[local.tm.tm_wday],
		 local.tm.tm_mday, months[local.tm.tm_mon], local.tm.tm_year + 1900,
		 local.tm.tm_hour, local.tm.tm_min, local.abbrev);
	return 0;
}

/* ---- encodings ---------------------------------------------------------- */

char *email_html_escape(const char *text)
{
	struct buf b = { 0 };
	for (const char *p = text; *p; p++) {
		switch (*p) {
		case '&': buf_str(&b, "&amp;"); break;
		case '<': buf_str(&b, "&lt;"); break;
		case '>': buf_str(&b, "&gt;"); break;
		case '"': buf_str(&b, "&quot;"); break;
		case '\'': buf_str(&b, "&#39;"); break;
		default: buf_add(&b, p, 1);
		}
	}
	return buf_take(&b, NULL);
}

static void base64_add(struct buf *b, const unsigned char *in, size_t n)
{
	static const char digits[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		char quad[4] = { digits[(v >> 18) & 63], digits[(v >> 12) & 63],
				 i + 1 < n ? digits[(v >> 6) & 63] : '=',
				 i + 2 < n ? digits[v & 63] : '=' };
		buf_add(b, quad, 4);
	}
}

/* 42 bytes make 56 base64 characters: "Subject: " plus one encoded-word
 * stays under 78 columns, the RFC 5322 recommendation. */
#define WORD_BYTES 42
#define HEADER_SOFT_LIMIT 78

char *email_header_value(const char *text, size_t name_len)
{
	size_t n = strlen(text);
	unsigned char *clean = todod_xmalloc(n + 1);
	bool ascii = true;
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)text[i];
		clean[i] = (c && c < 0x20) || c == 0x7f ? ' ' : c;
		ascii = ascii && c < 0x80;
	}
	struct buf b = { 0 };
	if (ascii && name_len + n <= HEADER_SOFT_LIMIT) {
		buf_add(&b, (const char *)clean, n);
	} else {
		for (size_t at = 0; at < n;) {
			size_t take = n - at < WORD_BYTES ? n - at : WORD_BYTES;
			/* Back off to the start of a UTF-8 sequence. */
			while (take < n - at && take > 1 && (clean[at + take] & 0xC0) == 0x80)
				take--;
			if (at)
				buf_str(&b, "\r\n ");
			buf_str(&b, "=?UTF-8?B?");
			base64_add(&b, clean + at, take);
			buf_str(&b, "?=");
			at += take;
		}
	}
	free(clean);
	return buf_take(&b, NULL);
}

/* Quoted-printable (RFC 2045 6.7): '\n' in `text` ends a line. */
#define QP_LINE 76
static void qp_add(struct buf *b, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p == '\n') {
			buf_str(b, "\r\n");
			col = 0;
			continue;
		}
		bool at_line_end = p[1] == '\n' || p[1] == '\0';
		bool literal = (*p >= 33 && *p <= 126 && *p != '=') ||
			       ((*p == ' ' || *p == '\t') && !at_line_end);
		/* An encoded 'F' keeps "From " off line starts (mbox). */
		if (col == 0 && strncmp((const char *)p, "From ", 5) == 0)
			literal = false;
		/* A leading dot is left to SMTP's dot-stuffing. */
		size_t width = literal ? 1 : 3;
		if (col + width > QP_LINE - 1) {
			buf_str(b, "=\r\n");
			col = 0;
		}
		if (literal) {
			buf_add(b, (const char *)p, 1);
		} else {
			char enc[3] = { '=', hex[*p >> 4], hex[*p & 15] };
			buf_add(b, enc, 3);
		}
		col += width;
	}
}

char *email_address_of(const char *from)
{
	const char *open = strrchr(from, '<');
	const char *close = open ? strchr(open, '>') : NULL;
	if (!open || !close)
		return todod_xstrdup(from);
	return todod_xstrndup(open + 1, (size_t)(close - open - 1));
}

/* A display name may need encoding; the address never does. */
static void from_header_add(struct buf *b, const char *from)
{
	const char *open = strrchr(from, '<');
	if (!open) {
		buf_str(b, from);
		return;
	}
	char *name = todod_xstrndup(from, (size_t)(open - from));
	size_t len = strlen(name);
	while (len && name[len - 1] == ' ')
		name[--len] = '\0';
	char *value = email_header_value(name, strlen("From: "));
	buf_str(b, value);
	buf_str(b, " ");
	buf_str(b, open);
	free(value);
	free(name);
}

/* Message-ID and boundary only take characters that need no quoting. */
static void token_add(struct buf *b, const char *text)
{
	for (const char *p = text; *p; p++) {
		char c = isalnum((unsigned char)*p) || strchr(".-_", *p) ? *p : '_';
		buf_add(b, &c, 1);
	}
}

/* ---- the message -------------------------------------------------------- */

static const char *task_string(json_object *task, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(task, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* "Fri 27 Nov 2026 10:00 CET", or the RFC 3339 text when it cannot be
 * shown in the zone (better a UTC time than no time). */
static void when_text(const struct todod_api *api, const char *rfc3339, const char *tz,
		      char *out, size_t size)
{
	int64_t ms;
	if (api->rfc3339_parse(rfc3339, &ms) != 0 ||
	    email_local_time(api, (time_t)(ms / 1000), tz, out, size) != 0)
		snprintf(out, size, "%s", rfc3339);
}

struct reminder_text {
	const char *title;
	const char *description; /* NULL when none */
	const char *priority;    /* NULL when none */
	char due[96];            /* "" when the task has no due date */
	char remind[96];
};

static void plain_body(struct buf *b, const struct reminder_text *t)
{
	buf_printf(b, "Reminder: %s\n\n", t->title);
	if (*t->due)
		buf_printf(b, "Due:       %s\n", t->due);
	buf_printf(b, "Remind at: %s\n", t->remind);
	if (t->priority)
		buf_printf(b, "Priority:  %s\n", t->priority);
	if (t->description && *t->description)
		buf_printf(b, "\n%s\n", t->description);
	buf_str(b, "\n-- \nSent by todod.\n");
}

/* The task's own text is escaped; the rest is ours. */
static void html_body(struct buf *b, const struct reminder_text *t)
{
	char *title = email_html_escape(t->title);
	char *description = t->description ? email_html_escape(t->description) : NULL;
	char *priority = t->priority ? email_html_escape(t->priority) : NULL;
	buf_printf(b, "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
		      "<title>Reminder: %s</title>\n</head>\n<body>\n<h1>Reminder: %s</h1>\n"
		      "<table>\n", title, title);
	if (*t->due)
		buf_printf(b, "<tr><th align=\"left\">Due</th><td>%s</td></tr>\n", t->due);
	buf_printf(b, "<tr><th align=\"left\">Remind at</th><td>%s</td></tr>\n", t->remind);
	if (priority)
		buf_printf(b, "<tr><th align=\"left\">Priority</th><td>%s</td></tr>\n", priority);
	buf_str(b, "</table>\n");
	if (description && *description)
		buf_printf(b, "<p style=\"white-space: pre-wrap\">%s</p>\n", description);
	buf_str(b, "<p><small>Sent by todod.</small></p>\n</body>\n</html>\n");
	free(title);
	free(description);
	free(priority);
}

static void part_add(struct buf *b, const char *boundary, const char *type,
		     void (*body)(struct buf *, const struct reminder_text *),
		     const struct reminder_text *t)
{
	struct buf text = { 0 };
	body(&text, t);
	char *raw = buf_take(&text, NULL);
	buf_printf(b, "--%s\r\nContent-Type: %s; charset=utf-8\r\n"
		      "Content-Transfer-Encoding: quoted-printable\r\n\r\n", boundary, type);
	qp_add(b, raw);
	buf_str(b, "\r\n");
	free(raw);
}

char *email_message_build(const struct email_reminder *r, size_t *len)
{
	struct reminder_text t = { 0 };
	t.title = task_string(r->task, "title");
	if (!t.title || !r->from || !r->to || !r->remind_at || !r->event_id || !r->host)
		return NULL;
	t.description = task_string(r->task, "description");
	t.priority = task_string(r->task, "priority");
	const char *due_at = task_string(r->task, "due_at");
	if (due_at)
		when_text(r->api, due_at, r->tz, t.due, sizeof t.due);
	when_text(r->api, r->remind_at, r->tz, t.remind, sizeof t.remind);

	struct buf b = { 0 };
	char date[64];
	email_rfc5322_date(r->now, date, sizeof date);
	buf_printf(&b, "Date: %s\r\nMessage-ID: <reminder-", date);
	token_add(&b, r->event_id);
	buf_str(&b, "@");
	token_add(&b, r->host);
	buf_str(&b, ">\r\nFrom: ");
	from_header_add(&b, r->from);

	char *to = email_header_value(r->to, strlen("To: "));
	size_t subject_len = strlen("Reminder: ") + strlen(t.title) + 1;
	char *subject_text = todod_xmalloc(subject_len);
	snprintf(subject_text, subject_len, "Reminder: %s", t.title);
	char *subject = email_header_value(subject_text, strlen("Subject: "));
	buf_printf(&b, "\r\nTo: %s\r\nSubject: %s\r\n", to, subject);
	free(to);
	free(subject_text);
	free(subject);

	/* "=_" cannot occur in quoted-printable text, so neither can the boundary. */
	struct buf boundary_buf = { 0 };
	buf_str(&boundary_buf, "=_todod_");
	token_add(&boundary_buf, r->event_id);
	char *boundary = buf_take(&boundary_buf, NULL);
	buf_printf(&b, "MIME-Version: 1.0\r\n"
		       "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n"
		       "Auto-Submitted: auto-generated\r\n\r\n", boundary);
	part_add(&b, boundary, "text/plain", plain_body, &t);
	part_add(&b, boundary, "text/html", html_body, &t);
	buf_printf(&b, "--%s--\r\n", boundary);
	free(boundary);
	return buf_take(&b, len);
}

/* ---- mbox ---------------------------------------------------------------- */

/* mboxrd: ">From " gains one more '>' too, so a reader can undo it. */
static bool needs_from_quote(const char *line, size_t n)
{
	size_t i = 0;
	while (i < n && line[i] == '>')
		i++;
	return n - i >= 5 && memcmp(line + i, "From ", 5) == 0;
}

char *email_mbox_entry(const char *sender, const char *msg, size_t msg_len, time_t now,
		       size_t *len)
{
	struct tm tm;
	gmtime_r(&now, &tm);
	struct buf b = { 0 };
	buf_printf(&b, "From %s %s %s %2d %02d:%02d:%02d %04d\n", sender, weekdays[tm.tm_wday],
		   months[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		   tm.tm_year + 1900);
	for (size_t at = 0; at < msg_len;) {
		const char *nl = memchr(msg + at, '\n', msg_len - at);
		size_t end = nl ? (size_t)(nl - msg) : msg_len;
		size_t n = end - at;
		if (n && msg[at + n - 1] == '\r')
			n--;
		if (needs_from_quote(msg + at, n))
			buf_str(&b, ">");
		buf_add(&b, msg + at, n);
		buf_str(&b, "\n");
		at = nl ? end + 1 : msg_len;
	}
	buf_str(&b, "\n");
	return buf_take(&b, len);
}
