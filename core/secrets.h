/* secrets.h - settling the SECRET values that may name a plugin's
 * resolver ("SCHEME:REF", kept aside by cfg_bind_deferring): through the
 * resolver a plugin provides as service "secrets" under SCHEME, or as the
 * literal text when none does.  Resolvers answer later, from the loop. */
#ifndef TODOD_SECRETS_H
#define TODOD_SECRETS_H

#include <stdint.h>

#include "config.h"

struct core;
struct secrets;
struct secret_batch;

/* The lookups in flight, owned by the core: one a batch gave up on is
 * kept until its resolver answers or secrets_free. */
struct secrets *secrets_new(struct core *core);
/* After the plugins are destroyed: forgets what they never answered. */
void secrets_free(struct secrets *secrets);

/* Called once: `error` is NULL when every reference is settled, else
 * "FILE:LINE: [section] key 'k': SCHEME:REF: reason" (never a value). */
typedef void (*secrets_done_cb)(const char *error, void *arg);

/* Settle `refs` (emptied, each field filled), waiting at most
 * `timeout_ms` for the resolvers.  `done` fires from the loop, never from
 * this call; until then `refs` and the confs they point into must stay.
 * NULL (and `done` never fires) only when out of memory. */
struct secret_batch *secrets_resolve(struct secrets *secrets, struct cfg_secret_refs *refs,
				     int64_t timeout_ms, secrets_done_cb done, void *arg);
/* Give up on a batch whose `done` has not fired; it never fires. */
void secrets_cancel(struct secret_batch *batch);

/* Start-up: secrets_resolve, running the loop until it is done.  0, or
 * -1 with the reason in `err`. */
int secrets_resolve_now(struct secrets *secrets, struct cfg_secret_refs *refs,
			int64_t timeout_ms, struct todod_err *err);

#endif
