/* db_stmts.c - the statements the pool prepares, in a small hash table. */
#include "db_stmts.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "todod-plugin.h"

/* A power of two; twice the bound keeps the chains short. */
enum { BUCKETS = 2 * DB_STMTS_MAX };

struct db_stmts {
	struct db_stmt *buckets[BUCKETS];
	int n;
};

/* FNV-1a: the texts are short and few, and this runs once per query. */
static uint32_t text_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

struct db_stmts *db_stmts_new(void)
{
	return todod_xcalloc(1, sizeof(struct db_stmts));
}

void db_stmts_free(struct db_stmts *set)
{
	if (!set)
		return;
	for (int i = 0; i < BUCKETS; i++) {
		for (struct db_stmt *s = set->buckets[i], *next; s; s = next) {
			next = s->chain;
			free(s->sql);
			free(s);
		}
	}
	free(set);
}

const struct db_stmt *db_stmts_intern(struct db_stmts *set, const char *sql)
{
	struct db_stmt **bucket = &set->buckets[text_hash(sql) & (BUCKETS - 1)];
	for (struct db_stmt *s = *bucket; s; s = s->chain)
		if (strcmp(s->sql, sql) == 0)
			return s;
	if (set->n == DB_STMTS_MAX)
		return NULL;
	struct db_stmt *s = todod_xcalloc(1, sizeof *s);
	s->sql = todod_xstrdup(sql);
	s->index = set->n++;
	snprintf(s->name, sizeof s->name, "todod_%d", s->index);
	s->chain = *bucket;
	*bucket = s;
	return s;
}
