/* store_admin.c - blocking administrative statements for the CLI and
 * first-run set-up. */
#include "store_admin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Run one statement; on failure fill err with the server's words. */
static PGresult *run(PGconn *c, const char *sql, int n, const char *const *params,
		     struct todod_err *err)
{
	PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	todod_err_set(err, "%s%s%s", msg ? msg : PQerrorMessage(c), hint ? ": " : "",
		      hint ? hint : "");
	PQclear(res);
	return NULL;
}

int admin_new_token(char *buf, size_t size, struct todod_err *err)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char rnd[32];
	if (size < 4 + 43 + 1)
		return todod_err_set(err, "token buffer too small");
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return todod_err_set(err, "cannot read random bytes: %s", strerror(errno));
	memcpy(buf, "tdd_", 4);
	/* base64url without padding: 43 characters carry the 256 bits. */
	size_t o = 4;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < sizeof rnd; i++) {
		acc = (acc << 8) | rnd[i];
		bits += 8;
		while (bits >= 6) {
			buf[o++] = alphabet[(acc >> (bits - 6)) & 63];
			bits -= 6;
		}
	}
	if (bits > 0)
		buf[o++] = alphabet[(acc << (6 - bits)) & 63];
	buf[o] = '\0';
	explicit_bzero(rnd, sizeof rnd);
	return 0;
}

int admin_user_add(PGconn *c, const char *name, const char *email, const char *tz,
		   const char *token, struct todod_err *err)
{
	const char *params[] = { name, email, tz, token };
	PGresult *res = run(c,
			    "INSERT INTO users (name, email, tz, token_hash)"
			    " VALUES ($1, $2, $3, sha256(convert_to($4, 'UTF8')))",
			    4, params, err);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

int admin_user_list(PGconn *c, FILE *out, struct todod_err *err)
{
	PGresult *res = run(c, "SELECT id, name, email, tz FROM users ORDER BY id", 0, NULL, err);
	if (!res)
		return -1;
	fprintf(out, "%-6s %-20s %-32s %s\n", "ID", "NAME", "EMAIL", "TIME ZONE");
	for (int i = 0; i < PQntuples(res); i++)
		fprintf(out, "%-6s %-20s %-32s %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
			PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
	PQclear(res);
	return 0;
}

/* An UPDATE/DELETE by name that must hit exactly one user. */
static int by_name(PGconn *c, const char *sql, int n, const char *const *params,
		   const char *name, struct todod_err *err)
{
	PGresult *res = run(c, sql, n, params, err);
	if (!res)
		return -1;
	int rows = atoi(PQcmdTuples(res));
	PQclear(res);
	if (rows != 1)
		return todod_err_set(err, "no user named '%s'", name);
	return 0;
}

int admin_user_set_token(PGconn *c, const char *name, const char *token, struct todod_err *err)
{
	const char *params[] = { name, token };
	return by_name(c, "UPDATE users SET token_hash = sha256(convert_to($2, 'UTF8')) WHERE name = $1",
		       2, params, name, err);
}

int admin_user_del(PGconn *c, const char *name, struct todod_err *err)
{
	const char *params[] = { name };
	return by_name(c, "DELETE FROM users WHERE name = $1", 1, params, name, err);
}

int admin_user_id(PGconn *c, const char *name, int64_t *id, struct todod_err *err)
{
	const char *params[] = { name };
	PGresult *res = run(c, "SELECT id FROM users WHERE name = $1", 1, params, err);
	if (!res)
		return -1;
	int found = PQntuples(res) == 1;
	if (found)
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return found ? 0 : todod_err_set(err, "no user named '%s' (see `todod user list`)", name);
}

static long user_count(PGconn *c, struct todod_err *err)
{
	PGresult *res = run(c, "SELECT count(*) FROM users", 0, NULL, err);
	if (!res)
		return -1;
	long n = atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	return n;
}

int admin_first_user(PGconn *c, const char *listen, FILE *out, struct todod_err *err)
{
	if (user_count(c, err) != 0)
		return 0;
	char token[64];
	const char *tz = getenv("TZ");
	if (admin_new_token(token, sizeof token, err) != 0 ||
	    admin_user_add(c, "admin", "root@localhost", tz && *tz ? tz : "UTC", token, err) != 0)
		return -1;
	fprintf(out, "todod: created the first user 'admin'\n"
		     "MCP URL:   http://%s/mcp\n"
		     "API token: %s\n", listen, token);
	fflush(out);
	explicit_bzero(token, sizeof token);
	return 0;
}

int admin_dlq_list(PGconn *c, FILE *out, struct todod_err *err)
{
	PGresult *res = run(c,
			    "SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
			    " consumer, topic, event_id, attempts, reason,"
			    " CASE WHEN replayed_at IS NULL THEN '' ELSE 'replayed' END"
			    " FROM dead_letters ORDER BY id",
			    0, NULL, err);
	if (!res)
		return -1;
	fprintf(out, "%-6s %-19s %-12s %-16s %-36s %-3s %s\n", "ID", "WHEN (UTC)", "CONSUMER",
		"TOPIC", "EVENT", "TRY", "REASON");
	for (int i = 0; i < PQntuples(res); i++)
		fprintf(out, "%-6s %-19s %-12s %-16s %-36s %-3s %s%s%s\n", PQgetvalue(res, i, 0),
			PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
			PQgetvalue(res, i, 4), PQgetvalue(res, i, 5), PQgetvalue(res, i, 6),
			*PQgetvalue(res, i, 7) ? " (" : "", *PQgetvalue(res, i, 7) ? "replayed)" : "");
	PQclear(res);
	return 0;
}

int admin_dlq_replay(PGconn *c, long long id, FILE *out, struct todod_err *err)
{
	char idbuf[24];
	snprintf(idbuf, sizeof idbuf, "%lld", id);
	const char *params[] = { idbuf };
	/* One statement: forget the consumer's inbox entry (dead-lettering
	 * settled it) and queue the very same event again.  Consumers that
	 * handled it before skip it through their own inbox. */
	PGresult *res = run(c,
			    "WITH picked AS ("
			    "  UPDATE dead_letters SET replayed_at = now()"
			    "   WHERE replayed_at IS NULL AND ($1::bigint <= 0 OR id = $1::bigint)"
			    "  RETURNING consumer, topic, event_id, event::jsonb AS ev),"
			    " forgot AS ("
			    "  DELETE FROM inbox i USING picked p"
			    "   WHERE i.consumer = p.consumer AND i.event_id = p.event_id)"
			    " INSERT INTO outbox (event_id, topic, type, subject, key, data, traceparent)"
			    " SELECT (ev->>'id')::uuid, topic, ev->>'type', ev->>'subject',"
			    "        coalesce(substring(ev->>'subject' from '[^/]*$'), ev->>'id'),"
			    "        coalesce(ev->'data', '{}'::jsonb), ev->>'traceparent'"
			    "   FROM picked",
			    1, params, err);
	if (!res)
		return -1;
	int n = atoi(PQcmdTuples(res));
	PQclear(res);
	if (n == 0 && id > 0)
		return todod_err_set(err, "no dead letter %lld waiting for a replay", id);
	fprintf(out, "%d event%s queued again\n", n, n == 1 ? "" : "s");
	return 0;
}
