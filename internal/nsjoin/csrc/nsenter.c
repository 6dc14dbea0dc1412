/*
 * berth-nsenter: the one place where berth joins an existing container's
 * namespaces. A multi-threaded Go process cannot setns() into a user or
 * mount namespace, so the runtime runs this small single-threaded helper:
 *
 *   berth-nsenter PIDFD NSFLAGS EXEFD REPORTFD BECOMEROOT ARGV0 ARGS...
 *
 * It joins every namespace in NSFLAGS of the process PIDFD refers to, in
 * one setns(pidfd, flags) call (Linux >= 5.8), becomes root of the joined
 * user namespace when BECOMEROOT is 1 (the runtime's IDs are usually not
 * mapped there, and an unmapped user would lose every capability at
 * execve), forks so the child is inside the PID and time namespaces, and
 * the child execs the berth binary open at EXEFD (fexecve: the path would
 * not resolve in the container's mount namespace). The parent writes the
 * child's PID to REPORTFD and exits; the runtime, a child subreaper,
 * inherits the child.
 *
 * It decides nothing: which namespaces and which binary are the runtime's
 * choice. All other setup happens in the Go init stage it execs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

extern char **environ;

static void die(const char *what)
{
	fprintf(stderr, "berth-nsenter: %s: %s\n", what, strerror(errno));
	_exit(125);
}

static long number(const char *s, const char *what)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s) {
		fprintf(stderr, "berth-nsenter: bad %s %s\n", what, s);
		_exit(125);
	}
	return v;
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: berth-nsenter PIDFD NSFLAGS EXEFD REPORTFD BECOMEROOT ARGV0 [ARGS...]\n"
				"(an internal helper of berth's runtime)\n");
		return 125;
	}
	int pidfd = number(argv[1], "pidfd");
	int flags = number(argv[2], "namespace flags");
	int exefd = number(argv[3], "exe fd");
	int reportfd = number(argv[4], "report fd");
	int become_root = number(argv[5], "become-root flag");

	if (flags && syscall(SYS_setns, pidfd, flags) < 0)
		die("setns");
	close(pidfd);
	if (become_root) {
		/* setgroups is denied in some user namespaces; then there are
		 * no groups to drop. */
		if (setgroups(0, NULL) < 0 && errno != EPERM)
			die("setgroups");
		if (setresgid(0, 0, 0) < 0)
			die("setresgid");
		if (setresuid(0, 0, 0) < 0)
			die("setresuid");
	}
	if (fcntl(reportfd, F_SETFD, FD_CLOEXEC) < 0)
		die("report fd");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		syscall(SYS_execveat, exefd, "", &argv[6], environ, AT_EMPTY_PATH);
		die("execveat");
	}
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%d\n", pid);
	if (write(reportfd, buf, n) != n)
		die("report pid");
	return 0;
}
