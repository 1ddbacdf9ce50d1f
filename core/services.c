/* services.c - the service registry and the typed kinds the core calls. */
#include "services.h"

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "core.h"
#include "log.h"

/* One typed kind (a new kind is a row of `kinds` below). */
struct service_kind {
	const char *kind;
	/* The struct's size in the ABI that introduced the kind: members up
	 * to there are read without a struct_size check. */
	size_t min_size;
	/* 0 when every required member is set (and agrees with the name it
	 * is provided under), else -1 naming the first one that does not. */
	int (*check)(const void *vtable, const char *name, struct todod_err *err);
	/* One provider per name instead of one per kind: many plugins may
	 * each offer their own trigger. */
	bool per_name;
};

struct service {
	struct service *next;
	const void *owner;
	char *kind;
	char *name;
	const void *vtable;
};

/* A plugin that decides when a trigger fires (trigger_drive()).  Kept
 * apart from the trigger itself: the driver may ask before the provider
 * provides, and outlives a provider that goes. */
struct trigger_driver {
	struct trigger_driver *next;
	const void *owner;
	char *driver;  /* the plugin's name, what driven() hears */
	char *trigger;
};

#define REQUIRE(vt, member, kind) \
	do { \
		if (!(vt)->member) \
			return todod_err_set(err, "%s service has no '%s'", kind, #member); \
	} while (0)

static int check_inbox(const void *vtable, const char *name, struct todod_err *err)
{
	const struct todod_inbox_driver *d = vtable;
	/* [core] inbox chooses a driver by its name. */
	REQUIRE(d, name, "inbox");
	REQUIRE(d, seen, "inbox");
	REQUIRE(d, record, "inbox");
	return 0;
}

static int check_transport(const void *vtable, const char *name, struct todod_err *err)
{
	const struct todod_transport *t = vtable;
	REQUIRE(t, name, "transport");
	REQUIRE(t, publish, "transport");
	REQUIRE(t, subscribe, "transport");
	/* The relay asks ready() at drain without looking first. */
	REQUIRE(t, ready, "transport");
	return 0;
}

static int check_stdio(const void *vtable, const char *name, struct todod_err *err)
{
	REQUIRE((const struct todod_stdio_service *)vtable, attach, "stdio");
	return 0;
}

static int check_trigger(const void *vtable, const char *name, struct todod_err *err)
{
	const struct todod_trigger *t = vtable;
	REQUIRE(t, name, "trigger");
	REQUIRE(t, fire, "trigger");
	return 0;
}

static int check_secrets(const void *vtable, const char *name, struct todod_err *err)
{
	const struct todod_secret_resolver *r = vtable;
	REQUIRE(r, scheme, "secrets");
	REQUIRE(r, resolve, "secrets");
	/* Config values find their resolver by the service's name. */
	if (strcmp(r->scheme, name) != 0)
		return todod_err_set(err, "secrets service '%s' has scheme '%s'; provide it under its "
				     "scheme", name, r->scheme);
	if (!cfg_resolver_scheme(name, strlen(name)))
		return todod_err_set(err, "secrets service '%s': a scheme is a lowercase word (a-z, "
				     "then a-z, 0-9, - or _) other than env and file", name);
	return 0;
}

static const struct service_kind kinds[] = {
	/* Several plugins may offer a driver; [core] inbox picks one. */
	{ .kind = "inbox", .min_size = ABI2_SIZE(struct todod_inbox_driver),
	  .check = check_inbox, .per_name = true },
	{ .kind = "transport", .min_size = ABI2_SIZE(struct todod_transport),
	  .check = check_transport },
	{ .kind = "stdio", .min_size = ABI2_SIZE(struct todod_stdio_service), .check = check_stdio },
	/* ABI 2.1 */
	{ .kind = "trigger", .min_size = ABI2_SIZE(struct todod_trigger), .check = check_trigger,
	  .per_name = true },
	/* One resolver per scheme. */
	{ .kind = "secrets", .min_size = ABI2_SIZE(struct todod_secret_resolver),
	  .check = check_secrets, .per_name = true },
};

static const struct service_kind *service_kind_find(const char *kind)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return &kinds[i];
	return NULL;
}

/* Every typed service struct starts with its uint32_t struct_size. */
static int check_typed(const struct service_kind *sk, const void *vtable, const char *name,
		       struct todod_err *err)
{
	uint32_t size = *(const uint32_t *)vtable;
	if (size < sk->min_size)
		return todod_err_set(err, "%s service struct_size is %u, expected at least %zu "
				     "(set it to sizeof the struct)", sk->kind, size, sk->min_size);
	return sk->check(vtable, name, err);
}

static struct service *service_find(struct core *core, const char *kind, const char *name);

/* Tells trigger `name`'s provider, if any, who drives it now: the driver
 * that asked last, or NULL when none is left. */
static void tell_trigger(struct core *core, const char *name)
{
	struct service *s = service_find(core, "trigger", name);
	const struct todod_trigger *t = s ? s->vtable : NULL;
	/* An ABI 2.1 plugin has a zero future slot where `driven` is. */
	if (!t || !t->driven)
		return;
	const char *driver = NULL;
	for (struct trigger_driver *d = core->trigger_drivers; d && !driver; d = d->next)
		if (strcmp(d->trigger, name) == 0)
			driver = d->driver;
	t->driven(t->self, driver);
}

int services_provide(struct core *core, void *owner, const char *kind, const char *name,
		     const void *vtable, struct todod_err *err)
{
	if (!kind || !*kind || !name || !vtable)
		return todod_err_set(err, "service_provide: kind, name and vtable are required");
	const struct service_kind *sk = service_kind_find(kind);
	if (sk && check_typed(sk, vtable, name, err) != 0)
		return -1;
	const char *other;
	if (sk && sk->per_name) {
		if (services_get_named(core, kind, name))
			return todod_err_set(err, "%s '%s' is already provided", kind, name);
	} else if (services_get(core, kind, &other))
		return todod_err_set(err, "service '%s' is already provided by '%s'", kind, other);
	struct service *s = calloc(1, sizeof *s);
	if (!s || !(s->kind = strdup(kind)) || !(s->name = strdup(name))) {
		if (s)
			free(s->kind);
		free(s);
		return todod_err_set(err, "out of memory");
	}
	s->owner = owner;
	s->vtable = vtable;
	s->next = core->services;
	core->services = s;
	if (strcmp(kind, "trigger") == 0)
		tell_trigger(core, name);
	return 0;
}

/* The first service of `kind`, or of `kind` and `name` when a name is given. */
static struct service *service_find(struct core *core, const char *kind, const char *name)
{
	for (struct service *s = core->services; s; s = s->next)
		if (strcmp(s->kind, kind) == 0 && (!name || strcmp(s->name, name) == 0))
			return s;
	return NULL;
}

const void *services_get(struct core *core, const char *kind, const char **name)
{
	struct service *s = service_find(core, kind, NULL);
	if (s && name)
		*name = s->name;
	return s ? s->vtable : NULL;
}

const void *services_get_named(struct core *core, const char *kind, const char *name)
{
	struct service *s = service_find(core, kind, name);
	return s ? s->vtable : NULL;
}

static void service_free(struct service *s)
{
	free(s->kind);
	free(s->name);
	free(s);
}

const struct todod_trigger *services_drive_trigger(struct core *core, const void *owner,
						   const char *driver, const char *name)
{
	bool known = false;
	for (struct trigger_driver *d = core->trigger_drivers; d && !known; d = d->next)
		known = d->owner == owner && strcmp(d->trigger, name) == 0;
	if (!known) {
		struct trigger_driver *d = calloc(1, sizeof *d);
		if (!d || !(d->driver = strdup(driver)) || !(d->trigger = strdup(name))) {
			/* The provider keeps timing its work itself: late, never lost. */
			log_error("out of memory: trigger '%s' is not driven by '%s'", name, driver);
			if (d)
				free(d->driver);
			free(d);
		} else {
			d->owner = owner;
			d->next = core->trigger_drivers;
			core->trigger_drivers = d;
			tell_trigger(core, name);
		}
	}
	return services_get_named(core, "trigger", name);
}

static void trigger_driver_free(struct trigger_driver *d)
{
	free(d->driver);
	free(d->trigger);
	free(d);
}

/* The triggers `owner` drove learn that it is gone, unless it provided
 * them itself (they go with it). */
static void drop_drivers(struct core *core, const void *owner)
{
	struct trigger_driver **pp = &core->trigger_drivers;
	while (*pp) {
		struct trigger_driver *d = *pp;
		if (d->owner != owner) {
			pp = &d->next;
			continue;
		}
		*pp = d->next;
		struct service *s = service_find(core, "trigger", d->trigger);
		if (s && s->owner != owner)
			tell_trigger(core, d->trigger);
		trigger_driver_free(d);
	}
}

void services_remove_owner(struct core *core, const void *owner)
{
	drop_drivers(core, owner);
	struct service **pp = &core->services;
	while (*pp) {
		struct service *s = *pp;
		if (s->owner == owner) {
			*pp = s->next;
			service_free(s);
		} else {
			pp = &s->next;
		}
	}
}

void services_free(struct core *core)
{
	while (core->trigger_drivers) {
		struct trigger_driver *d = core->trigger_drivers;
		core->trigger_drivers = d->next;
		trigger_driver_free(d);
	}
	while (core->services) {
		struct service *s = core->services;
		core->services = s->next;
		service_free(s);
	}
}

const struct todod_inbox_driver *services_inbox_driver(struct core *core, const char *want,
						       const void **owner, const char **service,
						       char *names, size_t size)
{
	const struct todod_inbox_driver *found = NULL;
	size_t used = 0;
	if (size)
		names[0] = '\0';
	for (struct service *s = core->services; s; s = s->next) {
		if (strcmp(s->kind, "inbox") != 0)
			continue;
		const struct todod_inbox_driver *d = s->vtable;
		if (used < size) {
			int n = snprintf(names + used, size - used, "%s%s", used ? ", " : "", d->name);
			used += n > 0 ? (size_t)n : 0;
		}
		if (!found && strcmp(d->name, want) == 0) {
			found = d;
			*owner = s->owner;
			*service = s->name;
		}
	}
	return found;
}
