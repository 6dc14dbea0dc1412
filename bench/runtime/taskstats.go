package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The kernel's per-task exit statistics (taskstats over generic netlink,
// CONFIG_TASKSTATS and CONFIG_TASK_XACCT): for every task that exits on
// the listened CPUs, its pid, thread-group id, parent and the high-water
// mark of its RSS. It is how the benchmark adds up the peak RSS of every
// process a runtime starts, even those that live a millisecond.

const (
	taskstatsGenlName     = "TASKSTATS"
	taskstatsCmdGet       = 1
	taskstatsAttrRegister = 3 // TASKSTATS_CMD_ATTR_REGISTER_CPUMASK
	taskstatsTypePID      = 1
	taskstatsTypeStats    = 3
	taskstatsTypeAggrPID  = 4
	ctrlCmdGetFamily      = 3
	ctrlAttrFamilyID      = 1
	ctrlAttrFamilyName    = 2
)

// Offsets in struct taskstats (linux/taskstats.h; the struct only grows,
// and every field used here exists since version 11).
const (
	tsOffVersion  = 0
	tsOffComm     = 80
	tsOffPID      = 128
	tsOffPPID     = 132
	tsOffHiwater  = 200 // KiB
	tsOffTGID     = 368
	tsMinVersion  = 11
	tsMinimumSize = tsOffTGID + 4
)

// exitRecord is one exited task.
type exitRecord struct {
	pid, tgid, ppid int
	comm            string
	hiwaterKB       uint64
}

type exitListener struct {
	fd     int
	mu     sync.Mutex
	recs   []exitRecord
	errs   int
	closed bool
	done   chan struct{}
}

func nlAttr(typ uint16, payload []byte) []byte {
	l := 4 + len(payload)
	b := make([]byte, (l+3)&^3)
	binary.LittleEndian.PutUint16(b[0:], uint16(l))
	binary.LittleEndian.PutUint16(b[2:], typ)
	copy(b[4:], payload)
	return b
}

func genlRequest(family uint16, cmd uint8, attrs []byte) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+4+len(attrs))
	binary.LittleEndian.PutUint32(b[0:], uint32(len(b)))
	binary.LittleEndian.PutUint16(b[4:], family)
	binary.LittleEndian.PutUint16(b[6:], unix.NLM_F_REQUEST)
	binary.LittleEndian.PutUint32(b[8:], 1)
	b[unix.NLMSG_HDRLEN] = cmd
	b[unix.NLMSG_HDRLEN+1] = 1 // version
	copy(b[unix.NLMSG_HDRLEN+4:], attrs)
	return b
}

// attrs splits a run of netlink attributes.
func attrs(b []byte) map[uint16][]byte {
	out := map[uint16][]byte{}
	for len(b) >= 4 {
		l := int(binary.LittleEndian.Uint16(b[0:]))
		typ := binary.LittleEndian.Uint16(b[2:]) & 0x3fff
		if l < 4 || l > len(b) {
			break
		}
		out[typ] = b[4:l]
		b = b[(l+3)&^3:]
		if len(b) < ((l+3)&^3)-l { // the last attribute may lack padding
			break
		}
	}
	return out
}

func familyID(fd int, name string) (uint16, error) {
	req := genlRequest(unix.GENL_ID_CTRL, ctrlCmdGetFamily, nlAttr(ctrlAttrFamilyName, append([]byte(name), 0)))
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, err
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, err
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil || len(msgs) == 0 {
		return 0, fmt.Errorf("genl family %s: bad reply", name)
	}
	if msgs[0].Header.Type == unix.NLMSG_ERROR {
		return 0, fmt.Errorf("genl family %s: not available", name)
	}
	a := attrs(msgs[0].Data[4:])
	id, ok := a[ctrlAttrFamilyID]
	if !ok || len(id) < 2 {
		return 0, fmt.Errorf("genl family %s: no id", name)
	}
	return binary.LittleEndian.Uint16(id), nil
}

// listenExits starts recording the exit statistics of every task.
func listenExits() (*exitListener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
	fam, err := familyID(fd, taskstatsGenlName)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	mask := fmt.Sprintf("0-%d\x00", runtime.NumCPU()-1)
	if err := unix.Sendto(fd, genlRequest(fam, taskstatsCmdGet, nlAttr(taskstatsAttrRegister, []byte(mask))), 0,
		&unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("register for task exits: %w", err)
	}
	l := &exitListener{fd: fd, done: make(chan struct{})}
	go l.loop()
	return l, nil
}

func (l *exitListener) loop() {
	defer close(l.done)
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(l.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.ENOBUFS) {
				l.mu.Lock()
				l.errs++
				l.mu.Unlock()
				continue
			}
			return
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if m.Header.Type == unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			agg, ok := attrs(m.Data[4:])[taskstatsTypeAggrPID]
			if !ok {
				continue
			}
			st, ok := attrs(agg)[taskstatsTypeStats]
			if !ok || len(st) < tsMinimumSize || binary.LittleEndian.Uint16(st[tsOffVersion:]) < tsMinVersion {
				continue
			}
			comm := st[tsOffComm : tsOffComm+32]
			for i, c := range comm {
				if c == 0 {
					comm = comm[:i]
					break
				}
			}
			r := exitRecord{
				pid:       int(binary.LittleEndian.Uint32(st[tsOffPID:])),
				ppid:      int(binary.LittleEndian.Uint32(st[tsOffPPID:])),
				tgid:      int(binary.LittleEndian.Uint32(st[tsOffTGID:])),
				comm:      string(comm),
				hiwaterKB: binary.LittleEndian.Uint64(st[tsOffHiwater:]),
			}
			l.mu.Lock()
			l.recs = append(l.recs, r)
			l.mu.Unlock()
		}
	}
}

// take returns and forgets the records so far, and how many batches the
// kernel dropped (a full socket buffer).
func (l *exitListener) take() ([]exitRecord, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, e := l.recs, l.errs
	l.recs, l.errs = nil, 0
	return r, e
}

func (l *exitListener) close() {
	unix.Close(l.fd)
}

// treeProcesses returns, per process (thread-group id), the highest RSS
// high-water mark among its exited threads, for every process descended
// from root (by the parent each reported at exit; orphans reparented to
// self count as root's, since one runtime runs at a time).
func treeProcesses(recs []exitRecord, root, self int) map[int]exitRecord {
	in := map[int]bool{root: true}
	for changed := true; changed; {
		changed = false
		for _, r := range recs {
			if !in[r.tgid] && (in[r.ppid] || (r.ppid == self && r.tgid != self)) {
				in[r.tgid] = true
				changed = true
			}
		}
	}
	out := map[int]exitRecord{}
	for _, r := range recs {
		if !in[r.tgid] {
			continue
		}
		if cur, ok := out[r.tgid]; !ok || r.hiwaterKB > cur.hiwaterKB || (r.pid == r.tgid && r.hiwaterKB == cur.hiwaterKB) {
			out[r.tgid] = r
		}
	}
	return out
}
