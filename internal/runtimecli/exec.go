package runtimecli

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func init() {
	register(&verb{"exec", "run a process inside a running container", execVerb})
}

func execVerb(g *globals, args []string) error {
	fs := flags("exec")
	processFile := fs.String("process", "", "JSON file describing the process (process.json)")
	fs.StringVar(processFile, "p", "", "JSON file describing the process")
	tty := fs.Bool("tty", false, "allocate a pseudo-TTY")
	fs.BoolVar(tty, "t", false, "allocate a pseudo-TTY")
	detach := fs.Bool("detach", false, "do not wait for the process")
	fs.BoolVar(detach, "d", false, "do not wait for the process")
	pidFile := fs.String("pid-file", "", "file to write the process's PID to")
	consoleSocket := fs.String("console-socket", "", "unix socket that receives the pty master")
	cwd := fs.String("cwd", "", "working directory in the container")
	user := fs.String("user", "", "UID[:GID]")
	fs.StringVar(user, "u", "", "UID[:GID]")
	noNewPrivs := fs.Bool("no-new-privs", false, "set no_new_privs for the process")
	preserveFDs := fs.Int("preserve-fds", 0, "pass N extra fds (from 3)")
	ignorePaused := fs.Bool("ignore-paused", false, "exec even if the container is paused")
	var env, capsAdd, gids multi
	fs.Var(&env, "env", "KEY=value (repeatable)")
	fs.Var(&env, "e", "KEY=value (repeatable)")
	fs.Var(&capsAdd, "cap", "add a capability (repeatable)")
	fs.Var(&capsAdd, "c", "add a capability (repeatable)")
	fs.Var(&gids, "additional-gids", "additional group ID (repeatable)")
	fs.Var(&gids, "g", "additional group ID (repeatable)")
	var ignored string
	fs.StringVar(&ignored, "process-label", "", "SELinux label (unsupported)")
	fs.StringVar(&ignored, "apparmor", "", "AppArmor profile (unsupported)")
	fs.StringVar(&ignored, "cgroup", "", "sub-cgroup (unsupported)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) == 0 {
		return fmt.Errorf("exec: a container id is required")
	}
	id, cmdArgs := pos[0], pos[1:]
	r := g.runtime()
	st, err := r.StateOf(id)
	if err != nil {
		return err
	}
	var proc *specs.Process
	if *processFile != "" {
		b, err := os.ReadFile(*processFile)
		if err != nil {
			return err
		}
		proc = &specs.Process{}
		if err := json.Unmarshal(b, proc); err != nil {
			return fmt.Errorf("decode %s: %w", *processFile, err)
		}
	} else {
		if len(cmdArgs) == 0 {
			return fmt.Errorf("exec: no command given (args or --process)")
		}
		base := *st.Config.Process
		proc = &base
		proc.Args = cmdArgs
		proc.Terminal = *tty
		proc.ConsoleSize = nil
		if *cwd != "" {
			proc.Cwd = *cwd
		}
		proc.Env = append(append([]string(nil), base.Env...), env...)
		if *user != "" {
			uid, gid, err := parseUser(*user)
			if err != nil {
				return err
			}
			proc.User = specs.User{UID: uid, GID: gid}
		}
		for _, g := range gids {
			v, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return fmt.Errorf("--additional-gids %q: %w", g, err)
			}
			proc.User.AdditionalGids = append(proc.User.AdditionalGids, uint32(v))
		}
		if len(capsAdd) > 0 {
			c := &specs.LinuxCapabilities{}
			if base.Capabilities != nil {
				cp := *base.Capabilities
				c = &cp
			}
			for _, name := range capsAdd {
				n, err := caps.Number(name)
				if err != nil {
					return err
				}
				cn := caps.Name(n)
				c.Bounding = append(c.Bounding, cn)
				c.Effective = append(c.Effective, cn)
				c.Permitted = append(c.Permitted, cn)
			}
			proc.Capabilities = c
		}
		if *noNewPrivs {
			proc.NoNewPrivileges = true
		}
	}
	opts := runtime.ExecOptions{Process: proc, PidFile: *pidFile, ConsoleSocket: *consoleSocket,
		PreserveFDs: *preserveFDs, IgnorePaused: *ignorePaused}
	var proxy *ttyProxy
	if proc.Terminal && opts.ConsoleSocket == "" {
		if *detach {
			return fmt.Errorf("exec: --detach with a terminal needs --console-socket")
		}
		if proxy, err = newTTYProxy(); err != nil {
			return err
		}
		defer proxy.Close()
		opts.ConsoleSocket = proxy.socketPath
	}
	sigs := make(chan os.Signal, 32)
	if !*detach {
		notifyForward(sigs)
	}
	p, err := r.Exec(id, opts)
	if err != nil {
		return err
	}
	if proxy != nil {
		if err := proxy.Attach(); err != nil {
			unix.Kill(p.Pid, unix.SIGKILL)
			p.Wait()
			return err
		}
	}
	if *detach {
		return nil
	}
	code := forwardUntilExit(p.Pid, func() int { code, _ := p.Wait(); return code }, sigs, proxy)
	if code != 0 {
		return &exitError{code}
	}
	return nil
}

func parseUser(s string) (uint32, uint32, error) {
	u, g, _ := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("--user %q: want UID[:GID] (numbers)", s)
	}
	gid := uint64(0)
	if g != "" {
		if gid, err = strconv.ParseUint(g, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("--user %q: want UID[:GID] (numbers)", s)
		}
	}
	return uint32(uid), uint32(gid), nil
}
