/* loader.c - open, check, order and run plugins.
 *
 * The checks come before any plugin code runs, in the order that gives
 * the most useful message: the file exists, it is a shared object, it
 * exports `todod_plugin`, the ABI major/minor fit, the struct is at least
 * as large as the fields we read, the build signature matches, the name is
 * the one the config asked for, and its requirements are loaded.
 *
 * The core then works on its own copy of the definition and of the option
 * table, in this core's layout: a plugin built against an older minor has
 * the members it does not know read as zero, whatever its struct sizes. */
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "core.h"
#include "log.h"

#define PLUGIN_SECTION_PREFIX "plugin."

#define DEF_MIN_SIZE ABI2_SIZE(struct todod_plugin_def)
#define OPT_MIN_SIZE ABI2_SIZE(struct todod_opt)

#if TODOD_ABI_MINOR == 0
#define ABI_ACCEPTED TODOD_STR(TODOD_ABI_MAJOR) ".0"
#else
#define ABI_ACCEPTED TODOD_STR(TODOD_ABI_MAJOR) ".0 to " TODOD_STR(TODOD_ABI_MAJOR) "." \
	TODOD_STR(TODOD_ABI_MINOR)
#endif

/* abi_major and abi_minor sit first in every ABI's definition, so they
 * can be read before anything else is known about the plugin. */
static int check_def(const struct todod_plugin_def *def, const char *path, const char *name,
		     struct todod_err *err)
{
	if (def->abi_major != TODOD_ABI_MAJOR || def->abi_minor > TODOD_ABI_MINOR)
		return todod_err_set(err,
				     "%s: plugin built for ABI %u.%u, this todod requires ABI %s; "
				     "rebuild the plugin against this version's todod-plugin.h",
				     path, def->abi_major, def->abi_minor, ABI_ACCEPTED);
	if (def->struct_size < DEF_MIN_SIZE)
		return todod_err_set(err, "%s: plugin definition is %u bytes, expected at least %zu",
				     path, def->struct_size, (size_t)DEF_MIN_SIZE);
	if (def->options && def->option_size < OPT_MIN_SIZE)
		return todod_err_set(err, "%s: plugin option entries are %u bytes, expected at least %zu "
				     "(TODOD_PLUGIN_HEADER sets option_size)",
				     path, def->option_size, (size_t)OPT_MIN_SIZE);
	if (!def->build_sig || strcmp(def->build_sig, TODOD_BUILD_SIG) != 0)
		return todod_err_set(err, "%s: plugin was built for '%s', this todod is '%s'", path,
				     def->build_sig ? def->build_sig : "(none)", TODOD_BUILD_SIG);
	if (!def->name || strcmp(def->name, name) != 0)
		return todod_err_set(err, "%s: plugin calls itself '%s', expected '%s'", path,
				     def->name ? def->name : "(none)", name);
	if (!def->init)
		return todod_err_set(err, "%s: plugin '%s' has no init callback", path, name);
	if (def->conf_size == 0 && def->options && def->options[0].key)
		return todod_err_set(err, "%s: plugin '%s' declares options but conf_size is 0",
				     path, name);
	return 0;
}

/* The definition and its option table in this core's layout, in one
 * allocation that plugin_close() frees. */
struct owned_def {
	struct todod_plugin_def def;
	struct todod_opt options[];
};

static const struct todod_plugin_def *copy_def(const struct todod_plugin_def *def)
{
	size_t n_opts = 0;
	const char *entry = (const char *)def->options;
	if (entry)
		for (; ((const struct todod_opt *)entry)->key; entry += def->option_size)
			n_opts++;
	/* The table keeps its terminating entry (key NULL, zeroed by calloc). */
	struct owned_def *own =
		todod_xcalloc(1, sizeof *own + (n_opts + 1) * sizeof own->options[0]);
	memcpy(&own->def, def, def->struct_size < sizeof own->def ? def->struct_size : sizeof own->def);
	own->def.struct_size = sizeof own->def;
	if (def->options) {
		size_t opt_size = def->option_size < sizeof own->options[0] ? def->option_size
									     : sizeof own->options[0];
		for (size_t i = 0; i < n_opts; i++)
			memcpy(&own->options[i], (const char *)def->options + i * def->option_size,
			       opt_size);
		own->def.options = own->options;
		own->def.option_size = sizeof own->options[0];
	}
	return &own->def;
}

static bool valid_plugin_name(const char *name)
{
	if (!*name)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return false;
	return true;
}

int loader_open(const char *dir, const char *name, struct plugin *p, struct todod_err *err)
{
	memset(p, 0, sizeof *p);
	if (!valid_plugin_name(name))
		return todod_err_set(err, "invalid plugin name '%s' (use a-z, 0-9, - and _)", name);
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.so", dir, name);
	struct stat sb;
	if (stat(path, &sb) != 0)
		return todod_err_set(err, "plugin '%s' not found: %s: %s (plugin_dir is %s)", name,
				     path, strerror(errno), dir);
	if (!S_ISREG(sb.st_mode))
		return todod_err_set(err, "%s: not a regular file", path);

	/* RTLD_LOCAL: plugins cannot see each other's symbols, and they reach
	 * the core only through the function table. */
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl)
		return todod_err_set(err, "%s: cannot load: %s (ldd(1) on the file shows missing libraries)",
				     path, dlerror());
	const struct todod_plugin_def *def = dlsym(dl, "todod_plugin");
	if (!def) {
		dlclose(dl);
		return todod_err_set(err, "%s: not a todod plugin (no 'todod_plugin' symbol)", path);
	}
	if (check_def(def, path, name, err) != 0) {
		dlclose(dl);
		return -1;
	}
	p->name = todod_xstrdup(name);
	p->path = todod_xstrdup(path);
	p->dl = dl;
	p->def = copy_def(def);
	return 0;
}

int loader_validate(const struct plugin *p, const struct cfg_file *cf, const void *conf,
		    struct todod_err *err)
{
	struct todod_err verr = { "" };
	if (!p->def->validate || p->def->validate(conf, &verr) == 0)
		return 0;
	char section[128];
	snprintf(section, sizeof section, PLUGIN_SECTION_PREFIX "%s", p->name);
	const struct cfg_section *sec = cfg_section(cf, section);
	return todod_err_set(err, "%s:%d: [%s] %s", cf->path, sec ? sec->line : 0, section,
			     verr.text[0] ? verr.text : "invalid options");
}

int loader_bind(struct plugin *p, const struct cfg_file *cf, void **conf_r,
		struct cfg_secret_refs *refs, struct todod_err *err)
{
	char section[128];
	snprintf(section, sizeof section, PLUGIN_SECTION_PREFIX "%s", p->name);
	const struct cfg_section *sec = cfg_section(cf, section);
	void *conf = todod_xcalloc(1, p->def->conf_size ? p->def->conf_size : 1);
	static const struct todod_opt no_options[] = { { .key = NULL } };
	const struct todod_opt *schema = p->def->options ? p->def->options : no_options;
	int rc = refs ? cfg_bind_deferring(schema, cf, sec, conf, refs, err)
		      : cfg_bind(schema, cf, sec, conf, err);
	if (rc != 0) {
		free(conf);
		return -1;
	}
	if (loader_validate(p, cf, conf, err) != 0) {
		cfg_conf_free(schema, conf);
		free(conf);
		return -1;
	}
	*conf_r = conf;
	return 0;
}

static void plugin_close(struct plugin *p)
{
	if (p->conf) {
		if (p->def->options)
			cfg_conf_free(p->def->options, p->conf);
		free(p->conf);
	}
	/* The copy's option table lives in the same allocation. */
	free((void *)p->def);
	if (p->dl)
		dlclose(p->dl);
	free(p->name);
	free(p->path);
	memset(p, 0, sizeof *p);
}

static ssize_t set_find(const struct plugin_set *set, const char *name)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->v[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

/* Order so that every plugin comes after what it requires (a stable
 * topological sort: config order is kept where requirements allow). */
static int order_by_requirements(struct plugin_set *set, const struct cfg_file *cf,
				 struct todod_err *err)
{
	struct plugin *sorted = todod_xcalloc(set->n, sizeof *sorted);
	bool *placed = todod_xcalloc(set->n, sizeof *placed);
	size_t n_sorted = 0;
	while (n_sorted < set->n) {
		bool progress = false;
		for (size_t i = 0; i < set->n; i++) {
			if (placed[i])
				continue;
			bool ready = true;
			for (const char *const *r = set->v[i].def->requires; r && *r; r++) {
				ssize_t j = set_find(set, *r);
				if (j < 0) {
					char section[128];
					snprintf(section, sizeof section, PLUGIN_SECTION_PREFIX "%s",
						 set->v[i].name);
					const struct cfg_section *sec = cfg_section(cf, section);
					todod_err_set(err, "%s:%d: [%s] plugin '%s' requires plugin '%s'; add a "
						      "[plugin.%s] section", cf->path, sec ? sec->line : 0,
						      section, set->v[i].name, *r, *r);
					free(sorted);
					free(placed);
					return -1;
				}
				if (!placed[j])
					ready = false;
			}
			if (ready) {
				sorted[n_sorted++] = set->v[i];
				placed[i] = true;
				progress = true;
			}
		}
		if (!progress) {
			free(sorted);
			free(placed);
			return todod_err_set(err, "%s: plugins require each other in a cycle", cf->path);
		}
	}
	free(set->v);
	set->v = sorted;
	free(placed);
	return 0;
}

int loader_load(const struct cfg_file *cf, const char *dir, struct plugin_set *set,
		struct cfg_secret_refs *refs, struct todod_err *err)
{
	memset(set, 0, sizeof *set);
	set->v = todod_xcalloc(cf->n_sections ? cf->n_sections : 1, sizeof *set->v);
	for (size_t i = 0; i < cf->n_sections; i++) {
		const struct cfg_section *sec = &cf->sections[i];
		if (strcmp(sec->name, "core") == 0)
			continue;
		if (strncmp(sec->name, PLUGIN_SECTION_PREFIX, strlen(PLUGIN_SECTION_PREFIX)) != 0) {
			todod_err_set(err, "%s:%d: unknown section [%s] (expected [core] or [plugin.NAME])",
				      cf->path, sec->line, sec->name);
			goto fail;
		}
		const char *name = sec->name + strlen(PLUGIN_SECTION_PREFIX);
		if (set_find(set, name) >= 0) {
			todod_err_set(err, "%s:%d: plugin '%s' is loaded twice", cf->path, sec->line, name);
			goto fail;
		}
		struct plugin *p = &set->v[set->n];
		struct todod_err oerr = { "" };
		if (loader_open(dir, name, p, &oerr) != 0) {
			todod_err_set(err, "%s:%d: [%s] %s", cf->path, sec->line, sec->name, oerr.text);
			goto fail;
		}
		set->n++;
		if (loader_bind(p, cf, &p->conf, refs, err) != 0)
			goto fail;
	}
	if (order_by_requirements(set, cf, err) != 0)
		goto fail;
	return 0;
fail:
	loader_unload(set);
	return -1;
}

int loader_init_all(struct plugin_set *set, struct core *core, struct todod_err *err)
{
	for (size_t i = 0; i < set->n; i++) {
		struct plugin *p = &set->v[i];
		p->ctx = ctx_new(core, p->name);
		struct todod_err ierr = { "" };
		if (p->def->init(&core_api, p->ctx, p->conf, &p->state, &ierr) != 0) {
			/* Undo whatever it registered before it failed. */
			ctx_release(p->ctx);
			p->ctx = NULL;
			p->state = NULL;
			return todod_err_set(err, "plugin '%s' failed to initialise: %s", p->name,
					     ierr.text[0] ? ierr.text : "no reason given");
		}
		log_debug("plugin '%s' %s initialised from %s", p->name,
			  p->def->version ? p->def->version : "", p->path);
	}
	return 0;
}

int loader_start_all(struct plugin_set *set, struct todod_err *err)
{
	for (size_t i = 0; i < set->n; i++) {
		struct plugin *p = &set->v[i];
		struct todod_err serr = { "" };
		if (p->def->start && p->def->start(p->state, &serr) != 0)
			return todod_err_set(err, "plugin '%s' failed to start: %s", p->name,
					     serr.text[0] ? serr.text : "no reason given");
		p->started = true;
	}
	return 0;
}

void loader_unload(struct plugin_set *set)
{
	for (size_t i = set->n; i-- > 0;) {
		struct plugin *p = &set->v[i];
		/* destroy() may still delete its own timers; whatever it leaves
		 * is removed with the context right after.  No callback can run
		 * in between: the loop is not running. */
		if (p->ctx) {
			if (p->def->destroy)
				p->def->destroy(p->state);
			ctx_release(p->ctx);
			p->ctx = NULL;
		}
		plugin_close(p);
	}
	free(set->v);
	memset(set, 0, sizeof *set);
}
