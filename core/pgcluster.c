/* pgcluster.c - see pgcluster.h.
 *
 * PostgreSQL refuses to run as root, so when todod is root the cluster is
 * owned by, and run as, an unprivileged account ("todod" if it exists,
 * else "postgres", else "nobody").  Its socket directory is private to
 * that account (root gets in regardless), which is why trust
 * authentication on that socket is safe: no TCP listener is opened. */
#include "pgcluster.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

struct pgcluster {
	char *bindir;
	char *datadir;
	uid_t uid;
	gid_t gid;
	bool started_here;
};

/* Run `argv` (argv[0] relative to bindir) as the cluster's owner and wait.
 * Output goes to our stderr so a failing initdb explains itself. */
static int run_as_owner(const struct pgcluster *pc, char *const argv[], bool quiet,
			struct todod_err *err)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", pc->bindir, argv[0]);
	pid_t pid = fork();
	if (pid < 0)
		return todod_err_set(err, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (geteuid() == 0) {
			struct passwd *pw = getpwuid(pc->uid);
			if ((pw && initgroups(pw->pw_name, pc->gid) != 0) || setgid(pc->gid) != 0 ||
			    setuid(pc->uid) != 0)
				_exit(126);
		}
		/* stdout would mix initdb's chatter into the token we print. */
		int out = quiet ? open("/dev/null", O_WRONLY) : STDERR_FILENO;
		dup2(out, STDOUT_FILENO);
		dup2(out, STDERR_FILENO);
		execv(path, argv);
		fprintf(stderr, "todod: cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return todod_err_set(err, "waitpid: %s", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	return todod_err_set(err, "%s failed (exit status %d)", path,
			     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static int pick_owner(struct pgcluster *pc, struct todod_err *err)
{
	if (geteuid() != 0) {
		pc->uid = geteuid();
		pc->gid = getegid();
		return 0;
	}
	static const char *const candidates[] = { "todod", "postgres", "nobody" };
	for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
		struct passwd *pw = getpwnam(candidates[i]);
		if (pw) {
			pc->uid = pw->pw_uid;
			pc->gid = pw->pw_gid;
			return 0;
		}
	}
	return todod_err_set(err, "running as root and no unprivileged account (todod, postgres, "
				  "nobody) to run PostgreSQL as");
}

static int make_dir(const char *path, const struct pgcluster *pc, struct todod_err *err)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return todod_err_set(err, "cannot create %s: %s (set [core] state_dir or database)",
				     path, strerror(errno));
	if (geteuid() == 0 && chown(path, pc->uid, pc->gid) != 0)
		return todod_err_set(err, "cannot hand %s to uid %d: %s", path, (int)pc->uid,
				     strerror(errno));
	return 0;
}

/* mkdir -p for the parents of state_dir, which stay root's. */
static int make_parents(const char *dir, struct todod_err *err)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", dir);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return todod_err_set(err, "cannot create %s: %s", buf, strerror(errno));
		*p = '/';
	}
	return 0;
}

struct pgcluster *pgcluster_start(const char *state_dir, const char *bindir, bool adopt,
				  char **conninfo, bool *created, struct todod_err *err)
{
	struct pgcluster *pc = todod_xcalloc(1, sizeof *pc);
	char datadir[4096], sockdir[4096], logfile[4096], version[4200], opts[4200];
	*created = false;
	snprintf(datadir, sizeof datadir, "%s/pgdata", state_dir);
	snprintf(sockdir, sizeof sockdir, "%s/run", state_dir);
	snprintf(logfile, sizeof logfile, "%s/postgresql.log", state_dir);
	snprintf(version, sizeof version, "%s/PG_VERSION", datadir);
	pc->bindir = todod_xstrdup(bindir);
	pc->datadir = todod_xstrdup(datadir);
	if (pick_owner(pc, err) != 0 ||
	    make_parents(state_dir, err) != 0 || make_dir(state_dir, pc, err) != 0 ||
	    make_dir(sockdir, pc, err) != 0)
		goto fail;

	if (access(version, F_OK) != 0) {
		log_info("creating a private PostgreSQL cluster in %s", datadir);
		char *initdb[] = { "initdb", "-D", datadir, "-U", "todod", "-A", "trust",
				   "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions", NULL };
		if (run_as_owner(pc, initdb, false, err) != 0)
			goto fail;
		*created = true;
	}

	char *status[] = { "pg_ctl", "status", "-D", datadir, NULL };
	struct todod_err ignored;
	pc->started_here = adopt;
	if (run_as_owner(pc, status, true, &ignored) != 0) {
		snprintf(opts, sizeof opts, "-c listen_addresses='' -c unix_socket_directories='%s'",
			 sockdir);
		char *start[] = { "pg_ctl", "start", "-w", "-t", "60", "-s", "-D", datadir,
				  "-l", logfile, "-o", opts, NULL };
		if (run_as_owner(pc, start, false, err) != 0) {
			todod_err_set(err, "cannot start PostgreSQL in %s; see %s", datadir, logfile);
			goto fail;
		}
		pc->started_here = true;
	}

	char buf[4200];
	snprintf(buf, sizeof buf, "host=%s dbname=postgres user=todod", sockdir);
	*conninfo = todod_xstrdup(buf);
	return pc;
fail:
	free(pc->bindir);
	free(pc->datadir);
	free(pc);
	return NULL;
}

void pgcluster_stop(struct pgcluster *pc)
{
	if (!pc)
		return;
	if (pc->started_here) {
		char *stop[] = { "pg_ctl", "stop", "-s", "-m", "fast", "-D", pc->datadir, NULL };
		struct todod_err err;
		if (run_as_owner(pc, stop, false, &err) != 0)
			log_warn("stopping the private PostgreSQL cluster: %s", err.text);
	}
	free(pc->bindir);
	free(pc->datadir);
	free(pc);
}
