// Package bootstrap owns the conversation between the runtime (parent) and
// the init stage it spawns inside the new namespaces: the configuration the
// parent sends, the messages both sides exchange while the container is set
// up, and their framing on the sync socket (a 4-byte length and a JSON
// body; file descriptors ride along as SCM_RIGHTS). It holds no logic of
// either side.
package bootstrap

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/berth-dev/berth/rootfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Environment variables the init stage reads; their values are fd numbers.
const (
	EnvSyncFD = "_BERTH_SYNC_FD"
)

// MaxMessage bounds one message, so a confused peer cannot make the other
// side allocate without limit.
const MaxMessage = 16 << 20

// Mount is a mount the init stage performs exactly as given (the cgroup
// package computes these for /sys/fs/cgroup).
type Mount = rootfs.RawMount

// JoinNS is a namespace the init stage enters with setns(2).
type JoinNS struct {
	Type specs.LinuxNamespaceType `json:"type"`
	Path string                   `json:"path"`
}

// Config is everything the init stage needs to finish the container.
type Config struct {
	ID           string      `json:"id"`
	Spec         *specs.Spec `json:"spec"`
	Rootfs       string      `json:"rootfs"` // absolute host path
	NoPivot      bool        `json:"noPivot,omitempty"`
	NoNewKeyring bool        `json:"noNewKeyring,omitempty"`
	PreserveFDs  int         `json:"preserveFds,omitempty"`
	// Fd numbers in the init process; -1 when absent.
	ConsoleFD  int `json:"consoleFd"`
	StateDirFD int `json:"stateDirFd"`
	// Namespaces to join by path (those the clone could not create).
	Join []JoinNS `json:"join,omitempty"`
	// CgroupMounts replace a spec mount of type cgroup/cgroup2, keyed by
	// its destination.
	CgroupMounts map[string][]Mount `json:"cgroupMounts,omitempty"`
	// Seccomp is the compiled filter (seccomp.Program as JSON), or null.
	Seccomp json.RawMessage `json:"seccomp,omitempty"`
	// NewUserNS tells init whether it lives in a user namespace of its own
	// (mknod is then impossible and devices are bind-mounted).
	NewUserNS bool `json:"newUserNs,omitempty"`
	// SharedMountNS: the container has no mount namespace of its own;
	// the runtime has bound the rootfs privately (rootfs.BindPrivate).
	SharedMountNS bool `json:"sharedMountNs,omitempty"`
	// BindRootfs: with SharedMountNS, the init itself binds the rootfs
	// privately (the mount namespace was joined by path, so the runtime
	// could not).
	BindRootfs bool `json:"bindRootfs,omitempty"`
	// CgroupPending: the runtime puts the init in its cgroup while the
	// init starts on its root filesystem, and sends MsgCgroup when done;
	// the init waits for it before anything that needs the cgroup (a
	// cgroup namespace, cgroup mounts, hooks, the user's process).
	CgroupPending bool `json:"cgroupPending,omitempty"`
	// IDMapFDs are user namespace descriptors for id-mapped mounts, keyed
	// by the mount's index in spec.mounts.
	IDMapFDs map[int]int `json:"idmapFds,omitempty"`
	// CgroupTaskFDs are the tasks files of cgroup v1 directories, open
	// for writing (by the runtime: in the container's mount namespace the
	// host's paths may not exist), that the init moves its own thread into
	// by writing 0, before anything that needs the cgroup: a thread moving
	// itself skips the lock that makes moving a process wait for an RCU
	// grace period. The thread is the one that execs, and after execve the
	// process is that thread alone.
	CgroupTaskFDs []int `json:"cgroupTaskFds,omitempty"`
	// UnshareCgroupNS asks the init to make its cgroup namespace once it
	// is in its cgroup (a clone would root it at the runtime's cgroup).
	UnshareCgroupNS bool `json:"unshareCgroupNs,omitempty"`
	// StateJSON is the OCI state handed to createContainer and
	// startContainer hooks on their stdin.
	StateJSON []byte `json:"state,omitempty"`
	// Exec is set when the process joins a running container instead of
	// creating one: no rootfs work, only the process setup.
	Exec bool `json:"exec,omitempty"`
}

// Message types.
const (
	MsgHooks   = "hooks"   // init → parent: mounts are ready, run createRuntime/prestart hooks
	MsgOK      = "ok"      // parent → init: go on
	MsgReady   = "ready"   // init → parent: created; waiting for start
	MsgError   = "error"   // either way: setup failed
	MsgSeccomp = "seccomp" // init → parent: here is the seccomp listener fd
	MsgCgroup  = "cgroup"  // parent → init: you are in your cgroup
)

// Msg is one message on the sync socket.
type Msg struct {
	Type  string `json:"type"`
	Error string `json:"error,omitempty"`
	// ExitCode suggests the exit status for an error (127: not found,
	// 126: cannot execute), as Docker users expect.
	ExitCode int `json:"exitCode,omitempty"`
}

// Conn frames messages on a unix stream socket.
type Conn struct {
	f *os.File
}

// NewConn wraps the sync socket.
func NewConn(f *os.File) *Conn { return &Conn{f: f} }

// File returns the underlying socket.
func (c *Conn) File() *os.File { return c.f }

// Close closes the socket.
func (c *Conn) Close() error { return c.f.Close() }

// Send writes v as one frame, passing fds with it.
func (c *Conn) Send(v any, fds ...int) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.SendEncoded(body, fds...)
}

// SendEncoded writes a frame whose body is already JSON.
func (c *Conn) SendEncoded(body []byte, fds ...int) error {
	if len(body) > MaxMessage {
		return fmt.Errorf("sync message of %d bytes is larger than %d", len(body), MaxMessage)
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	if len(fds) > 0 {
		// The fds travel with the first byte; the rest is plain writes.
		rights := unix.UnixRights(fds...)
		if err := unix.Sendmsg(int(c.f.Fd()), buf[:1], rights, nil, 0); err != nil {
			return fmt.Errorf("send fds: %w", err)
		}
		buf = buf[1:]
	}
	for len(buf) > 0 {
		n, err := c.f.Write(buf)
		if err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

// Recv reads one frame into v and returns any fds that came with it.
func (c *Conn) Recv(v any) ([]int, error) {
	var fds []int
	hdr := make([]byte, 4)
	if err := c.readFull(hdr, &fds); err != nil {
		return fds, err
	}
	n := binary.BigEndian.Uint32(hdr)
	if n > MaxMessage {
		return fds, fmt.Errorf("sync message of %d bytes is larger than %d", n, MaxMessage)
	}
	body := make([]byte, n)
	if err := c.readFull(body, &fds); err != nil {
		return fds, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fds, fmt.Errorf("decode sync message: %w", err)
	}
	return fds, nil
}

func (c *Conn) readFull(p []byte, fds *[]int) error {
	oob := make([]byte, unix.CmsgSpace(4*8))
	fd := int(c.f.Fd())
	for len(p) > 0 {
		n, oobn, _, _, err := unix.Recvmsg(fd, p, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err == nil {
				for _, m := range msgs {
					if got, err := unix.ParseUnixRights(&m); err == nil {
						*fds = append(*fds, got...)
					}
				}
			}
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		p = p[n:]
	}
	return nil
}

// ErrClosed reports whether err means the peer went away.
func ErrClosed(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET)
}
