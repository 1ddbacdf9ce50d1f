/* curlm.h - the one libcurl multi handle, driven by the event loop, that
 * carries every outbound HTTP request and SMTP message. */
#ifndef TODOD_CURLM_H
#define TODOD_CURLM_H

#include <event2/event.h>

#include "todod-plugin.h"

struct curlm;

/* Warns when libcurl lacks an asynchronous resolver (name lookups would
 * then block the loop). */
struct curlm *curlm_new(struct event_base *base, struct todod_err *err);
/* Cancels what is in flight: each callback fires once with error
 * "cancelled" and status 0.  Called from a transfer callback, the free
 * happens when that callback returns. */
void curlm_free(struct curlm *m);

/* Start a transfer tagged with `owner` (a plugin context, NULL for the
 * core).  On 0, `done` fires exactly once, later, from the loop; on -1
 * (with err) it never fires.  Request data is copied. */
int curlm_http(struct curlm *m, void *owner, const struct todod_http_request *rq,
	       todod_transfer_cb done, void *arg, struct todod_err *err);
int curlm_smtp(struct curlm *m, void *owner, const struct todod_smtp_message *msg,
	       todod_transfer_cb done, void *arg, struct todod_err *err);

int curlm_in_flight(const struct curlm *m);

/* Abort every transfer started with `owner` without calling its callback
 * (the owner is going away). */
void curlm_cancel_owner(struct curlm *m, void *owner);

#endif
