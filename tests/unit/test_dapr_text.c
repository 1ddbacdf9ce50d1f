/* test_dapr_text.c - dapr-transport's strings: what goes into a URL to
 * daprd, what an operator reads when daprd says no, and the app token's
 * comparison. */
#include <stdlib.h>
#include <string.h>

#include "dapr.h"
#include "tap.h"

static void test_escape(void)
{
	char buf[32] = "/v1.0/publish/";
	ok(dapr_escape(buf, sizeof buf, "task-events") &&
	   strcmp(buf, "/v1.0/publish/task-events") == 0,
	   "a topic of unreserved characters goes in as it is: %s", buf);
	char q[64] = "";
	ok(dapr_escape(q, sizeof q, "a b/c?d&e=f%g+h~i.j_k") &&
	   strcmp(q, "a%20b%2Fc%3Fd%26e%3Df%25g%2Bh~i.j_k") == 0,
	   "separators of a path or a query are escaped: %s", q);
	char u[16] = "";
	ok(dapr_escape(u, sizeof u, "\xc3\xa9t\xc3\xa9") && strcmp(u, "%C3%A9t%C3%A9") == 0,
	   "UTF-8 bytes are escaped one by one: %s", u);
	char small[8] = "/x/";
	ok(!dapr_escape(small, sizeof small, "ab%") && strlen(small) < sizeof small,
	   "what does not fit is refused, the buffer still a string");
	char a[8] = "ab";
	ok(dapr_append(a, sizeof a, "cdefg") && strcmp(a, "abcdefg") == 0, "append fills up");
	ok(!dapr_append(a, sizeof a, "h") && strcmp(a, "abcdefg") == 0,
	   "append refuses a byte too many and changes nothing");
}

static void test_failure_text(void)
{
	char text[256];
	const char *body = "{\"errorCode\":\"ERR_PUBSUB_NOT_FOUND\",\"message\":\"pubsub nope is "
			   "not found\"}";
	struct todod_transfer_result res = { .status = 404, .body = body,
					     .body_len = strlen(body) };
	dapr_failure_text(&res, text, sizeof text);
	is_str(text, "HTTP 404 ERR_PUBSUB_NOT_FOUND: pubsub nope is not found",
	       "daprd's error code and message");
	res = (struct todod_transfer_result){ .status = 502, .body = "bad gateway", .body_len = 11 };
	dapr_failure_text(&res, text, sizeof text);
	is_str(text, "HTTP 502: bad gateway", "a body that is not daprd's JSON, as it is");
	res = (struct todod_transfer_result){ .status = 500, .body = "", .body_len = 0 };
	dapr_failure_text(&res, text, sizeof text);
	is_str(text, "HTTP 500: (no body)", "no body");
	res = (struct todod_transfer_result){ .error = "Connection refused" };
	dapr_failure_text(&res, text, sizeof text);
	is_str(text, "no answer: Connection refused", "no answer at all");
}

static void test_same_secret(void)
{
	ok(dapr_same_secret("s3cret", "s3cret"), "the token matches itself");
	ok(!dapr_same_secret("s3creT", "s3cret"), "one byte differs");
	ok(!dapr_same_secret("s3cre", "s3cret"), "a prefix is not the token");
	ok(!dapr_same_secret("s3crett", "s3cret"), "nor a longer one");
	ok(!dapr_same_secret("", "s3cret"), "nor nothing");
}

static void test_base64(void)
{
	size_t len = 99;
	char *out = dapr_base64_decode("eyJ0YXNrX2lkIjo0NSwidGl0bGUiOiJyYXcifQ==", &len);
	ok(out && len == 28 && memcmp(out, "{\"task_id\":45,\"title\":\"raw\"}", 28) == 0,
	   "daprd's data_base64 of a raw payload: the bytes as published");
	free(out);
	out = dapr_base64_decode("AP8=", &len);
	ok(out && len == 2 && (unsigned char)out[0] == 0 && (unsigned char)out[1] == 0xFF,
	   "binary bytes, one '='");
	free(out);
	out = dapr_base64_decode("", &len);
	ok(out && len == 0, "nothing is nothing");
	free(out);
	ok(!dapr_base64_decode("abc", &len), "not a multiple of four");
	ok(!dapr_base64_decode("ab=c", &len), "'=' inside");
	ok(!dapr_base64_decode("ab c", &len), "a blank");
	ok(!dapr_base64_decode("a===", &len), "three '='");
}

int main(void)
{
	test_escape();
	test_failure_text();
	test_same_secret();
	test_base64();
	return tap_done();
}
