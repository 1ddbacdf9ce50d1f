/* cli.c - `todod migrate`, `todod user ...`, `todod dlq ...`.
 *
 * These run without the event loop and may block.  They use the same
 * configuration as the daemon, including its private cluster. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core_conf.h"
#include "daemon.h"
#include "db.h"
#include "migrate.h"
#include "pgcluster.h"
#include "store_admin.h"

#define EXIT_USAGE 64

struct cli {
	struct cfg_file *cf;
	struct core_conf conf;
	struct pgcluster *pc;
	PGconn *conn;
};

static const char usage_text[] =
	"usage: todod [-c FILE] migrate\n"
	"       todod [-c FILE] user add NAME --email ADDR [--tz ZONE]\n"
	"       todod [-c FILE] user list | user token NAME | user del NAME\n"
	"       todod [-c FILE] dlq list | dlq replay ID|--all\n";

static int usage(void)
{
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

int cli_is_command(const char *name)
{
	return strcmp(name, "migrate") == 0 || strcmp(name, "user") == 0 || strcmp(name, "dlq") == 0;
}

static void cli_close(struct cli *cli)
{
	if (cli->conn)
		PQfinish(cli->conn);
	pgcluster_stop(cli->pc);
	cfg_conf_free(core_options, &cli->conf);
	cfg_free(cli->cf);
}

/* Connect and bring the schema up to date: a command never runs against
 * a schema older than the binary. */
static int cli_open(struct cli *cli, const char *path)
{
	struct todod_err err = { "" };
	int rc = daemon_load_core_conf(path, &cli->cf, &cli->conf, NULL);
	if (rc != 0)
		return rc;
	char *conninfo = NULL;
	bool created;
	if (cli->conf.database && *cli->conf.database) {
		conninfo = todod_xstrdup(cli->conf.database);
	} else {
		cli->pc = pgcluster_start(cli->conf.state_dir, cli->conf.pg_bindir, false, &conninfo,
					  &created, &err);
		if (!cli->pc)
			goto fail;
	}
	cli->conn = db_connect_blocking(conninfo, &err);
	free(conninfo);
	if (!cli->conn || migrate_apply(cli->conn, &err) < 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "todod: %s\n", err.text);
	cli_close(cli);
	return 1;
}

/* Value of `--name VALUE` among argv, or NULL. */
static const char *option(int argc, char **argv, const char *name)
{
	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

static int user_cmd(struct cli *cli, int argc, char **argv, struct todod_err *err)
{
	char token[64];
	const char *sub = argv[1];
	if (strcmp(sub, "list") == 0 && argc == 2)
		return admin_user_list(cli->conn, stdout, err);
	if (strcmp(sub, "del") == 0 && argc == 3) {
		if (admin_user_del(cli->conn, argv[2], err) != 0)
			return -1;
		printf("user '%s' deleted\n", argv[2]);
		return 0;
	}
	if (strcmp(sub, "token") == 0 && argc == 3) {
		if (admin_new_token(token, sizeof token, err) != 0 ||
		    admin_user_set_token(cli->conn, argv[2], token, err) != 0)
			return -1;
		printf("new token for '%s' (the old one no longer works):\n%s\n", argv[2], token);
		explicit_bzero(token, sizeof token);
		return 0;
	}
	if (strcmp(sub, "add") == 0 && (argc == 5 || argc == 7)) {
		const char *email = option(argc, argv, "--email");
		const char *tz = option(argc, argv, "--tz");
		if (!email || (argc == 7 && !tz))
			return todod_err_set(err, "user add needs --email ADDR (and optionally --tz ZONE)");
		if (admin_new_token(token, sizeof token, err) != 0 ||
		    admin_user_add(cli->conn, argv[2], email, tz ? tz : "UTC", token, err) != 0)
			return -1;
		printf("user '%s' added; its API token (shown once):\n%s\n", argv[2], token);
		explicit_bzero(token, sizeof token);
		return 0;
	}
	return 1;
}

static int dlq_cmd(struct cli *cli, int argc, char **argv, struct todod_err *err)
{
	if (strcmp(argv[1], "list") == 0 && argc == 2)
		return admin_dlq_list(cli->conn, stdout, err);
	if (strcmp(argv[1], "replay") == 0 && argc == 3) {
		if (strcmp(argv[2], "--all") == 0)
			return admin_dlq_replay(cli->conn, 0, stdout, err);
		char *end;
		long long id = strtoll(argv[2], &end, 10);
		if (*end || id <= 0)
			return todod_err_set(err, "dlq replay takes a dead letter id or --all, not '%s'",
					     argv[2]);
		return admin_dlq_replay(cli->conn, id, stdout, err);
	}
	return 1;
}

int cli_run(const char *config_path, int argc, char **argv)
{
	const char *cmd = argv[0];
	if ((strcmp(cmd, "migrate") == 0 && argc != 1) ||
	    ((strcmp(cmd, "user") == 0 || strcmp(cmd, "dlq") == 0) && argc < 2))
		return usage();
	struct cli cli = { 0 };
	int rc = cli_open(&cli, config_path);
	if (rc != 0)
		return rc;
	struct todod_err err = { "" };
	int r = 0;
	if (strcmp(cmd, "migrate") == 0)
		printf("database schema is up to date\n");
	else if (strcmp(cmd, "user") == 0)
		r = user_cmd(&cli, argc, argv, &err);
	else
		r = dlq_cmd(&cli, argc, argv, &err);
	cli_close(&cli);
	if (r > 0)
		return usage();
	if (r < 0) {
		fprintf(stderr, "todod: %s\n", err.text);
		return 1;
	}
	return 0;
}
