package runtimecli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var specVersion = specs.Version

type createFlags struct {
	bundle, pidFile, consoleSocket string
	noPivot, noNewKeyring          bool
	preserveFDs                    int
}

func (c *createFlags) add(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
	IntVar(*int, string, int, string)
}) {
	fs.StringVar(&c.bundle, "bundle", ".", "path to the bundle directory")
	fs.StringVar(&c.bundle, "b", ".", "path to the bundle directory")
	fs.StringVar(&c.pidFile, "pid-file", "", "file to write the init process's PID to")
	fs.StringVar(&c.consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fs.BoolVar(&c.noPivot, "no-pivot", false, "do not use pivot_root (for ramfs roots)")
	fs.BoolVar(&c.noNewKeyring, "no-new-keyring", false, "do not create a new session keyring")
	fs.IntVar(&c.preserveFDs, "preserve-fds", 0, "pass N extra fds (from 3) to the container")
}

func (c *createFlags) options() runtime.CreateOptions {
	return runtime.CreateOptions{
		Bundle: c.bundle, PidFile: c.pidFile, ConsoleSocket: c.consoleSocket,
		NoPivot: c.noPivot, NoNewKeyring: c.noNewKeyring, PreserveFDs: c.preserveFDs,
	}
}

func init() {
	register(&verb{"create", "create a container from a bundle", func(g *globals, args []string) error {
		var cf createFlags
		fs := flags("create")
		cf.add(fs)
		pos, err := parse(fs, args)
		if err != nil {
			return err
		}
		id, err := needID("create", pos, 0)
		if err != nil {
			return err
		}
		runtime.Warm()
		_, err = g.runtime().Create(id, cf.options())
		return err
	}})
	register(&verb{"start", "start a created container's process", func(g *globals, args []string) error {
		pos, err := parse(flags("start"), args)
		if err != nil {
			return err
		}
		id, err := needID("start", pos, 0)
		if err != nil {
			return err
		}
		return g.runtime().Start(id)
	}})
	register(&verb{"run", "create and start a container, and wait for it", runVerb})
	register(&verb{"state", "print a container's OCI state as JSON", func(g *globals, args []string) error {
		pos, err := parse(flags("state"), args)
		if err != nil {
			return err
		}
		id, err := needID("state", pos, 0)
		if err != nil {
			return err
		}
		st, err := g.runtime().StateOf(id)
		if err != nil {
			return err
		}
		return printJSON(cliState(st))
	}})
	register(&verb{"kill", "send a signal to a container", func(g *globals, args []string) error {
		fs := flags("kill")
		all := fs.Bool("all", false, "signal every process in the container")
		fs.BoolVar(all, "a", false, "signal every process in the container")
		pos, err := parse(fs, args)
		if err != nil {
			return err
		}
		id, err := needID("kill", pos, 1)
		if err != nil {
			return err
		}
		sigName := "SIGTERM"
		if len(pos) > 1 {
			sigName = pos[1]
		}
		sig, err := runtime.ParseSignal(sigName)
		if err != nil {
			return err
		}
		return g.runtime().Kill(id, sig, *all)
	}})
	register(&verb{"delete", "delete a container", func(g *globals, args []string) error {
		fs := flags("delete")
		force := fs.Bool("force", false, "kill a running container first")
		fs.BoolVar(force, "f", false, "kill a running container first")
		pos, err := parse(fs, args)
		if err != nil {
			return err
		}
		id, err := needID("delete", pos, 0)
		if err != nil {
			return err
		}
		err = g.runtime().Delete(id, *force)
		if *force && errors.Is(err, runtime.ErrNotExist) {
			return nil // runc: delete --force of a missing container succeeds
		}
		return err
	}})
	register(&verb{"list", "list containers", func(g *globals, args []string) error {
		fs := flags("list")
		format := fs.String("format", "table", "table or json")
		fs.StringVar(format, "f", "table", "table or json")
		quiet := fs.Bool("quiet", false, "print only IDs")
		fs.BoolVar(quiet, "q", false, "print only IDs")
		if _, err := parse(fs, args); err != nil {
			return err
		}
		list, err := g.runtime().List()
		if err != nil {
			return err
		}
		if *quiet {
			for _, st := range list {
				fmt.Println(st.ID)
			}
			return nil
		}
		if *format == "json" {
			out := make([]stateOut, 0, len(list))
			for _, st := range list {
				out = append(out, cliState(st))
			}
			return json.NewEncoder(os.Stdout).Encode(out)
		}
		if *format != "table" {
			return fmt.Errorf("invalid format %q (table or json)", *format)
		}
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, st := range list {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", st.ID, st.Pid, st.Status, st.Bundle, st.Created.Format(time.RFC3339Nano), owner(st))
		}
		return w.Flush()
	}})
}

// stateOut is runc's state document.
type stateOut struct {
	Version     string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func cliState(st *runtime.State) stateOut {
	return stateOut{
		Version: st.Version, ID: st.ID, Pid: st.Pid, Status: string(st.Status), Bundle: st.Bundle,
		Rootfs: st.Rootfs, Created: st.Created, Owner: owner(st), Annotations: st.Annotations,
	}
}

func owner(st *runtime.State) string {
	if st.Owner != "" {
		return st.Owner
	}
	return "root"
}

func runVerb(g *globals, args []string) error {
	var cf createFlags
	fs := flags("run")
	cf.add(fs)
	detach := fs.Bool("detach", false, "do not wait for the container")
	fs.BoolVar(detach, "d", false, "do not wait for the container")
	keep := fs.Bool("keep", false, "do not delete the container after it exits")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := needID("run", pos, 0)
	if err != nil {
		return err
	}
	runtime.Warm()
	r := g.runtime()
	opts := cf.options()
	var tty *ttyProxy
	// Read config.json once: Create takes the parsed spec.
	spec, err := runtime.LoadSpec(absDir(opts.Bundle))
	if err != nil {
		return err
	}
	opts.Spec = spec
	if !*detach && opts.ConsoleSocket == "" {
		if spec.Process != nil && spec.Process.Terminal {
			if tty, err = newTTYProxy(); err != nil {
				return err
			}
			defer tty.Close()
			opts.ConsoleSocket = tty.socketPath
		}
	}
	// Forward signals from the moment the container exists.
	sigs := make(chan os.Signal, 32)
	notifyForward(sigs)
	c, err := r.Create(id, opts)
	if err != nil {
		return err
	}
	cleanup := func() {
		if !*keep {
			r.DeleteCreated(c)
		}
	}
	if tty != nil {
		if err := tty.Attach(); err != nil {
			cleanup()
			return err
		}
	}
	if err := r.StartCreated(c); err != nil {
		cleanup()
		return err
	}
	if *detach {
		return nil
	}
	code := forwardUntilExit(c.Pid(), func() int { code, _ := c.Wait(); return code }, sigs, tty)
	cleanup()
	if code != 0 {
		return &exitError{code}
	}
	return nil
}

// forwardUntilExit relays the signals this process gets to pid (window
// changes to the terminal) until wait returns the process's status.
func forwardUntilExit(pid int, wait func() int, sigs <-chan os.Signal, tty *ttyProxy) int {
	done := make(chan int, 1)
	go func() { done <- wait() }()
	for {
		select {
		case code := <-done:
			if tty != nil {
				tty.Close()
			}
			return code
		case s := <-sigs:
			sig := s.(syscall.Signal)
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				continue
			case unix.SIGWINCH:
				if tty != nil {
					tty.Resize()
				}
				continue
			}
			unix.Kill(pid, sig)
		}
	}
}

func absDir(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func init() {
	register(&verb{"spec", "write a default config.json", func(g *globals, args []string) error {
		fs := flags("spec")
		bundle := fs.String("bundle", ".", "directory to write config.json into")
		fs.StringVar(bundle, "b", ".", "directory to write config.json into")
		rootless := fs.Bool("rootless", false, "a spec for a rootless container")
		if _, err := parse(fs, args); err != nil {
			return err
		}
		path := filepath.Join(*bundle, "config.json")
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("file %s exists; remove it first", path)
		}
		spec := runtime.DefaultSpec(*rootless, uint32(os.Getuid()), uint32(os.Getgid()))
		b, err := json.MarshalIndent(spec, "", "\t")
		if err != nil {
			return err
		}
		return os.WriteFile(path, append(b, '\n'), 0o644)
	}})
}
