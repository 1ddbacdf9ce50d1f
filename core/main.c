/* main.c - command line: run the daemon, check a config, document a
 * plugin, or hand over to an administrative subcommand. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"
#include "daemon.h"
#include "todod-plugin.h"
#include "todod-config.h"

static const char help_text[] =
	"usage: todod [-c FILE] [-t]            run (or with -t: check the configuration)\n"
	"       todod [-c FILE] --help-plugin NAME  options of plugin NAME (or 'core')\n"
	"       todod [-c FILE] COMMAND ...       migrate | user ... | dlq ...\n"
	"       todod [-c FILE] mcp-stdio --user NAME  serve MCP on stdin/stdout for NAME\n"
	"       todod --version\n"
	"\n"
	"  -c, --config FILE   configuration file (default " SYSCONFDIR "/todod.conf)\n"
	"  -t, --test          check the configuration and every plugin's options, then exit\n";

int main(int argc, char **argv)
{
	const char *config = SYSCONFDIR "/todod.conf";
	const char *help_plugin = NULL;
	const char *stdio_user = NULL;
	bool test = false;
	int cmd_at = 0;

	for (int i = 1; i < argc && !cmd_at; i++) {
		const char *a = argv[i];
		if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
			config = argv[++i];
		} else if (strcmp(a, "-t") == 0 || strcmp(a, "--test") == 0) {
			test = true;
		} else if (strcmp(a, "--help-plugin") == 0 && i + 1 < argc) {
			help_plugin = argv[++i];
		} else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			printf("todod %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, TODOD_ABI_MAJOR,
			       TODOD_ABI_MINOR);
			return 0;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(help_text, stdout);
			return 0;
		} else if (strcmp(a, "mcp-stdio") == 0) {
			if (i + 2 >= argc || strcmp(argv[i + 1], "--user") != 0) {
				fprintf(stderr, "todod: usage: todod [-c FILE] mcp-stdio --user NAME\n");
				return 64;
			}
			stdio_user = argv[i + 2];
			i += 2;
		} else if (cli_is_command(a)) {
			cmd_at = i;
		} else {
			fprintf(stderr, "todod: unknown argument '%s'\n%s", a, help_text);
			return 64;
		}
	}

	/* -c may also follow the subcommand: `todod user list -c FILE`. */
	int cmd_argc = 0;
	char **cmd_argv = NULL;
	if (cmd_at) {
		cmd_argv = todod_xcalloc((size_t)argc, sizeof *cmd_argv);
		for (int i = cmd_at; i < argc; i++) {
			if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
			    i + 1 < argc)
				config = argv[++i];
			else
				cmd_argv[cmd_argc++] = argv[i];
		}
	}

	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc;
	if (cmd_at)
		rc = cli_run(config, cmd_argc, cmd_argv);
	else if (help_plugin)
		rc = daemon_help_plugin(config, help_plugin);
	else if (test)
		rc = daemon_check_config(config);
	else
		rc = daemon_run(config, stdio_user);
	free(cmd_argv);
	curl_global_cleanup();
	return rc;
}
