/* cloudevent.h - CloudEvents 1.0 in structured JSON mode, the one wire
 * format of todod's events whichever transport carries them. */
#ifndef TODOD_CLOUDEVENT_H
#define TODOD_CLOUDEVENT_H

#include "todod-plugin.h"

#define CE_MAX_SIZE_DEFAULT (256 * 1024)

/* An event parsed from the wire.  Owns its strings and `data`;
 * `ev` points into them. */
struct ce_event {
	struct todod_event ev;
	json_object *root;
	char *raw;
};

/* Encode as structured JSON: specversion "1.0", id, source, type, subject,
 * time, datacontenttype "application/json", data, and traceparent when
 * set.  `topic` and `key` are not part of the envelope.  Returns a
 * malloc'd NUL-terminated string (length in *len), NULL if a required
 * attribute (id, source, type) is missing or data is not an object. */
char *ce_encode(const struct todod_event *ev, size_t *len);

/* Parse and validate.  Rejects, with a reason naming the attribute:
 * more than `max_size` bytes, invalid JSON, a non-object, specversion
 * other than "1.0", a missing or empty id/source/type, a non-string
 * attribute, a `time` that is not RFC 3339, a datacontenttype other than
 * application/json when data is present, data_base64 (binary payloads are
 * not ours).  `topic` and `key` are copied into the result (may be NULL). */
int ce_parse(const char *buf, size_t len, size_t max_size, const char *topic,
	     const char *key, struct ce_event *out, struct todod_err *err);
void ce_event_free(struct ce_event *ce);
/* 0 when an event of `len` bytes is within `max_size` (ce_parse's first
 * check); else -1 with the reason. */
int ce_size_check(size_t len, size_t max_size, struct todod_err *err);

/* Whether `s` is an RFC 3339 date-time (rfc3339_parse_ms, clock.h). */
bool ce_time_valid(const char *s);

#endif
