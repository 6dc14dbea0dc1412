package initproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/bootstrap"
	"github.com/berth-dev/berth/internal/hooks"
	"github.com/berth-dev/berth/ns"
	"github.com/berth-dev/berth/rootfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func runHooks(kind string, list []specs.Hook, state []byte) error {
	return hooks.Run(kind, list, state)
}

// setns joins a namespace by path. Only namespaces the kernel lets a
// multi-threaded process join reach here (net, ipc, uts, cgroup); they
// apply to this locked thread, which is the one that execs.
func setns(j bootstrap.JoinNS) error {
	t, err := ns.Lookup(j.Type)
	if err != nil {
		return err
	}
	f, err := os.Open(j.Path)
	if err != nil {
		return fmt.Errorf("join %s namespace: %w", j.Type, err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), int(t.Clone)); err != nil {
		return fmt.Errorf("join %s namespace %s: %w", j.Type, j.Path, err)
	}
	return nil
}

// applySysctls writes linux.sysctl through the container's /proc (the
// runtime has checked each key is namespaced).
func applySysctls(spec *specs.Spec) error {
	if spec.Linux == nil {
		return nil
	}
	for k, v := range spec.Linux.Sysctl {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

func setHostnames(spec *specs.Spec) error {
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", spec.Hostname, err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("set domainname %q: %w", spec.Domainname, err)
		}
	}
	return nil
}

// setupConsole creates the container's pseudo-terminal in its devpts,
// hands the master to the console socket (as runc does, with the name as
// data), makes the slave the process's stdio and controlling terminal,
// and (when root is given) binds it onto /dev/console.
func setupConsole(root *rootfs.Root, socketFD int, proc *specs.Process) (*os.File, error) {
	if socketFD < 0 {
		return nil, fmt.Errorf("process.terminal is true but no --console-socket was given")
	}
	var master *os.File
	var err error
	if root != nil {
		master, err = root.OpenPtmx()
	} else {
		master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open ptmx: %w", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		return nil, fmt.Errorf("pty number: %w", err)
	}
	// TIOCGPTPEER takes the open flags of the peer as its argument: read
	// and write (a read-only peer as stdout loses everything written).
	r1, _, errno := unix.Syscall(unix.SYS_IOCTL, master.Fd(), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY))
	if errno != 0 {
		return nil, fmt.Errorf("open pty peer: %w", errno)
	}
	sfd := int(r1)
	slave := os.NewFile(uintptr(sfd), fmt.Sprintf("/dev/pts/%d", n))
	if proc.ConsoleSize != nil {
		ws := &unix.Winsize{Row: uint16(proc.ConsoleSize.Height), Col: uint16(proc.ConsoleSize.Width)}
		if err := unix.IoctlSetWinsize(sfd, unix.TIOCSWINSZ, ws); err != nil {
			return nil, fmt.Errorf("set console size: %w", err)
		}
	}
	if err := unix.Fchown(sfd, int(proc.User.UID), -1); err != nil {
		return nil, fmt.Errorf("chown pty: %w", err)
	}
	if root != nil {
		if err := root.BindConsole(slave); err != nil {
			return nil, err
		}
	}
	rights := unix.UnixRights(int(master.Fd()))
	if err := unix.Sendmsg(socketFD, []byte(slave.Name()), rights, nil, 0); err != nil {
		return nil, fmt.Errorf("send pty master to console socket: %w", err)
	}
	unix.Close(socketFD)
	if _, err := unix.Setsid(); err != nil {
		return nil, fmt.Errorf("setsid: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(sfd, fd, 0); err != nil {
			return nil, fmt.Errorf("pty as stdio: %w", err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return nil, fmt.Errorf("make pty the controlling terminal: %w", err)
	}
	return slave, nil
}
