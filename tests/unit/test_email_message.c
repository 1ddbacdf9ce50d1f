/* test_email_message.c - the reminder e-mail's text, without a daemon. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "email_message.h"
#include "clock.h"
#include "tap.h"
#include "tz.h"

/* The plugin gets the conversions from the daemon's API table; here they
 * come straight from the core's tz.c and clock.c. */
static const struct todod_api api = {
	.struct_size = sizeof api,
	.tz_to_local = tz_to_local,
	.tz_from_local = tz_from_local,
	.rfc3339_parse = rfc3339_parse_ms,
};

/* 2026-11-27T09:00:00Z, a Friday: CET in Berlin, EST in New York. */
#define WINTER ((time_t)1795770000)
/* 2026-07-03T08:30:00Z: CEST and EDT. */
#define SUMMER ((time_t)1783067400)

static void test_times(void)
{
	char buf[96];
	email_rfc5322_date(WINTER, buf, sizeof buf);
	is_str(buf, "Fri, 27 Nov 2026 09:00:00 +0000", "RFC 5322 date");

	ok(email_local_time(&api, WINTER, "Europe/Berlin", buf, sizeof buf) == 0, "Berlin winter");
	is_str(buf, "Fri 27 Nov 2026 10:00 CET", "Berlin winter is CET");
	email_local_time(&api, SUMMER, "Europe/Berlin", buf, sizeof buf);
	is_str(buf, "Fri 03 Jul 2026 10:30 CEST", "Berlin summer is CEST");
	email_local_time(&api, WINTER, "America/New_York", buf, sizeof buf);
	is_str(buf, "Fri 27 Nov 2026 04:00 EST", "New York winter is EST");
	email_local_time(&api, SUMMER, "America/New_York", buf, sizeof buf);
	is_str(buf, "Fri 03 Jul 2026 04:30 EDT", "New York summer is EDT");
	email_local_time(&api, WINTER, NULL, buf, sizeof buf);
	is_str(buf, "Fri 27 Nov 2026 09:00 UTC", "no zone means UTC");
	ok(email_local_time(&api, WINTER, "Mars/Olympus", buf, sizeof buf) == -1,
	   "unknown zone refused");
	ok(email_local_time(&api, WINTER, "../../etc/passwd", buf, sizeof buf) == -1,
	   "path refused");

	setenv("TZ", "Asia/Tokyo", 1);
	email_local_time(&api, WINTER, "Europe/Berlin", buf, sizeof buf);
	is_str(getenv("TZ"), "Asia/Tokyo", "TZ restored after the conversion");
	unsetenv("TZ");
	email_local_time(&api, WINTER, "Europe/Berlin", buf, sizeof buf);
	ok(getenv("TZ") == NULL, "unset TZ stays unset");
}

static void test_encodings(void)
{
	char *s = email_html_escape("<script>alert(\"x\")</script> & 'y'");
	is_str(s, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;",
	       "HTML escape");
	free(s);

	s = email_header_value("Reminder: buy milk", 9);
	is_str(s, "Reminder: buy milk", "short ASCII header kept");
	free(s);
	s = email_header_value("evil\r\nBcc: x@y", 9);
	is_str(s, "evil  Bcc: x@y", "CR/LF cannot inject a header");
	free(s);
	s = email_header_value("Reminder: Grüße", 9);
	is_str(s, "=?UTF-8?B?UmVtaW5kZXI6IEdyw7zDn2U=?=", "non-ASCII is B-encoded");
	free(s);

	/* 30 two-byte characters: the words must not cut one in half. */
	char long_title[128] = "";
	for (int i = 0; i < 30; i++)
		strcat(long_title, "é");
	s = email_header_value(long_title, 9);
	bool folded = s && strstr(s, "?=\r\n =?UTF-8?B?");
	bool short_lines = true;
	for (char *line = s; line && *line;) {
		char *end = strstr(line, "\r\n");
		size_t n = end ? (size_t)(end - line) : strlen(line);
		short_lines = short_lines && n + 9 <= 78;
		line = end ? end + 2 : line + n;
	}
	ok(folded && short_lines, "long subject folded into encoded-words under 78 columns");
	free(s);

	s = email_address_of("Todo Bot <todo@example.org>");
	is_str(s, "todo@example.org", "address inside angle brackets");
	free(s);
	s = email_address_of("todo@example.org");
	is_str(s, "todo@example.org", "bare address");
	free(s);
}

/* Undoes quoted-printable, enough to read back what was encoded. */
static char *qp_decode(const char *s, const char *end)
{
	char *out = malloc((size_t)(end - s) + 1), *o = out;
	while (s < end) {
		if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
			s += 3;
		} else if (s[0] == '=') {
			char hex[3] = { s[1], s[2], 0 };
			*o++ = (char)strtol(hex, NULL, 16);
			s += 3;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
	return out;
}

/* The decoded body of the part whose Content-Type starts with `type`. */
static char *part_of(const char *msg, const char *type)
{
	char header[64];
	snprintf(header, sizeof header, "Content-Type: %s", type);
	const char *p = strstr(msg, header);
	if (!p || !(p = strstr(p, "\r\n\r\n")))
		return NULL;
	p += 4;
	const char *end = strstr(p, "\r\n--=_todod_");
	return end ? qp_decode(p, end) : NULL;
}

static void test_message(void)
{
	json_object *task = json_tokener_parse(
		"{\"id\":42,\"title\":\"Pay <b>bills</b> & \\\"rent\\\" — Grüße\","
		"\"description\":\"<script>alert(1)</script>\\nFrom here on 'quoted'\","
		"\"priority\":\"high\",\"due_at\":\"2026-11-27T09:00:00Z\"}");
	struct email_reminder r = {
		.api = &api,
		.from = "Todo Bot <todo@example.org>",
		.to = "alice@example.com",
		.task = task,
		.remind_at = "2026-11-27T08:45:00Z",
		.tz = "Europe/Berlin",
		.event_id = "0b6a1f7e-1111-2222-3333-444455556666",
		.host = "example.org",
		.now = WINTER,
	};
	size_t len = 0;
	char *msg = email_message_build(&r, &len);
	ok(msg && len == strlen(msg), "message built");
	if (!msg) {
		json_object_put(task);
		return;
	}
	ok(strncmp(msg, "Date: Fri, 27 Nov 2026 09:00:00 +0000\r\n", 39) == 0, "Date first");
	ok(strstr(msg, "\r\nMessage-ID: <reminder-0b6a1f7e-1111-2222-3333-444455556666@example.org>\r\n") != NULL,
	   "Message-ID from the event id");
	ok(strstr(msg, "\r\nFrom: Todo Bot <todo@example.org>\r\n") != NULL, "From");
	ok(strstr(msg, "\r\nTo: alice@example.com\r\n") != NULL, "To");
	ok(strstr(msg, "\r\nSubject: =?UTF-8?B?") != NULL, "non-ASCII subject encoded");
	ok(strstr(msg, "\r\nMIME-Version: 1.0\r\n") != NULL, "MIME-Version");
	ok(strstr(msg, "Content-Type: multipart/alternative;\r\n boundary=\"=_todod_0b6a1f7e") != NULL,
	   "multipart/alternative");
	ok(strstr(msg, "\r\n--=_todod_0b6a1f7e-1111-2222-3333-444455556666--\r\n") != NULL,
	   "closing boundary");

	bool crlf_only = true, short_lines = true, ascii = true;
	for (size_t i = 0, col = 0; i < len; i++) {
		if (msg[i] == '\n') {
			crlf_only = crlf_only && i > 0 && msg[i - 1] == '\r';
			col = 0;
			continue;
		}
		ascii = ascii && (unsigned char)msg[i] < 0x80;
		short_lines = short_lines && ++col <= 78;
	}
	ok(crlf_only, "every line ends in CRLF");
	ok(short_lines, "no line over 78 bytes (998 is the limit)");
	ok(ascii, "the wire text is 7-bit");
	ok(strstr(msg, "\r\nFrom here") == NULL, "no line starts with 'From '");

	char *plain = part_of(msg, "text/plain");
	char *html = part_of(msg, "text/html");
	ok(plain && strstr(plain, "Reminder: Pay <b>bills</b> & \"rent\" — Grüße\r\n"),
	   "plain part has the raw title");
	ok(plain && strstr(plain, "Due:       Fri 27 Nov 2026 10:00 CET"), "due time in Berlin");
	ok(plain && strstr(plain, "Remind at: Fri 27 Nov 2026 09:45 CET"), "reminder time");
	ok(html && strstr(html, "<h1>Reminder: Pay &lt;b&gt;bills&lt;/b&gt; &amp; &quot;rent&quot;"),
	   "HTML title escaped");
	ok(html && strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;") &&
	   !strstr(html, "<script>"), "HTML description escaped");
	ok(html && strstr(html, "&#39;quoted&#39;"), "single quotes escaped");
	ok(html && strstr(html, "<td>Fri 27 Nov 2026 10:00 CET</td>"), "HTML due time");
	free(plain);
	free(html);

	size_t mbox_len = 0;
	char *mbox = email_mbox_entry("todo@example.org", msg, len, WINTER, &mbox_len);
	ok(mbox && strncmp(mbox, "From todo@example.org Fri Nov 27 09:00:00 2026\n", 47) == 0,
	   "mbox separator line");
	ok(mbox && !strstr(mbox, "\r") && mbox_len >= 2 && strcmp(mbox + mbox_len - 2, "\n\n") == 0,
	   "mbox entry uses LF and ends with a blank line");
	free(mbox);
	free(msg);

	const char body[] = "Subject: x\r\n\r\nFrom me\r\n>From you\r\nFromage\r\n";
	mbox = email_mbox_entry("a@b", body, sizeof body - 1, WINTER, NULL);
	ok(mbox && strstr(mbox, "\n>From me\n>>From you\nFromage\n\n"), "mboxrd From quoting");
	free(mbox);

	json_object_object_del(task, "title");
	ok(email_message_build(&r, &len) == NULL, "a task without title is refused");
	json_object_put(task);
}

int main(void)
{
	test_times();
	test_encodings();
	test_message();
	return tap_done();
}
