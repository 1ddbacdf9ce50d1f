/* clock.h - the core's readings of the clocks, and RFC 3339 text.
 *
 * Wall-clock time is what people and other instances see (event times,
 * log stamps, leases, wall-clock timers); monotonic time measures
 * timeouts and durations, which a clock step (NTP, suspend) must not
 * stretch or cut. */
#ifndef TODOD_CLOCK_H
#define TODOD_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t clock_wall_ms(void);   /* since the Unix epoch */
int64_t clock_wall_us(void);
int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);
int64_t clock_mono_ns(void);

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" and its NUL. */
#define RFC3339_MS_SIZE 25

/* `epoch_ms` as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into buf: the text's
 * length (24), or 0 with buf "" (when size > 0) if it is smaller than
 * RFC3339_MS_SIZE, rather than a cut date that reads as another one. */
size_t rfc3339_format_ms(int64_t epoch_ms, char *buf, size_t size);

/* An RFC 3339 date-time (5.6): "2026-11-27T10:00:00Z", 't' and 'z' in
 * either case, an optional fraction (milliseconds kept, the rest cut),
 * a Z or +hh:mm/-hh:mm offset.  The day must exist in its month; a leap
 * second (:60) counts as the next second.  0 with the instant in
 * *epoch_ms, -1 when `s` is NULL or anything else. */
int rfc3339_parse_ms(const char *s, int64_t *epoch_ms);

#endif
