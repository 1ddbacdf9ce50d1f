/* email_message.h - the reminder e-mail as text.
 *
 * Pure functions: the one daemon call is the time zone conversion, through
 * the API table the caller passes, so the unit test links this file with
 * the core's tz.c alone.  Every returned string is malloc'd (free it);
 * NULL means bad input. */
#ifndef TODOD_EMAIL_MESSAGE_H
#define TODOD_EMAIL_MESSAGE_H

#include <stddef.h>
#include <time.h>

#include <json-c/json.h>

#include "todod-plugin.h"

/* What one todod.reminder.due event turns into. */
struct email_reminder {
	const struct todod_api *api; /* its tz_to_local shows the times */
	const char *from;      /* header From: "addr" or "Name <addr>" */
	const char *to;        /* the owner's address */
	json_object *task;     /* the task snapshot from the event */
	const char *remind_at; /* RFC 3339, from the event */
	const char *tz;        /* the owner's IANA zone; NULL or "" for UTC */
	const char *event_id;  /* makes the Message-ID: a duplicate shows */
	const char *host;      /* the Message-ID's right-hand side */
	time_t now;            /* the Date header */
};

/* The whole RFC 5322 message, CRLF line ends, every line <= 998 bytes. */
char *email_message_build(const struct email_reminder *r, size_t *len);

/* "Fri 27 Nov 2026 10:00 CET": `t` in zone `tz` (NULL or "": UTC), with
 * English names whatever the locale, converted by api->tz_to_local.  -1
 * when `tz` is not a zone name. */
int email_local_time(const struct todod_api *api, time_t t, const char *tz, char *buf,
		     size_t size);

/* "Fri, 27 Nov 2026 09:00:00 +0000" (RFC 5322 date-time, in UTC). */
void email_rfc5322_date(time_t t, char *buf, size_t size);

/* `text` with & < > " ' replaced by entities. */
char *email_html_escape(const char *text);

/* A header's value (after "Name: ", `name_len` bytes long): as is when it
 * is short printable ASCII, else RFC 2047 UTF-8 B encoded-words folded
 * onto continuation lines, never splitting a UTF-8 sequence.  Control
 * characters become spaces either way (no header injection). */
char *email_header_value(const char *text, size_t name_len);

/* The address inside "Name <addr>", or `from` itself. */
char *email_address_of(const char *from);

/* One mbox entry (mboxrd): a "From sender date" line, the message with
 * LF line ends and ">From " quoting, and a blank line. */
char *email_mbox_entry(const char *sender, const char *msg, size_t msg_len, time_t now,
		       size_t *len);

#endif /* TODOD_EMAIL_MESSAGE_H */
