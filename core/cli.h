/* cli.h - the administrative subcommands: migrate, user, dlq. */
#ifndef TODOD_CLI_H
#define TODOD_CLI_H

/* argv[0] is the subcommand.  Returns the process exit code. */
int cli_run(const char *config_path, int argc, char **argv);

/* Whether `name` is a subcommand cli_run knows. */
int cli_is_command(const char *name);

#endif
