/* tap.h - the few TAP helpers the unit tests need (Test Anything
 * Protocol, read by automake's tap-driver.sh). */
#ifndef TODOD_TAP_H
#define TODOD_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed;

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...) tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)

/* Prints one result line; `why` (may be NULL) follows a failure. */
static inline int tap_vresult(int pass, const char *file, int line, const char *why,
			      const char *fmt, va_list ap)
{
	printf("%s %d - ", pass ? "ok" : "not ok", ++tap_count);
	vprintf(fmt, ap);
	printf("\n");
	if (!pass) {
		tap_failed++;
		printf("#   failed at %s:%d\n%s", file, line, why ? why : "");
	}
	fflush(stdout);
	return pass;
}

static inline int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pass = tap_vresult(pass, file, line, NULL, fmt, ap);
	va_end(ap);
	return pass;
}

static inline int tap_is_str(const char *got, const char *want, const char *file, int line,
			     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static inline int tap_is_str(const char *got, const char *want, const char *file, int line,
			     const char *fmt, ...)
{
	int pass = got && want ? strcmp(got, want) == 0 : got == want;
	char why[2048];
	snprintf(why, sizeof why, "#          got: '%s'\n#     expected: '%s'\n",
		 got ? got : "(null)", want ? want : "(null)");
	va_list ap;
	va_start(ap, fmt);
	pass = tap_vresult(pass, file, line, why, fmt, ap);
	va_end(ap);
	return pass;
}

/* Call last: prints the plan and gives the exit status. */
static inline int tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

#endif
