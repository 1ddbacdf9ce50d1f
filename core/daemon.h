/* daemon.h - the daemon's entry points: run, check a configuration,
 * document a plugin's options.  The running state is struct core
 * (core.h). */
#ifndef TODOD_DAEMON_H
#define TODOD_DAEMON_H

struct cfg_file;
struct cfg_secret_refs;
struct core_conf;

/* Run the daemon with the config at `path`; returns the process exit code
 * (0 clean stop, 78 configuration error, 1 otherwise).  With `stdio_user`
 * (`todod mcp-stdio --user NAME`) there is no HTTP listener: the plugin
 * providing service "stdio" serves that user on stdin/stdout, and the end
 * of stdin stops the process. */
int daemon_run(const char *path, const char *stdio_user);

/* `todod -t`: parse and validate everything, print the effective
 * configuration (secrets redacted), load every plugin without starting it. */
int daemon_check_config(const char *path);

/* `todod --help-plugin NAME`. */
int daemon_help_plugin(const char *path, const char *name);

/* Parse the file and bind [core]; shared by the daemon and the CLI.
 * Exit-code style return: 0, or 78 with the reason printed.  With
 * `refs`, SECRET values that may name a plugin's resolver are kept there
 * for the daemon to resolve; without (the CLI, which loads no plugins),
 * they are literals. */
int daemon_load_core_conf(const char *path, struct cfg_file **cf, struct core_conf *conf,
			  struct cfg_secret_refs *refs);

#define EXIT_CONFIG 78

#endif
