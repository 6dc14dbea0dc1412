package runtime

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/initbin"
	"github.com/berth-dev/berth/internal/nsjoin"
	"github.com/berth-dev/berth/internal/spawnreq"
	"github.com/berth-dev/berth/ns"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// initSpawn is how the init stage of a new container is started. There
// are two paths, chosen by what the spec asks:
//
//   - direct: one clone(2) from Go (syscall.ForkExec) into every new
//     namespace, with the id maps written by Go and, on cgroup v2, clone3
//     into the cgroup. Namespaces joined by path (net, ipc, uts, cgroup)
//     are entered by the init itself on its locked thread. This is the
//     fast path, and the common one.
//   - helper: the berth-nsenter helper (single-threaded C) joins what a
//     Go process cannot join (user, mount, pid and time namespaces by
//     path), unshares the new namespaces (a new user namespace first,
//     its maps written by the runtime, through newuidmap/newgidmap when
//     unprivileged, while the helper waits), writes time namespace
//     offsets, forks and execs the init. The runtime becomes a child
//     subreaper to inherit the init.
type initSpawn struct {
	exe   string
	env   []string
	files []*os.File // the child's descriptors, from 0
	// clone is the CLONE_NEW* flags of the namespaces to create
	// (CLONE_NEWCGROUP excluded: the init unshares it once in its cgroup).
	clone            uintptr
	uidMaps, gidMaps []specs.LinuxIDMapping
	cgroupFD         int // -1: no clone into a cgroup
	joins            []specs.LinuxNamespace
	timeOffsets      map[string]specs.LinuxTimeOffset
}

// helperJoins are the namespace types only the helper can join.
var helperJoins = map[specs.LinuxNamespaceType]bool{
	specs.UserNamespace: true, specs.MountNamespace: true, specs.PIDNamespace: true, specs.TimeNamespace: true,
}

// needsHelper says whether the direct path cannot start this init.
func (s *initSpawn) needsHelper() bool {
	for _, j := range s.joins {
		if helperJoins[j.Type] {
			return true
		}
	}
	if s.clone&unix.CLONE_NEWTIME != 0 {
		// clone(2) has no room for CLONE_NEWTIME; unshare(2) does.
		return true
	}
	return s.clone&unix.CLONE_NEWUSER != 0 && os.Geteuid() != 0 && !selfMapOnly(s.uidMaps, s.gidMaps)
}

// selfMapOnly: the maps are one line mapping the caller's own uid and gid,
// which an unprivileged process may write itself; anything else needs
// newuidmap/newgidmap.
func selfMapOnly(uids, gids []specs.LinuxIDMapping) bool {
	return len(uids) == 1 && len(gids) == 1 && uids[0].Size == 1 && gids[0].Size == 1 &&
		int(uids[0].HostID) == os.Geteuid() && int(gids[0].HostID) == os.Getegid()
}

func fdList(files []*os.File) []uintptr {
	out := make([]uintptr, len(files))
	for i, f := range files {
		out[i] = f.Fd()
	}
	return out
}

// request describes the direct path's clone for package spawnreq.
func (s *initSpawn) request() *spawnreq.Request {
	conv := func(m []specs.LinuxIDMapping) []spawnreq.IDMap {
		out := make([]spawnreq.IDMap, len(m))
		for i, x := range m {
			out[i] = spawnreq.IDMap{ContainerID: int(x.ContainerID), HostID: int(x.HostID), Size: int(x.Size)}
		}
		return out
	}
	return &spawnreq.Request{Path: s.exe, Args: initbin.Args, Env: s.env, Cloneflags: s.clone,
		UIDMaps: conv(s.uidMaps), GIDMaps: conv(s.gidMaps), Setgroups: os.Geteuid() == 0, IntoCgroup: s.cgroupFD >= 0}
}

// startDirect clones the init straight into its new namespaces.
func (s *initSpawn) startDirect() (int, error) {
	fds := fdList(s.files)
	return s.request().Start([3]uintptr{fds[0], fds[1], fds[2]}, fds[3:], s.cgroupFD)
}

// startRemote has spawn (another process, which becomes the init's
// parent) clone the init, with the descriptors from 3 up and the cgroup;
// the init's stdio is the spawner's.
func (s *initSpawn) startRemote(spawn func(*SpawnRequest) (int, error)) (int, error) {
	req := &SpawnRequest{Request: *s.request(), Files: s.files[3:]}
	if s.cgroupFD >= 0 {
		fd, err := unix.FcntlInt(uintptr(s.cgroupFD), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return 0, err
		}
		req.Cgroup = os.NewFile(uintptr(fd), "cgroup")
		defer req.Cgroup.Close()
	}
	pid, err := spawn(req)
	if err != nil {
		return 0, fmt.Errorf("start container init: %w", err)
	}
	return pid, nil
}

// SpawnRequest is a container init for CreateOptions.Spawn to start:
// Request says how, Files are its descriptors from 3 up, Cgroup the
// cgroup2 directory to clone it into (when Request.IntoCgroup). The
// spawner gives it its stdio and becomes its parent.
type SpawnRequest struct {
	spawnreq.Request
	Files  []*os.File
	Cgroup *os.File
}

// reapRemote waits until pid, a child of another process, has exited
// (its parent reaps it): a pidfd becomes readable then.
func reapRemote(pid int) {
	if _, err := waitPid(pid); err == nil {
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone already
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if n, err := unix.Poll(fds, 1000); n > 0 || (err != nil && err != unix.EINTR) {
			return
		}
	}
}

// startHelper runs berth-nsenter, which starts the init (see initSpawn).
// placed is false when the init should have been cloned into s.cgroupFD
// but the kernel refused.
func (s *initSpawn) startHelper() (int, bool, error) {
	helper, err := nsjoin.Helper()
	if err != nil {
		return 0, false, err
	}
	files := append([]*os.File(nil), s.files...)
	var closers []*os.File
	defer func() {
		for _, f := range closers {
			f.Close()
		}
	}()
	pass := func(f *os.File) string {
		files = append(files, f)
		closers = append(closers, f)
		return strconv.Itoa(len(files) - 1)
	}
	args := []string{"berth-nsenter"}
	joinedUser := false
	for _, t := range ns.Types { // the user namespace first
		for _, j := range s.joins {
			if j.Type != t.Spec {
				continue
			}
			f, err := os.OpenFile(j.Path, os.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return 0, false, fmt.Errorf("join %s namespace: %w", j.Type, err)
			}
			args = append(args, "-j", pass(f)+":"+strconv.FormatUint(uint64(t.Clone), 10))
			joinedUser = joinedUser || t.Spec == specs.UserNamespace
		}
	}
	if joinedUser {
		args = append(args, "-r")
	}
	var parentSync *os.File
	if s.clone != 0 {
		args = append(args, "-u", strconv.FormatUint(uint64(s.clone), 10))
		if s.clone&unix.CLONE_NEWUSER != 0 {
			p, c, err := socketPair()
			if err != nil {
				return 0, false, err
			}
			parentSync = p
			defer parentSync.Close()
			args = append(args, "-s", pass(c))
		}
		if s.clone&unix.CLONE_NEWTIME != 0 && len(s.timeOffsets) > 0 {
			m, b := s.timeOffsets["monotonic"], s.timeOffsets["boottime"]
			args = append(args, "-t", fmt.Sprintf("%d %d %d %d", m.Secs, m.Nanosecs, b.Secs, b.Nanosecs))
		}
	}
	if s.cgroupFD >= 0 {
		fd, err := unix.FcntlInt(uintptr(s.cgroupFD), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return 0, false, err
		}
		args = append(args, "-c", pass(os.NewFile(uintptr(fd), "cgroup")))
	}
	exe, err := os.Open(s.exe)
	if err != nil {
		return 0, false, err
	}
	args = append(args, "-e", pass(exe))
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return 0, false, err
	}
	defer reportR.Close()
	args = append(args, "-o", pass(reportW))
	args = append(append(args, "--"), initbin.Args...)
	// The init is the helper's child; when the helper exits it becomes
	// ours, so we can wait for it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 0, false, fmt.Errorf("become child subreaper: %w", err)
	}
	hpid, err := syscall.ForkExec(helper, args, &syscall.ProcAttr{Env: s.env, Files: fdList(files)})
	if err != nil {
		return 0, false, fmt.Errorf("start berth-nsenter: %w", err)
	}
	for _, f := range closers {
		f.Close()
	}
	closers = nil
	if parentSync != nil {
		if err := s.mapIDs(parentSync, hpid); err != nil {
			unix.Kill(hpid, unix.SIGKILL)
			waitPid(hpid)
			return 0, false, err
		}
	}
	line, rerr := bufio.NewReader(reportR).ReadString('\n')
	if code, err := waitPid(hpid); err != nil || code != 0 {
		return 0, false, fmt.Errorf("berth-nsenter failed (exit status %d; its error is above)", code)
	}
	fields := strings.Fields(line)
	if rerr != nil || len(fields) == 0 {
		return 0, false, fmt.Errorf("berth-nsenter reported no init pid (%q)", line)
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0, false, fmt.Errorf("berth-nsenter reported no init pid (%q)", line)
	}
	// "PID nocg": the kernel refused CLONE_INTO_CGROUP (Linux < 5.7).
	return pid, len(fields) == 1, nil
}

// mapIDs waits for the helper to ask, writes its new user namespace's id
// maps, and lets it go on.
func (s *initSpawn) mapIDs(sync *os.File, pid int) error {
	b := make([]byte, 1)
	if n, err := sync.Read(b); n != 1 || b[0] != 'u' {
		return fmt.Errorf("berth-nsenter did not ask for id maps: %v", err)
	}
	if err := writeIDMaps(pid, s.uidMaps, s.gidMaps); err != nil {
		return err
	}
	if _, err := sync.Write([]byte{'m'}); err != nil {
		return fmt.Errorf("release berth-nsenter after id maps: %w", err)
	}
	return nil
}

// writeIDMaps writes a process's uid and gid maps: directly as root,
// else through the setuid newuidmap/newgidmap (uidmap package), which
// check the ranges against /etc/subuid and /etc/subgid.
func writeIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	format := func(m []specs.LinuxIDMapping) (string, []string) {
		var b strings.Builder
		var args []string
		for _, x := range m {
			fmt.Fprintf(&b, "%d %d %d\n", x.ContainerID, x.HostID, x.Size)
			args = append(args, strconv.FormatUint(uint64(x.ContainerID), 10),
				strconv.FormatUint(uint64(x.HostID), 10), strconv.FormatUint(uint64(x.Size), 10))
		}
		return b.String(), args
	}
	proc := "/proc/" + strconv.Itoa(pid)
	uidText, uidArgs := format(uids)
	gidText, gidArgs := format(gids)
	if os.Geteuid() == 0 {
		if err := os.WriteFile(proc+"/uid_map", []byte(uidText), 0); err != nil {
			return fmt.Errorf("write uid_map: %w", err)
		}
		if err := os.WriteFile(proc+"/gid_map", []byte(gidText), 0); err != nil {
			return fmt.Errorf("write gid_map: %w", err)
		}
		return nil
	}
	for _, tool := range []struct {
		name string
		args []string
	}{{"newuidmap", uidArgs}, {"newgidmap", gidArgs}} {
		out, err := exec.Command(tool.name, append([]string{strconv.Itoa(pid)}, tool.args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %d %s: %w: %s (is the range in /etc/sub%cid?)", tool.name, pid,
				strings.Join(tool.args, " "), err, strings.TrimSpace(string(out)), tool.name[3])
		}
	}
	return nil
}

// waitPid waits for a child (or an inherited orphan) and returns its
// exit status as a shell reports it.
func waitPid(pid int) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		return exitStatus(syscall.WaitStatus(ws)), nil
	}
}

// idmapUserns makes a user namespace with the given maps, for an
// id-mapped mount, and returns a descriptor of it. berth-nsenter creates
// the namespace and waits for its maps; the namespace is kept through
// the descriptor and the helper is killed.
func idmapUserns(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	helper, err := nsjoin.Helper()
	if err != nil {
		return nil, err
	}
	parent, child, err := socketPair()
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	defer child.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devNull.Close()
	// fds: 0-2 /dev/null, 3 sync, 4 exe (unused), 5 report (unused).
	args := []string{"berth-nsenter", "-u", strconv.Itoa(unix.CLONE_NEWUSER), "-s", "3", "-e", "4", "-o", "5", "--", "true"}
	files := []uintptr{devNull.Fd(), devNull.Fd(), os.Stderr.Fd(), child.Fd(), devNull.Fd(), devNull.Fd()}
	pid, err := syscall.ForkExec(helper, args, &syscall.ProcAttr{Files: files})
	if err != nil {
		return nil, fmt.Errorf("start berth-nsenter for an id-mapped mount: %w", err)
	}
	defer func() {
		unix.Kill(pid, unix.SIGKILL)
		waitPid(pid)
	}()
	child.Close()
	b := make([]byte, 1)
	if n, err := parent.Read(b); n != 1 || b[0] != 'u' {
		return nil, fmt.Errorf("id-mapped mount: berth-nsenter made no user namespace: %v", err)
	}
	if err := writeIDMaps(pid, uids, gids); err != nil {
		return nil, fmt.Errorf("id-mapped mount: %w", err)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return nil, fmt.Errorf("id-mapped mount: %w", err)
	}
	return f, nil
}
