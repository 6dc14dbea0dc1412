package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-dev/berth/cgroups"
	"github.com/berth-dev/berth/internal/bootstrap"
	"github.com/berth-dev/berth/internal/hooks"
	"github.com/berth-dev/berth/internal/initbin"
	"github.com/berth-dev/berth/internal/seccompglue"
	"github.com/berth-dev/berth/ns"
	"github.com/berth-dev/berth/rootfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// CreateOptions are create's inputs besides the container ID.
type CreateOptions struct {
	Bundle        string
	Spec          *specs.Spec // optional: used instead of Bundle/config.json
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFDs   int
	// Stdio for the container's process; nil means the runtime's own.
	Stdin, Stdout, Stderr *os.File
	// Spawn, when set, starts the init instead of this process, which
	// then does everything else: the spawner (a container's monitor)
	// becomes the init's parent, reaps it and gives it its stdio (Stdin,
	// Stdout, Stderr and PreserveFDs are not used). Containers that need
	// the berth-nsenter helper (user, mount, PID or time namespaces
	// joined by path, a new time namespace, unprivileged id maps) get
	// ErrSpawnUnsupported before anything is made.
	Spawn func(*SpawnRequest) (pid int, err error)
}

// cgroupEarly: the cgroup is made before the init's clone (which goes
// into it), unless the init must be moved (see placement).
func cgroupEarly(userns bool) bool {
	layout, _ := cgroups.DetectLayout()
	return layout == cgroups.V2 || (!userns && os.Geteuid() == 0)
}

// preCgroup is a container's cgroup being made ahead of its create.
type preCgroup struct {
	cg   cgroup
	done chan error
}

// PrepareCgroup starts making container id's cgroup (spec's path and
// resources) in the background, for a Create of id that follows in this
// process: a caller with other work before the create (the daemon mounts
// the root filesystem) overlaps the two. DropCgroup undoes it when no
// create follows. Containers whose init is moved into its cgroup rather
// than cloned into it are left to Create.
func (r *Runtime) PrepareCgroup(id string, spec *specs.Spec) {
	if ValidateID(id) != nil || spec == nil || spec.Linux == nil {
		return
	}
	if _, userns := ns.Has(spec.Linux, specs.UserNamespace); !cgroupEarly(userns) {
		return
	}
	cg, err := r.newCgroup(id, spec)
	if err != nil || cg == nil {
		return
	}
	p := &preCgroup{cg: cg, done: make(chan error, 1)}
	r.preMu.Lock()
	if r.pre == nil {
		r.pre = map[string]*preCgroup{}
	}
	old := r.pre[id]
	r.pre[id] = p
	r.preMu.Unlock()
	if old != nil {
		if <-old.done == nil {
			old.cg.Destroy()
		}
	}
	go func() { p.done <- cg.Create() }()
}

// DropCgroup removes a cgroup PrepareCgroup made for no create.
func (r *Runtime) DropCgroup(id string) {
	if p := r.takeCgroup(id); p != nil {
		if <-p.done == nil {
			p.cg.Destroy()
		}
	}
}

func (r *Runtime) takeCgroup(id string) *preCgroup {
	r.preMu.Lock()
	defer r.preMu.Unlock()
	p := r.pre[id]
	delete(r.pre, id)
	return p
}

// ErrSpawnUnsupported: CreateOptions.Spawn cannot start this container.
var ErrSpawnUnsupported = errors.New("this container's init cannot be started by another process")

// SpawnSupported says whether CreateOptions.Spawn can start the init of
// a container with spec: not when the berth-nsenter helper must.
func SpawnSupported(spec *specs.Spec) bool {
	if spec == nil || spec.Linux == nil {
		return false
	}
	probe := &initSpawn{uidMaps: spec.Linux.UIDMappings, gidMaps: spec.Linux.GIDMappings}
	probe.planNamespaces(spec)
	return !probe.needsHelper()
}

// Container is a created container this process spawned: its init is
// this process's child until the process exits.
type Container struct {
	State *State
}

// Wait waits for the container's init (only in the process that
// created it) and returns its exit status as a shell reports it:
// the exit code, or 128+N when killed by signal N.
func (c *Container) Wait() (int, error) { return waitPid(c.State.Pid) }

func exitStatus(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// Pid is the container's init process ID on the host.
func (c *Container) Pid() int { return c.State.Pid }

// Create builds the container up to the point where only the user's
// process remains to be started, as `runc create` does.
func (r *Runtime) Create(id string, o CreateOptions) (c *Container, err error) {
	r.trace("")
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	spec := o.Spec
	if spec == nil {
		if spec, err = LoadSpec(bundle); err != nil {
			return nil, err
		}
	}
	if err := Validate(spec); err != nil {
		return nil, err
	}
	if o.Spawn != nil && (!SpawnSupported(spec) || o.PreserveFDs > 0) {
		return nil, ErrSpawnUnsupported
	}
	seccompProg, warnings, err := seccompglue.Compile(spec.Linux.Seccomp)
	if err != nil {
		return nil, err
	}
	r.trace("validated, seccomp compiled")
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "berth-runtime: warning: linux.seccomp: %s\n", w)
	}
	unlock, err := r.lock(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %s: %w", id, ErrExist)
		}
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	var cleanups []func()
	defer func() {
		if err != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
			os.RemoveAll(dir)
		}
	}()
	_, userns := ns.Has(spec.Linux, specs.UserNamespace)
	rootUID, rootGID := hostRoot(spec)
	fifo := filepath.Join(dir, "exec.fifo")
	if err := unix.Mkfifo(fifo, 0o622); err != nil {
		return nil, fmt.Errorf("create exec fifo: %w", err)
	}
	if err := os.Chown(fifo, rootUID, rootGID); err != nil {
		return nil, fmt.Errorf("chown exec fifo: %w", err)
	}
	// 0622 whatever the umask, as runc: in a user namespace joined by
	// path the init's host uid is not known here.
	if err := os.Chmod(fifo, 0o622); err != nil {
		return nil, fmt.Errorf("chmod exec fifo: %w", err)
	}
	cg, err := r.newCgroup(id, spec)
	if err != nil {
		return nil, err
	}
	r.trace("state directory and exec fifo made")
	cfg := &bootstrap.Config{
		ID: id, Spec: initSpec(spec, false), Rootfs: spec.Root.Path, NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring,
		PreserveFDs: o.PreserveFDs, ConsoleFD: -1, StateDirFD: -1, Seccomp: seccompProg, NewUserNS: userns,
	}
	// Where the cgroup must exist before the clone (see placement below),
	// its directories are made in the background meanwhile (or were,
	// PrepareCgroup).
	cgroupMade := false
	var early chan error
	if pre := r.takeCgroup(id); pre != nil && cg != nil {
		cg, early = pre.cg, pre.done
		cleanups = append(cleanups, func() {
			if early != nil {
				if <-early == nil {
					cg.Destroy()
				}
			}
		})
	} else if cgroupEarly(userns) && cg != nil {
		early = make(chan error, 1)
		go func() { early <- cg.Create() }()
		cleanups = append(cleanups, func() {
			if early != nil {
				if <-early == nil {
					cg.Destroy()
				}
			}
		})
	}
	createCgroup := func() error {
		var err error
		if early != nil {
			err, early = <-early, nil
		} else {
			err = cg.Create()
		}
		if err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
		cgroupMade = true
		cleanups = append(cleanups, func() { cg.Destroy() })
		cfg.CgroupMounts, err = cgroupMounts(cg, spec)
		return err
	}
	for _, n := range spec.Linux.Namespaces {
		if n.Path != "" {
			cfg.Join = append(cfg.Join, bootstrap.JoinNS{Type: n.Type, Path: n.Path})
		}
	}
	rootfsBound := false
	if _, ok := ns.Has(spec.Linux, specs.MountNamespace); !ok {
		// No mount namespace of its own, as runc allows: the container's
		// mounts go under one private bind of the rootfs, removed on delete.
		if err := rootfs.BindPrivate(spec.Root.Path); err != nil {
			return nil, err
		}
		cleanups = append(cleanups, func() { rootfs.Unbind(spec.Root.Path) })
		cfg.SharedMountNS, rootfsBound = true, true
	}

	parentSock, childSock, err := socketPair()
	if err != nil {
		return nil, err
	}
	defer parentSock.Close()
	defer childSock.Close()
	stateDir, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer stateDir.Close()

	exe, err := initbin.Path()
	if err != nil {
		return nil, err
	}
	r.trace("sync socket, init program")
	sp := &initSpawn{exe: exe, cgroupFD: -1, uidMaps: spec.Linux.UIDMappings, gidMaps: spec.Linux.GIDMappings,
		timeOffsets: spec.Linux.TimeOffsets}
	sp.files = []*os.File{orStd(o.Stdin, os.Stdin), orStd(o.Stdout, os.Stdout), orStd(o.Stderr, os.Stderr)}
	for i := 0; i < o.PreserveFDs; i++ {
		f := os.NewFile(uintptr(3+i), "preserved")
		if f == nil {
			return nil, fmt.Errorf("--preserve-fds %d: descriptor %d is not open", o.PreserveFDs, 3+i)
		}
		sp.files = append(sp.files, f)
	}
	nextFD := func(f *os.File) int {
		sp.files = append(sp.files, f)
		return len(sp.files) - 1
	}
	syncFD := nextFD(childSock)
	cfg.StateDirFD = nextFD(stateDir)
	if o.ConsoleSocket != "" {
		cf, err := dialConsole(o.ConsoleSocket)
		if err != nil {
			return nil, err
		}
		defer cf.Close()
		cfg.ConsoleFD = nextFD(cf)
	}
	for i, m := range spec.Mounts {
		if len(m.UIDMappings) == 0 {
			continue
		}
		f, err := idmapUserns(m.UIDMappings, m.GIDMappings)
		if err != nil {
			return nil, fmt.Errorf("mounts[%d] (%s): %w", i, m.Destination, err)
		}
		defer f.Close()
		if cfg.IDMapFDs == nil {
			cfg.IDMapFDs = map[int]int{}
		}
		cfg.IDMapFDs[i] = nextFD(f)
	}
	sp.env = []string{bootstrap.EnvSyncFD + "=" + strconv.Itoa(syncFD)}
	cfg.UnshareCgroupNS = sp.planNamespaces(spec)
	helper := sp.needsHelper()
	if helper {
		// The helper joins every namespace given by path; the init joins
		// none. In a joined mount namespace the init binds the rootfs
		// privately and chroots, as in a shared one.
		cfg.Join = nil
		if p, ok := ns.Has(spec.Linux, specs.MountNamespace); ok && p != "" {
			cfg.SharedMountNS, cfg.BindRootfs = true, true
		}
	}
	// The cgroup exists before the clone (clone3 puts the init in it,
	// the init joins its v1 cgroups itself: see placement), except when
	// the runtime must move the init: then it is made and entered while
	// the init starts.
	var place placement
	if cg != nil {
		layout, _ := cgroups.DetectLayout()
		if layout == cgroups.V2 || (!userns && os.Geteuid() == 0) {
			if err := createCgroup(); err != nil {
				return nil, err
			}
			var closePlace func()
			if place, closePlace, err = planPlacement(cg, userns); err != nil {
				return nil, err
			}
			defer closePlace()
		} else {
			place.cloneFD, place.enter = -1, true
		}
		sp.cgroupFD = place.cloneFD
		tasks, err := openTasks(place.tasks)
		if err != nil {
			return nil, err
		}
		for _, f := range tasks {
			defer f.Close()
			cfg.CgroupTaskFDs = append(cfg.CgroupTaskFDs, nextFD(f))
		}
	}
	var pid int
	placed := true
	r.trace("cgroup made and opened")
	conn := bootstrap.NewConn(parentSock)
	// Without hooks (which need the init's pid in the state they read)
	// and the helper, the configuration can wait in the socket before the
	// init exists: it reads it as soon as it starts instead of waiting
	// for the fork's round trip and the state. Bounded by what the socket
	// buffers without a reader.
	sentEarly := false
	if !helper && spec.Hooks == nil {
		if cg != nil && place.enter {
			if !cgroupMade {
				if cfg.CgroupMounts, err = cgroupMounts(cg, spec); err != nil {
					return nil, err
				}
			}
			cfg.CgroupPending = true
		}
		body, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		if len(body) <= 64<<10 {
			if err := conn.SendEncoded(body); err != nil {
				return nil, fmt.Errorf("send configuration to init: %w", err)
			}
			sentEarly = true
		}
	}
	switch {
	case helper:
		pid, placed, err = sp.startHelper()
	case o.Spawn != nil:
		pid, err = sp.startRemote(o.Spawn)
	default:
		pid, err = sp.startDirect()
	}
	if err != nil {
		return nil, err
	}
	childSock.Close()
	cleanups = append(cleanups, func() {
		unix.Kill(pid, unix.SIGKILL)
		reapRemote(pid)
	})
	r.trace("init started")
	// Otherwise the runtime moves the init into its cgroup while the init
	// starts and builds its root filesystem (a move waits for an RCU grace
	// period; the init needs its cgroup only later: CgroupPending).
	var entered chan error
	if cg != nil && (place.enter || !placed) {
		made := cgroupMade
		if !made {
			if !sentEarly {
				var err error
				if cfg.CgroupMounts, err = cgroupMounts(cg, spec); err != nil {
					return nil, err
				}
			}
			cleanups = append(cleanups, func() { cg.Destroy() })
		}
		entered = make(chan error, 1)
		go func() {
			if !made {
				if err := cg.Create(); err != nil {
					entered <- fmt.Errorf("create cgroup: %w", err)
					return
				}
			}
			entered <- cg.Enter(pid)
		}()
		cfg.CgroupPending = true
	}
	start, _, err := processStart(pid)
	if err != nil {
		return nil, fmt.Errorf("container init exited at once: %w", err)
	}
	st := &State{
		State: specs.State{
			Version: specs.Version, ID: id, Status: specs.StateCreating, Pid: pid, Bundle: bundle,
			Annotations: spec.Annotations,
		},
		Rootfs: spec.Root.Path, Created: time.Now().UTC(), Owner: "", InitStart: start, Config: spec,
		RootfsBound: rootfsBound,
	}
	if cg != nil {
		st.CgroupPaths = cg.Paths()
	}
	if !sentEarly {
		cfg.StateJSON = ociStateJSON(st, specs.StateCreating)
		if err := conn.Send(cfg); err != nil {
			return nil, fmt.Errorf("send configuration to init: %w", err)
		}
	}
	if entered != nil {
		if err := <-entered; err != nil {
			err = fmt.Errorf("put init in its cgroup: %w", err)
			conn.Send(bootstrap.Msg{Type: bootstrap.MsgError, Error: err.Error()})
			return nil, err
		}
		if err := conn.Send(bootstrap.Msg{Type: bootstrap.MsgCgroup}); err != nil {
			return nil, fmt.Errorf("tell init it is in its cgroup: %w", err)
		}
	}
	if err := r.converse(conn, st); err != nil {
		return nil, err
	}
	r.trace("init ready")
	if err := r.saveState(st); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writeFileAtomic(o.PidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return nil, fmt.Errorf("write pid file: %w", err)
		}
	}
	return &Container{State: st}, nil
}

// initSpec is the part of spec the init stage reads; what it decodes
// costs it at each start. The seccomp profile (hundreds of syscall
// names) travels compiled instead, the cgroup's resources and the
// annotations are the runtime's business, and an exec'd process needs
// only its process and personality.
func initSpec(spec *specs.Spec, exec bool) *specs.Spec {
	out := *spec
	out.Annotations = nil
	if spec.Linux != nil {
		l := *spec.Linux
		l.Seccomp, l.Resources = nil, nil
		out.Linux = &l
	}
	if exec {
		out = specs.Spec{Version: spec.Version, Process: spec.Process}
		if spec.Linux != nil {
			out.Linux = &specs.Linux{Personality: spec.Linux.Personality}
		}
	}
	return &out
}

// planNamespaces sets the namespaces to create and to join from the
// spec, and says whether the init must unshare its cgroup namespace
// itself: one must be rooted at the container's cgroup, which the init
// joins after the clone.
func (sp *initSpawn) planNamespaces(spec *specs.Spec) (unshareCgroup bool) {
	for _, n := range spec.Linux.Namespaces {
		if n.Path == "" {
			t, _ := ns.Lookup(n.Type)
			sp.clone |= t.Clone
		} else {
			sp.joins = append(sp.joins, n)
		}
	}
	if sp.clone&unix.CLONE_NEWCGROUP != 0 {
		sp.clone &^= unix.CLONE_NEWCGROUP
		return true
	}
	return false
}

// converse serves the init stage until it reports the container created.
func (r *Runtime) converse(conn *bootstrap.Conn, st *State) error {
	for {
		var m bootstrap.Msg
		fds, err := conn.Recv(&m)
		if err != nil {
			if bootstrap.ErrClosed(err) {
				return errors.New("container init exited during setup (see its stderr)")
			}
			return fmt.Errorf("read from container init: %w", err)
		}
		switch m.Type {
		case bootstrap.MsgHooks:
			var herr error
			if h := st.Config.Hooks; h != nil {
				// The deprecated prestart hooks see "created", as with
				// crun and runtime-tools' hooks_stdin; createRuntime
				// hooks run during create, so "creating".
				herr = hooks.Run("prestart", h.Prestart, ociStateJSON(st, specs.StateCreated))
				if herr == nil {
					herr = hooks.Run("createRuntime", h.CreateRuntime, ociStateJSON(st, specs.StateCreating))
				}
			}
			reply := bootstrap.Msg{Type: bootstrap.MsgOK}
			if herr != nil {
				reply = bootstrap.Msg{Type: bootstrap.MsgError, Error: herr.Error()}
			}
			if err := conn.Send(reply); err != nil {
				return err
			}
			if herr != nil {
				return herr
			}
		case bootstrap.MsgSeccomp:
			if len(fds) != 1 {
				return errors.New("container init sent a seccomp message without a listener fd")
			}
			err := sendToListener(st, fds[0])
			unix.Close(fds[0])
			if err != nil {
				return err
			}
		case bootstrap.MsgReady:
			closeAll(fds)
			return nil
		case bootstrap.MsgError:
			closeAll(fds)
			return &InitError{Msg: m.Error, ExitCode: m.ExitCode}
		default:
			closeAll(fds)
			return fmt.Errorf("container init sent unknown message %q", m.Type)
		}
	}
}

// InitError is a failure reported by the init stage; ExitCode is what a
// Docker user expects for it (127 not found, 126 cannot execute, else 125).
type InitError struct {
	Msg      string
	ExitCode int
}

func (e *InitError) Error() string { return e.Msg }

// dialConsole connects to a --console-socket; the init sends the pty
// master over the connection.
func dialConsole(path string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to console socket %s: %w", path, err)
	}
	defer conn.Close()
	return conn.(*net.UnixConn).File()
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func orStd(f, std *os.File) *os.File {
	if f != nil {
		return f
	}
	return std
}

func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "sync-parent"), os.NewFile(uintptr(fds[1]), "sync-child"), nil
}

// hostRoot is the host uid/gid of the container's root user.
func hostRoot(spec *specs.Spec) (int, int) {
	uid, gid := 0, 0
	for _, m := range spec.Linux.UIDMappings {
		if m.ContainerID == 0 {
			uid = int(m.HostID)
		}
	}
	for _, m := range spec.Linux.GIDMappings {
		if m.ContainerID == 0 {
			gid = int(m.HostID)
		}
	}
	return uid, gid
}

// ociStateJSON is the state document hooks read on stdin.
func ociStateJSON(st *State, status specs.ContainerState) []byte {
	s := st.State
	s.Status = status
	b, _ := json.Marshal(s)
	return b
}

func cgroupMounts(cg cgroup, spec *specs.Spec) (map[string][]bootstrap.Mount, error) {
	out := map[string][]bootstrap.Mount{}
	p, ok := ns.Has(spec.Linux, specs.CgroupNamespace)
	cgroupNS := ok && p == ""
	for _, m := range spec.Mounts {
		if m.Type != "cgroup" && m.Type != "cgroup2" {
			continue
		}
		ro := false
		for _, o := range m.Options {
			if o == "ro" {
				ro = true
			}
		}
		raws, err := cg.ContainerMounts(filepath.Clean(m.Destination), cgroupNS, ro)
		if err != nil {
			return nil, fmt.Errorf("plan cgroup mount %s: %w", m.Destination, err)
		}
		out[filepath.Clean(m.Destination)] = toRaw(raws)
	}
	return out, nil
}

// sendToListener hands a seccomp notify fd and the container state to
// linux.seccomp.listenerPath, as runc does.
func sendToListener(st *State, fd int) error {
	sc := st.Config.Linux.Seccomp
	if sc == nil || sc.ListenerPath == "" {
		return errors.New("a seccomp listener fd arrived but linux.seccomp.listenerPath is empty")
	}
	conn, err := net.Dial("unix", sc.ListenerPath)
	if err != nil {
		return fmt.Errorf("connect to seccomp listener %s: %w", sc.ListenerPath, err)
	}
	defer conn.Close()
	state := specs.ContainerProcessState{
		Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: st.Pid,
		Metadata: sc.ListenerMetadata, State: st.State,
	}
	state.State.Status = specs.StateCreating
	b, err := json.Marshal(state)
	if err != nil {
		return err
	}
	uc := conn.(*net.UnixConn)
	if _, _, err := uc.WriteMsgUnix(b, unix.UnixRights(fd), nil); err != nil {
		return fmt.Errorf("send seccomp fd to %s: %w", sc.ListenerPath, err)
	}
	return nil
}
