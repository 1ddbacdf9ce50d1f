/* migrate.c - bring the schema up to the version this binary carries.
 *
 * The whole run holds a session advisory lock, so replicas that start
 * together apply each migration once: the second waits, then finds the
 * schema current.  Each migration and its schema_version row commit in one
 * transaction, so a failure leaves the database at the previous version. */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Any constant shared by every todod binary; "todod" in ASCII. */
#define MIGRATE_LOCK_KEY "500085059428"

/* One line of the server's complaint, without libpq's "ERROR:  " prefix. */
static void describe(PGconn *conn, PGresult *res, char *buf, size_t size)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!msg)
		msg = PQerrorMessage(conn);
	snprintf(buf, size, "%.*s", (int)strcspn(msg, "\n"), msg);
}

/* Runs one statement; on failure fills err with "<what>: <reason>". */
static PGresult *run(PGconn *conn, const char *sql, int nparams, const char *const *params,
		     const char *what, struct todod_err *err)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	char reason[400];
	describe(conn, res, reason, sizeof reason);
	todod_err_set(err, "%s: %s", what, reason);
	PQclear(res);
	return NULL;
}

static bool run_ok(PGconn *conn, const char *sql, const char *what, struct todod_err *err)
{
	PGresult *res = run(conn, sql, 0, NULL, what, err);
	PQclear(res);
	return res != NULL;
}

static int newest_known(struct todod_err *err)
{
	int newest = 0;
	for (const struct migration *m = migrations; m->version; m++) {
		if (m->version <= newest)
			return todod_err_set(err, "migrations are out of order at %s", m->name);
		newest = m->version;
	}
	return newest;
}

static int current_version(PGconn *conn, struct todod_err *err)
{
	/* Checking first (rather than CREATE ... IF NOT EXISTS) keeps the
	 * server from sending a notice on every start. */
	PGresult *res = run(conn, "SELECT to_regclass('schema_version') IS NOT NULL", 0, NULL,
			    "schema_version", err);
	if (!res)
		return -1;
	bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!exists && !run_ok(conn,
			       "CREATE TABLE schema_version ("
			       " version    integer PRIMARY KEY,"
			       " name       text NOT NULL,"
			       " checksum   text NOT NULL,"
			       " applied_at timestamptz NOT NULL DEFAULT now())",
			       "creating schema_version", err))
		return -1;
	res = run(conn, "SELECT coalesce(max(version), 0) FROM schema_version", 0, NULL,
		  "reading schema_version", err);
	if (!res)
		return -1;
	int version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return version;
}

static int apply_one(PGconn *conn, const struct migration *m, struct todod_err *err)
{
	char what[128];
	snprintf(what, sizeof what, "migration %s", m->name);
	if (!run_ok(conn, "BEGIN", what, err))
		return -1;
	/* A migration file holds many statements: only the simple query
	 * protocol (PQexec without parameters) accepts that. */
	PGresult *res = PQexec(conn, m->sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		char reason[400];
		describe(conn, res, reason, sizeof reason);
		todod_err_set(err, "%s: %s", what, reason);
		PQclear(res);
		PQclear(PQexec(conn, "ROLLBACK"));
		return -1;
	}
	PQclear(res);
	char version[16];
	snprintf(version, sizeof version, "%d", m->version);
	const char *params[] = { version, m->name, m->sql };
	res = run(conn, "INSERT INTO schema_version (version, name, checksum) VALUES ($1::int, $2, md5($3))",
		  3, params, what, err);
	if (!res) {
		PQclear(PQexec(conn, "ROLLBACK"));
		return -1;
	}
	PQclear(res);
	if (!run_ok(conn, "COMMIT", what, err))
		return -1;
	log_info("applied migration %s", m->name);
	return 0;
}

/* A migration edited after a database applied it would leave that
 * database with a schema no binary describes: refuse to start on it. */
static int verify_applied(PGconn *conn, int current, struct todod_err *err)
{
	for (const struct migration *m = migrations; m->version && m->version <= current; m++) {
		char version[16];
		snprintf(version, sizeof version, "%d", m->version);
		const char *params[] = { version, m->sql };
		PGresult *res = run(conn,
				    "SELECT checksum = md5($2) FROM schema_version WHERE version = $1::int",
				    2, params, "checking schema_version", err);
		if (!res)
			return -1;
		bool same = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (!same)
			return todod_err_set(err, "migration %s differs from the one this database applied; "
						  "a released migration must never change (add a new one)",
					     m->name);
	}
	return 0;
}

static int apply_locked(PGconn *conn, int newest, struct todod_err *err)
{
	int current = current_version(conn, err);
	if (current < 0 || verify_applied(conn, current < newest ? current : newest, err) != 0)
		return -1;
	if (current > newest)
		return todod_err_set(err,
				     "the database schema is at version %d, newer than this todod "
				     "(which knows up to %d): run a newer todod",
				     current, newest);
	int applied = 0;
	for (const struct migration *m = migrations; m->version; m++) {
		if (m->version <= current)
			continue;
		if (apply_one(conn, m, err) != 0)
			return -1;
		applied++;
	}
	return applied;
}

int migrate_apply(PGconn *conn, struct todod_err *err)
{
	int newest = newest_known(err);
	if (newest < 0)
		return -1;
	if (!run_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "taking the migration lock",
		    err))
		return -1;
	int applied = apply_locked(conn, newest, err);
	/* A failed unlock only matters for this session, which the caller
	 * closes anyway; the migration outcome is what gets reported. */
	PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
	return applied;
}
