/*
 * berth-nsenter: the one place where berth joins existing namespaces. A
 * multi-threaded Go process cannot setns() into a user or mount namespace
 * (nor unshare a user or time namespace), so the runtime runs this small
 * single-threaded helper when a container's process must start in such
 * namespaces: `exec` into a running container, or `create` with
 * namespaces joined by path (user, mount, pid, time), a new time
 * namespace, or user-namespace maps only newuidmap/newgidmap may write.
 *
 *   berth-nsenter [-p PIDFD -f NSFLAGS] [-j NSFD:NSTYPE]... [-r] [-u CLONEFLAGS
 *                 [-s SYNCFD] [-t "MONO_S MONO_NS BOOT_S BOOT_NS"]] [-c CGROUPFD]
 *                 [-w] -e EXEFD -o REPORTFD -- ARGV0 ARGS...
 *
 * In this order it
 *   -p/-f  joins every namespace in NSFLAGS of the process PIDFD refers to,
 *          in one setns(pidfd, flags) call (Linux >= 5.8);
 *   -j     joins the namespace open at NSFD, which must be of type NSTYPE
 *          (a CLONE_NEW* flag: a path to the wrong type is an error), in
 *          the order given (the runtime puts a user namespace first, so it
 *          owns the rights to the others);
 *   -r     becomes root of the user namespace it is now in (the runtime's
 *          IDs are usually not mapped there, and an unmapped user would
 *          lose every capability at execve);
 *   -u     unshares CLONEFLAGS: a new user namespace first, alone; then,
 *          with -s, writes one byte to SYNCFD and waits for one back while
 *          the runtime writes its uid/gid maps, and becomes its root; then
 *          the other namespaces, owned by the new user namespace;
 *   -t     writes the new time namespace's clock offsets;
 * then forks, so the child is inside the PID and time namespaces (with -c,
 * clone3 puts the child straight into the cgroup2 cgroup open at
 * CGROUPFD: a move into a cgroup later would wait for an RCU grace
 * period), and the child execs the program open at EXEFD (fexecve: a path
 * would not resolve in the container's mount namespace). The parent writes
 * the child's PID to REPORTFD ("PID nocg" when the kernel refused
 * CLONE_INTO_CGROUP and it forked plainly) and exits; the runtime, a child
 * subreaper, inherits the child. With -w it stays instead: it closes every
 * descriptor above stdio, forwards the usual termination signals to the
 * child, waits for it and exits with its status (128+N when signal N
 * killed it), so a caller that must not become a subreaper (the daemon,
 * which would inherit every orphan of its children) waits for the helper
 * as an ordinary child. File descriptors 0..N pass through untouched.
 *
 * It decides nothing: which namespaces, maps and program are the
 * runtime's choice. All other setup happens in the Go init stage it execs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define MAXJOIN 16
#define BERTH_CLONE_INTO_CGROUP 0x200000000ULL

/* struct clone_args up to its cgroup field (CLONE_ARGS_SIZE_VER2), kept
 * here so the build does not depend on the kernel headers' version. */
struct berth_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

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

static void become_root(void)
{
	/* setgroups is denied in some user namespaces; then there are no
	 * groups to drop. */
	if (setgroups(0, NULL) < 0 && errno != EPERM)
		die("setgroups");
	if (setresgid(0, 0, 0) < 0)
		die("setresgid");
	if (setresuid(0, 0, 0) < 0)
		die("setresuid");
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die(path);
	size_t n = strlen(data);
	if (write(fd, data, n) != (ssize_t)n)
		die(path);
	close(fd);
}

static pid_t child_pid;

static void forward(int sig)
{
	kill(child_pid, sig);
}

/* close_fds closes every descriptor from 3 up: close_range (Linux 5.9)
 * where the kernel has it, else one by one. */
static void close_fds(void)
{
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
	long max = sysconf(_SC_OPEN_MAX);
	for (long fd = 3; fd < max && fd < 65536; fd++)
		close(fd);
}

/* wait_child waits for the child, forwarding signals, and exits as a
 * shell reports its status. */
static void wait_child(pid_t pid)
{
	static const int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward;
	sa.sa_flags = SA_RESTART;
	child_pid = pid;
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
	for (;;) {
		int status;
		pid_t r = waitpid(pid, &status, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("wait for the process");
		if (WIFEXITED(status))
			_exit(WEXITSTATUS(status));
		if (WIFSIGNALED(status))
			_exit(128 + WTERMSIG(status));
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: berth-nsenter [-p PIDFD -f NSFLAGS] [-j NSFD:NSTYPE]... [-r] [-u CLONEFLAGS [-s SYNCFD] [-t OFFSETS]] [-c CGROUPFD]\n"
			"                     [-w] -e EXEFD -o REPORTFD -- ARGV0 [ARGS...]\n"
			"(an internal helper of berth's runtime)\n");
	_exit(125);
}

int main(int argc, char **argv)
{
	int pidfd = -1, exefd = -1, reportfd = -1, syncfd = -1, cgroupfd = -1, root = 0, stay = 0;
	long nsflags = 0, unshareflags = 0;
	int joins[MAXJOIN], jointypes[MAXJOIN], njoin = 0;
	const char *offsets = NULL;
	int opt;

	while ((opt = getopt(argc, argv, "+p:f:j:ru:s:t:c:e:o:w")) != -1) {
		switch (opt) {
		case 'p': pidfd = number(optarg, "pidfd"); break;
		case 'f': nsflags = number(optarg, "namespace flags"); break;
		case 'j': {
			char *colon = strchr(optarg, ':');
			if (njoin == MAXJOIN || !colon)
				usage();
			*colon = 0;
			joins[njoin] = number(optarg, "namespace fd");
			jointypes[njoin++] = number(colon + 1, "namespace type");
			break;
		}
		case 'r': root = 1; break;
		case 'u': unshareflags = number(optarg, "unshare flags"); break;
		case 's': syncfd = number(optarg, "sync fd"); break;
		case 't': offsets = optarg; break;
		case 'c': cgroupfd = number(optarg, "cgroup fd"); break;
		case 'e': exefd = number(optarg, "exe fd"); break;
		case 'o': reportfd = number(optarg, "report fd"); break;
		case 'w': stay = 1; break;
		default: usage();
		}
	}
	if (exefd < 0 || reportfd < 0 || optind >= argc)
		usage();

	if (pidfd >= 0) {
		if (nsflags && syscall(SYS_setns, pidfd, nsflags) < 0)
			die("setns(pidfd)");
		close(pidfd);
	}
	for (int i = 0; i < njoin; i++) {
		if (setns(joins[i], jointypes[i]) < 0)
			die("setns (is the namespace path of the type given in config.json?)");
		close(joins[i]);
	}
	if (root)
		become_root();
	long unshareflags_all = unshareflags;
	if (unshareflags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			die("unshare(CLONE_NEWUSER)");
		if (syncfd >= 0) {
			char c = 'u';
			if (write(syncfd, &c, 1) != 1)
				die("ask for id maps");
			if (read(syncfd, &c, 1) != 1 || c != 'm') {
				errno = EPIPE;
				die("wait for id maps");
			}
			close(syncfd);
		}
		become_root();
		unshareflags &= ~CLONE_NEWUSER;
	}
	if (unshareflags && unshare(unshareflags) < 0)
		die("unshare");
	if (offsets && (unshareflags & CLONE_NEWTIME)) {
		long ms, mns, bs, bns;
		char buf[160];
		if (sscanf(offsets, "%ld %ld %ld %ld", &ms, &mns, &bs, &bns) != 4) {
			errno = EINVAL;
			die("time offsets");
		}
		snprintf(buf, sizeof buf, "monotonic %ld %ld\nboottime %ld %ld\n", ms, mns, bs, bns);
		write_file("/proc/self/timens_offsets", buf);
	}
	if (fcntl(reportfd, F_SETFD, FD_CLOEXEC) < 0)
		die("report fd");
	pid_t pid = -1;
	int placed = 0;
	/* After joining a user or cgroup namespace, CLONE_INTO_CGROUP is
	 * judged from inside it and refused (the namespace's root may not
	 * write a host cgroup; the runtime's cgroup lies outside a joined
	 * cgroup namespace), and on older kernels (6.1) the refused clone3
	 * has already used up PID 1 of a new PID namespace, so every later
	 * fork there fails with ENOMEM. Then fork plainly and let the runtime
	 * move the child. */
	long changed = nsflags | unshareflags_all;
	for (int i = 0; i < njoin; i++)
		changed |= jointypes[i];
	if (changed & (CLONE_NEWUSER | CLONE_NEWCGROUP))
		cgroupfd = cgroupfd >= 0 ? -2 : -1;
	if (cgroupfd >= 0) {
		struct berth_clone_args args = {0};
		args.flags = BERTH_CLONE_INTO_CGROUP;
		args.exit_signal = SIGCHLD;
		args.cgroup = (uint64_t)cgroupfd;
		pid = syscall(SYS_clone3, &args, sizeof args);
		placed = pid >= 0;
		/* Any refusal falls back to a plain fork, reported as "nocg" so
		 * the runtime moves the child itself: old kernels (ENOSYS,
		 * E2BIG, EINVAL), and, once inside a joined cgroup or user
		 * namespace, a runtime's cgroup outside that namespace (ENOENT)
		 * or a cgroup the namespace's root may not write (EACCES). */
	}
	if (pid < 0)
		pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		syscall(SYS_execveat, exefd, "", &argv[optind], environ, AT_EMPTY_PATH);
		die("execveat");
	}
	char buf[32];
	int n = snprintf(buf, sizeof buf, cgroupfd != -1 && !placed ? "%d nocg\n" : "%d\n", pid);
	if (write(reportfd, buf, n) != n)
		die("report pid");
	if (stay) {
		/* The sync socket, the program and the report pipe must not
		 * stay open here: the runtime reads their ends until they close. */
		close_fds();
		wait_child(pid);
	}
	return 0;
}
