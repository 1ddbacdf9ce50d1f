/* services.c - the service registry and the typed kinds the core calls. */
#include "services.h"

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "core.h"

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
	LIST_ENTRY(service) link;
	const void *owner;
	char *kind;
	char *name;
	const void *vtable;
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
	{ .kind = "inbox", .min_size = ABI2_SIZE(struct todod_inbox_driver),
	  .check = check_inbox },
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
	struct service *s = todod_xcalloc(1, sizeof *s);
	s->kind = todod_xstrdup(kind);
	s->name = todod_xstrdup(name);
	s->owner = owner;
	s->vtable = vtable;
	LIST_INSERT_HEAD(&core->services, s, link);
	return 0;
}

/* The first service of `kind`, or of `kind` and `name` when a name is given. */
static struct service *service_find(struct core *core, const char *kind, const char *name)
{
	struct service *s;
	LIST_FOREACH(s, &core->services, link)
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
	LIST_REMOVE(s, link);
	free(s->kind);
	free(s->name);
	free(s);
}

void services_remove_owner(struct core *core, const void *owner)
{
	for (struct service *s = LIST_FIRST(&core->services), *next; s; s = next) {
		next = LIST_NEXT(s, link);
		if (s->owner == owner)
			service_free(s);
	}
}

void services_free(struct core *core)
{
	while (!LIST_EMPTY(&core->services))
		service_free(LIST_FIRST(&core->services));
}

const void *services_owner(struct core *core, const char *kind)
{
	struct service *s = service_find(core, kind, NULL);
	return s ? s->owner : NULL;
}
