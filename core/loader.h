/* loader.h - finding, opening and checking plugins, and running their
 * lifecycle.  Nothing in a plugin runs before its definition passed every
 * check: ABI version, struct size, build signature, name, requirements. */
#ifndef TODOD_LOADER_H
#define TODOD_LOADER_H

#include <stdbool.h>

#include "config.h"
#include "todod-plugin.h"

struct core;

struct plugin {
	char *name;
	char *path;
	void *dl;
	const struct todod_plugin_def *def;
	void *conf;           /* bound options, conf_size bytes */
	void *state;          /* from init() */
	struct todod_ctx *ctx;
	bool started;
	bool draining;
};

struct plugin_set {
	struct plugin *v;
	size_t n;
};

/* Open `dir`/`name`.so and check its definition; no plugin code runs. */
int loader_open(const char *dir, const char *name, struct plugin *p, struct todod_err *err);

/* Open every [plugin.NAME] section's plugin, bind and validate its
 * options, and order the set so that requirements come first.  Errors
 * name the config file and line of the section.  With `refs`, SECRET
 * values that may name a plugin's resolver are kept there (see
 * cfg_bind_deferring); without, they are literals. */
int loader_load(const struct cfg_file *cf, const char *dir, struct plugin_set *set,
		struct cfg_secret_refs *refs, struct todod_err *err);

/* Bind and validate options for an already-open plugin (reload). */
int loader_bind(struct plugin *p, const struct cfg_file *cf, void **conf,
		struct cfg_secret_refs *refs, struct todod_err *err);
/* The plugin's validate() on `conf`, its error placed at its section:
 * again once references are resolved, as it first saw them as "". */
int loader_validate(const struct plugin *p, const struct cfg_file *cf, const void *conf,
		    struct todod_err *err);

/* init() every plugin in order; on failure the failing plugin's
 * registrations are rolled back and the error names it. */
int loader_init_all(struct plugin_set *set, struct core *core, struct todod_err *err);
int loader_start_all(struct plugin_set *set, struct todod_err *err);

/* destroy() in reverse order, release contexts, dlclose. */
void loader_unload(struct plugin_set *set);

#endif
