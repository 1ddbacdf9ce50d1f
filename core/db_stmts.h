/* db_stmts.h - the statements the pool prepares, by their SQL text.
 *
 * The store sends a small, fixed set of statements (one per operation),
 * so each distinct text gets a server-side name once and every connection
 * prepares it on first use.  The set is bounded: text past the bound (a
 * caller building SQL on the fly) is sent unprepared, never piles up
 * prepared statements on the server. */
#ifndef TODOD_DB_STMTS_H
#define TODOD_DB_STMTS_H

enum { DB_STMTS_MAX = 128 };

struct db_stmt {
	char *sql;
	char name[16]; /* "todod_<index>" */
	int index;     /* 0 .. DB_STMTS_MAX-1: a connection's flag for it */
	struct db_stmt *chain;
};

struct db_stmts;

struct db_stmts *db_stmts_new(void);
void db_stmts_free(struct db_stmts *set);

/* The statement for `sql`, named on its first call; NULL once the set is
 * full and `sql` is not in it. */
const struct db_stmt *db_stmts_intern(struct db_stmts *set, const char *sql);

#endif
