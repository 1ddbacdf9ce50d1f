/* services.h - the service registry: one provider per kind.  The kinds
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
void services_remove_owner(struct core *core, const void *owner);
void services_free(struct core *core);

/* Who provides `kind` (the plugin's ctx), or NULL. */
const void *services_owner(struct core *core, const char *kind);

#endif
