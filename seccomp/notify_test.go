package seccomp

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/seccomp/bpf"
)

// struct seccomp_notif and struct seccomp_notif_resp (<linux/seccomp.h>).
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// SCMP_ACT_NOTIFY end to end: the child loads a filter that sends
// getppid to a listener, hands the listener fd to listenerPath with
// SendToListener (the container state as runc sends it), and execs a shell
// whose $PPID is whatever the agent (this test) answers.
func TestNotifyListener(t *testing.T) {
	requireBusybox(t)
	if ActionAvailable(bpf.RetUserNotif) != nil {
		t.Skip("kernel without SECCOMP_RET_USER_NOTIF")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	prog, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "berth-test",
		Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !prog.Notify || prog.Flags&FlagNewListener == 0 {
		t.Fatalf("program %+v does not ask for a listener", prog)
	}

	type agentResult struct {
		state specs.ContainerProcessState
		nr    int32
		err   error
	}
	done := make(chan agentResult, 1)
	go func() {
		var res agentResult
		defer func() { done <- res }()
		l.SetDeadline(time.Now().Add(20 * time.Second))
		conn, err := l.AcceptUnix()
		if err != nil {
			res.err = err
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			res.err = err
			return
		}
		if err := json.Unmarshal(buf[:n], &res.state); err != nil {
			res.err = err
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			res.err = err
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			res.err = err
			return
		}
		fd := fds[0]
		defer unix.Close(fd)
		var notif seccompNotif
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&notif))); errno != 0 {
			res.err = errno
			return
		}
		res.nr = notif.Nr
		resp := seccompNotifResp{ID: notif.ID, Val: 4242}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); errno != 0 {
			res.err = errno
		}
	}()
	out, ws := runChild(t, prog, sock, "/bin/busybox", "sh", "-c", "echo ppid=$PPID")
	res := <-done
	if res.err != nil {
		t.Fatalf("agent: %v (child: %v %q)", res.err, ws, out)
	}
	if ws.ExitStatus() != 0 || strings.TrimSpace(out) != "ppid=4242" {
		t.Fatalf("child: %v %q, want ppid=4242 (the agent's answer)", ws, out)
	}
	if res.nr != syscall.SYS_GETPPID || res.state.Metadata != "berth-test" || len(res.state.Fds) != 1 || res.state.Fds[0] != specs.SeccompFdName || res.state.State.ID != "berth-test" {
		t.Fatalf("agent saw nr %d, state %+v", res.nr, res.state)
	}
}
