/* dapr_text.c - strings to and from daprd: URL escaping, the text of a
 * failed call, the app token's comparison, base64.  No I/O, so the unit tests
 * (tests/unit/test_dapr_text.c) take it as it is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dapr.h"

/* Compares in time that depends on the secret's length only, never on
 * where the first difference is. */
bool dapr_same_secret(const char *given, const char *secret)
{
	size_t given_len = strlen(given), len = strlen(secret);
	volatile unsigned char diff = given_len != len;
	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)secret[i] ^ (unsigned char)(i < given_len ? given[i] : 0);
	return diff == 0;
}

/* Dapr's errors are {"errorCode":"ERR_...","message":"..."}. */
void dapr_failure_text(const struct todod_transfer_result *res, char *buf, size_t size)
{
	if (res->status == 0) {
		snprintf(buf, size, "no answer: %s", res->error ? res->error : "unknown error");
		return;
	}
	json_object *root = res->body && res->body_len ? json_tokener_parse(res->body) : NULL;
	json_object *code = NULL, *message = NULL;
	if (root && json_object_is_type(root, json_type_object)) {
		json_object_object_get_ex(root, "errorCode", &code);
		json_object_object_get_ex(root, "message", &message);
	}
	if (message)
		snprintf(buf, size, "HTTP %ld %s: %s", res->status,
			 code ? json_object_get_string(code) : "", json_object_get_string(message));
	else
		snprintf(buf, size, "HTTP %ld: %.200s", res->status,
			 res->body_len ? res->body : "(no body)");
	json_object_put(root);
}

bool dapr_escape(char *buf, size_t size, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t used = strlen(buf);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || strchr("-._~", *p);
		if (used + (plain ? 1 : 3) >= size)
			return false;
		if (plain) {
			buf[used++] = (char)*p;
		} else {
			buf[used++] = '%';
			buf[used++] = hex[*p >> 4];
			buf[used++] = hex[*p & 15];
		}
	}
	buf[used] = '\0';
	return true;
}

bool dapr_append(char *buf, size_t size, const char *s)
{
	size_t used = strlen(buf), n = strlen(s);
	if (used + n >= size)
		return false;
	memcpy(buf + used, s, n + 1);
	return true;
}

static int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Go's encoding/base64 (StdEncoding), what daprd writes: padded to a
 * multiple of four. */
char *dapr_base64_decode(const char *in, size_t *out_len)
{
	size_t len = strlen(in);
	if (len % 4 != 0)
		return NULL;
	size_t pad = len && in[len - 1] == '=' ? (len > 1 && in[len - 2] == '=' ? 2 : 1) : 0;
	char *out = todod_xmalloc(len / 4 * 3 + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		uint32_t group = 0;
		for (size_t k = 0; k < 4; k++) {
			int v = base64_value((unsigned char)in[i + k]);
			if (v < 0 && !(last && k >= 4 - pad)) {
				free(out);
				return NULL;
			}
			group = group << 6 | (uint32_t)(v < 0 ? 0 : v);
		}
		size_t bytes = last ? 3 - pad : 3;
		for (size_t k = 0; k < bytes; k++)
			out[n++] = (char)(group >> (16 - 8 * k) & 0xFF);
	}
	out[n] = '\0';
	*out_len = n;
	return out;
}
