/* metrics.c - the Prometheus registry behind /metrics.
 *
 * Families keep their registration order, and so do the series of a family,
 * so two scrapes of the same state print the same text.  Handles are looked
 * up through one hash table keyed by name and labels; hot paths are expected
 * to keep the handle, so the table only has to be good, not clever. */
#include "metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>

#include "log.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const char *const type_names[] = { "counter", "gauge", "histogram" };

static const double bucket_bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define N_BOUNDS (sizeof bucket_bounds / sizeof bucket_bounds[0])
/* Spelled out so the `le` labels never depend on printf rounding. */
static const char *const bucket_labels[N_BOUNDS] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
	"0.1", "0.25", "0.5", "1", "2.5", "5", "10",
};

struct metric_family {
	STAILQ_ENTRY(metric_family) link;
	TAILQ_HEAD(, metric) series; /* in the order they were made */
	enum metric_type type;
	char *help;
	char name[];
};

struct metric {
	struct metric_family *family;
	TAILQ_ENTRY(metric) in_family;
	struct metric *next_in_bucket;
	unsigned hash;
	double value;            /* counter, gauge */
	double (*fn)(void *arg); /* gauge read at scrape time */
	void *fn_arg;
	double sum;              /* histogram */
	uint64_t count;
	uint64_t *buckets;       /* histogram: N_BOUNDS per-bucket (not cumulative) counts */
	char labels[];
};

#define TABLE_SIZE 256 /* series; chains stay short for a daemon's few hundred */

/* Families in the order they were made, which is the order /metrics
 * shows them in. */
static struct {
	STAILQ_HEAD(, metric_family) families;
	struct metric *table[TABLE_SIZE];
} reg = { .families = STAILQ_HEAD_INITIALIZER(reg.families) };

static unsigned hash_series(const char *name, const char *labels)
{
	unsigned h = 2166136261u;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h = (h ^ 0xffu) * 16777619u; /* keeps "ab"+"c" apart from "a"+"bc" */
	for (const char *p = labels; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

static struct metric_family *family_find(const char *name)
{
	struct metric_family *f;
	STAILQ_FOREACH(f, &reg.families, link)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

static struct metric_family *family_get(const char *name, const char *help,
					enum metric_type type)
{
	struct metric_family *f = family_find(name);
	if (f) {
		if (f->type != type) {
			log_error("metrics: %s is a %s, not a %s", name, type_names[f->type],
				  type_names[type]);
			return NULL;
		}
		return f;
	}
	size_t len = strlen(name) + 1;
	f = todod_xcalloc(1, sizeof *f + len);
	f->help = todod_xstrdup(help ? help : "");
	memcpy(f->name, name, len);
	f->type = type;
	TAILQ_INIT(&f->series);
	STAILQ_INSERT_TAIL(&reg.families, f, link);
	return f;
}

static struct metric *series_find(const struct metric_family *f, const char *labels, unsigned h)
{
	for (struct metric *m = reg.table[h % TABLE_SIZE]; m; m = m->next_in_bucket)
		if (m->hash == h && m->family == f && strcmp(m->labels, labels) == 0)
			return m;
	return NULL;
}

/* The one way a series comes to exist: found again, or appended to its
 * family and hashed.  NULL (after a log line) on a type clash or no memory;
 * metric_add() and friends accept NULL so a bad registration costs a
 * missing series, not a crash. */
static struct metric *series_get(const char *name, const char *help, const char *labels,
				 enum metric_type type)
{
	struct metric_family *f = family_get(name, help, type);
	if (!f)
		return NULL;
	if (!labels)
		labels = "";
	unsigned h = hash_series(name, labels);
	struct metric *m = series_find(f, labels, h);
	if (m)
		return m;

	size_t len = strlen(labels) + 1;
	m = todod_xcalloc(1, sizeof *m + len);
	if (type == METRIC_HISTOGRAM) {
		m->buckets = todod_xcalloc(N_BOUNDS, sizeof *m->buckets);
	}
	memcpy(m->labels, labels, len);
	m->family = f;
	m->hash = h;
	m->next_in_bucket = reg.table[h % TABLE_SIZE];
	reg.table[h % TABLE_SIZE] = m;
	TAILQ_INSERT_TAIL(&f->series, m, in_family);
	return m;
}

struct metric *metrics_counter(const char *name, const char *help, const char *labels)
{
	return series_get(name, help, labels, METRIC_COUNTER);
}

struct metric *metrics_gauge(const char *name, const char *help, const char *labels)
{
	return series_get(name, help, labels, METRIC_GAUGE);
}

struct metric *metrics_histogram(const char *name, const char *help, const char *labels)
{
	return series_get(name, help, labels, METRIC_HISTOGRAM);
}

void metric_add(struct metric *m, double v)
{
	if (m)
		m->value += v;
}

void metric_set(struct metric *m, double v)
{
	if (m)
		m->value = v;
}

void metric_observe(struct metric *m, double secs)
{
	if (!m || !m->buckets)
		return;
	size_t i = 0;
	while (i < N_BOUNDS && secs > bucket_bounds[i])
		i++;
	/* Past the last bound only +Inf holds it, and that is `count`. */
	if (i < N_BOUNDS)
		m->buckets[i]++;
	m->count++;
	m->sum += secs;
}

void metrics_gauge_fn(const char *name, const char *help, const char *labels,
		      double (*fn)(void *arg), void *arg)
{
	struct metric *m = series_get(name, help, labels, METRIC_GAUGE);
	if (!m)
		return;
	/* A second registration (a plugin re-initialised) takes over the series. */
	m->fn = fn;
	m->fn_arg = arg;
}

static void series_free(struct metric *m)
{
	free(m->buckets);
	free(m);
}

static void series_unhash(struct metric *m)
{
	struct metric **pp = &reg.table[m->hash % TABLE_SIZE];
	while (*pp != m)
		pp = &(*pp)->next_in_bucket;
	*pp = m->next_in_bucket;
}

void metrics_gauge_fn_remove(void *arg)
{
	struct metric_family *f;
	STAILQ_FOREACH(f, &reg.families, link) {
		for (struct metric *m = TAILQ_FIRST(&f->series), *next; m; m = next) {
			next = TAILQ_NEXT(m, in_family);
			if (!m->fn || m->fn_arg != arg)
				continue;
			TAILQ_REMOVE(&f->series, m, in_family);
			series_unhash(m);
			series_free(m);
		}
	}
}

/* The shortest decimal that reads back as the same double, like Go's
 * client prints, so counters show "42" and sums do not grow 17 digits. */
static void render_value(struct evbuffer *out, double v)
{
	if (isnan(v)) {
		evbuffer_add(out, "NaN", 3);
		return;
	}
	if (isinf(v)) {
		evbuffer_add_printf(out, "%s", v > 0 ? "+Inf" : "-Inf");
		return;
	}
	char text[32];
	snprintf(text, sizeof text, "%.15g", v);
	if (strtod(text, NULL) != v)
		snprintf(text, sizeof text, "%.17g", v);
	evbuffer_add_printf(out, "%s", text);
}

/* HELP text escapes backslash and newline (text format 0.0.4). */
static void render_help(struct evbuffer *out, const struct metric_family *f)
{
	evbuffer_add_printf(out, "# HELP %s ", f->name);
	for (const char *p = f->help; *p; p++) {
		if (*p == '\\')
			evbuffer_add(out, "\\\\", 2);
		else if (*p == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, p, 1);
	}
	evbuffer_add_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
}

/* One sample line: name{labels[,le="x"]} value; `le` is NULL outside buckets. */
static void render_sample(struct evbuffer *out, const char *name, const char *suffix,
			  const char *labels, const char *le, double v)
{
	evbuffer_add_printf(out, "%s%s", name, suffix);
	if (*labels || le) {
		evbuffer_add_printf(out, "{%s", labels);
		if (le)
			evbuffer_add_printf(out, "%sle=\"%s\"", *labels ? "," : "", le);
		evbuffer_add(out, "}", 1);
	}
	evbuffer_add(out, " ", 1);
	render_value(out, v);
	evbuffer_add(out, "\n", 1);
}

static void render_histogram(struct evbuffer *out, const char *name, const struct metric *m)
{
	uint64_t cumulative = 0;
	for (size_t i = 0; i < N_BOUNDS; i++) {
		cumulative += m->buckets[i];
		render_sample(out, name, "_bucket", m->labels, bucket_labels[i], (double)cumulative);
	}
	render_sample(out, name, "_bucket", m->labels, "+Inf", (double)m->count);
	render_sample(out, name, "_sum", m->labels, NULL, m->sum);
	render_sample(out, name, "_count", m->labels, NULL, (double)m->count);
}

void metrics_render(struct evbuffer *out)
{
	const struct metric_family *f;
	STAILQ_FOREACH(f, &reg.families, link) {
		if (TAILQ_EMPTY(&f->series))
			continue; /* every series was a removed gauge_fn */
		render_help(out, f);
		const struct metric *m;
		TAILQ_FOREACH(m, &f->series, in_family) {
			if (f->type == METRIC_HISTOGRAM)
				render_histogram(out, f->name, m);
			else
				render_sample(out, f->name, "", m->labels, NULL,
					      m->fn ? m->fn(m->fn_arg) : m->value);
		}
	}
}

void metrics_free_all(void)
{
	struct metric_family *f;
	while ((f = STAILQ_FIRST(&reg.families))) {
		STAILQ_REMOVE_HEAD(&reg.families, link);
		struct metric *m;
		while ((m = TAILQ_FIRST(&f->series))) {
			TAILQ_REMOVE(&f->series, m, in_family);
			series_free(m);
		}
		free(f->help);
		free(f);
	}
	memset(reg.table, 0, sizeof reg.table);
}
