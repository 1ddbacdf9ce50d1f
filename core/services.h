/* services.h - the service registry: one provider per kind, or per name
 * for the kinds many plugins offer (inbox, trigger, secrets).  The kinds
 * the core itself calls are typed: each declares the smallest struct it
 * accepts and the members that must be set, so a provider missing one is
 * refused when it provides, not when the core first calls it. */
#ifndef TODOD_SERVICES_H
#define TODOD_SERVICES_H

#include "todod-plugin.h"

struct core;

/* Register `vtable` (borrowed) as the one provider of `kind`, owned by
 * `owner`; checked as its kind declares. */
int services_provide(struct core *core, void *owner, const char *kind, const char *name,
		     const void *vtable, struct todod_err *err);

/* The provider of a service kind, or NULL. */
const void *services_get(struct core *core, const char *kind, const char **name);
/* The provider of `kind` registered under `name`, or NULL: for the kinds
 * with one provider per name ("trigger"). */
const void *services_get_named(struct core *core, const char *kind, const char *name);
/* Everything `owner` provided goes, and the triggers it drove hear
 * that it is gone. */
void services_remove_owner(struct core *core, const void *owner);
void services_free(struct core *core);

/* `owner` (named `driver`) drives trigger `name` from now on; its
 * provider's driven() is told now, or when one provides it.  Returns the
 * trigger, or NULL when none is provided yet. */
const struct todod_trigger *services_drive_trigger(struct core *core, const void *owner,
						   const char *driver, const char *name);

/* The inbox driver whose `name` is `want` ([core] inbox), with its owner
 * and the name of the service it came as; NULL when no loaded plugin
 * provides it.  `names` gets the names of all the drivers there are,
 * comma-separated ("" for none). */
const struct todod_inbox_driver *services_inbox_driver(struct core *core, const char *want,
						       const void **owner, const char **service,
						       char *names, size_t size);

#endif
