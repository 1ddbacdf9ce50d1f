/* metrics.h - a small Prometheus registry: counters, gauges computed on
 * scrape, and latency histograms; rendered as text format 0.0.4. */
#ifndef TODOD_METRICS_H
#define TODOD_METRICS_H

#include <stdint.h>

struct evbuffer;
struct metric;

/* A metric family is identified by name; each distinct `labels` string
 * (already formatted: `route="/mcp",code="200"`, or "" for none) is one
 * series.  Asking again for the same name+labels returns the same
 * handle.  Handles live until metrics_free_all(). */
struct metric *metrics_counter(const char *name, const char *help, const char *labels);
struct metric *metrics_gauge(const char *name, const char *help, const char *labels);
/* Buckets in seconds: 0.0005 .. 10 (fixed, suits HTTP, DB and delivery latency). */
struct metric *metrics_histogram(const char *name, const char *help, const char *labels);

void metric_add(struct metric *m, double v);        /* counter, gauge */
void metric_set(struct metric *m, double v);        /* gauge */
void metric_observe(struct metric *m, double secs); /* histogram */

/* A gauge whose value is read at scrape time. */
void metrics_gauge_fn(const char *name, const char *help, const char *labels,
		      double (*fn)(void *arg), void *arg);
/* Drop every series registered with `arg` by metrics_gauge_fn (used when
 * a plugin is unloaded). */
void metrics_gauge_fn_remove(void *arg);

void metrics_render(struct evbuffer *out);
void metrics_free_all(void);

#endif
