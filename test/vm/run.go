package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ResultMarker is the line the guest prints last; qemu itself exits 0 even
// when the guest fails or is killed, so the exit status travels over the
// serial console.
const ResultMarker = "BERTH-VM-RESULT rc="

var resultRe = regexp.MustCompile(`BERTH-VM-RESULT rc=(\d+)`)

// Config is one VM run.
type Config struct {
	Kernel, Initrd string
	MemoryMiB      int // ≥ 96; default 1024
	CPUs           int // default 2
	// Cmdline is added to the kernel command line (console and quiet
	// options are always there); a pure v2 guest wants NoV1.
	Cmdline string
	Timeout time.Duration
	// Output receives the serial console as it arrives.
	Output io.Writer
}

// NoV1 keeps the kernel from offering any cgroup v1 controller, so a
// guest is a pure cgroup v2 host whatever its init mounts.
const NoV1 = "cgroup_no_v1=all"

// Init is the /init script for a pure cgroup v2 guest: it moves onto a
// tmpfs root, mounts the basic filesystems and cgroup2 alone at
// /sys/fs/cgroup, enables every controller at the root, loads modules
// (guest paths, in order), runs each command line in tests (with
// BERTH_VM=1), prints ResultMarker with the first non-zero exit status and
// reboots (qemu runs with -no-reboot, so that ends it).
func Init(modules, tests []string) string {
	var b strings.Builder
	b.WriteString(`export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root BERTH_VM=1
# The initramfs root cannot be pivot_root'ed away from (containers do that):
# copy it onto a tmpfs and switch_root there first.
if [ ! -e /.switched ]; then
	mkdir /newroot && mount -t tmpfs -o mode=755 tmpfs /newroot
	for e in /*; do [ "$e" = /newroot ] || cp -a "$e" /newroot/; done
	touch /newroot/.switched
	exec switch_root /newroot /init
fi
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || { echo "` + ResultMarker + `99"; reboot -f; }
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control; done
for m in ` + strings.Join(modules, " ") + `; do insmod "$m" || echo "vm: insmod $m failed"; done
echo "vm: kernel $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
ip link set lo up 2>/dev/null
rc=0
cd /tmp
`)
	for _, t := range tests {
		fmt.Fprintf(&b, "echo '=== vm run: %s'\n%s\nr=$?\necho \"=== vm exit: $r\"\n[ $r -ne 0 ] && [ $rc -eq 0 ] && rc=$r\n", t, t)
	}
	b.WriteString(`echo "` + ResultMarker + `$rc"
reboot -f
`)
	return b.String()
}

// Run boots the VM and returns the guest's result code. A missing marker
// (crash, panic, timeout) is an error.
func Run(ctx context.Context, c Config) (int, error) {
	if c.MemoryMiB == 0 {
		c.MemoryMiB = 1024
	}
	if c.CPUs == 0 {
		c.CPUs = 2
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	cmdline := "console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off " + c.Cmdline
	accel, cpu := "tcg", "max"
	if kvmWorks(c.Kernel) {
		accel, cpu = "kvm", "host"
	}
	args := []string{
		"-machine", "microvm,accel=" + accel + ",acpi=off", "-cpu", cpu,
		"-smp", strconv.Itoa(c.CPUs), "-m", strconv.Itoa(c.MemoryMiB),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-serial", "stdio",
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", cmdline,
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	// If the test binary dies (go test's own timeout kills it), the guest
	// must not go on emulating a CPU for nobody.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return -1, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("start qemu-system-x86_64 (install qemu-system-x86): %w", err)
	}
	rc := -1
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if c.Output != nil {
			fmt.Fprintln(c.Output, line)
		}
		if m := resultRe.FindStringSubmatch(line); m != nil {
			rc, _ = strconv.Atoi(m[1])
		}
	}
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return -1, fmt.Errorf("vm: no result within %v: %w", c.Timeout, ctx.Err())
	}
	if rc < 0 {
		if werr == nil {
			werr = errors.New("guest ended without reporting a result")
		}
		return -1, fmt.Errorf("vm: %w", werr)
	}
	return rc, nil
}

var kvm struct {
	once sync.Once
	ok   bool
}

// kvmWorks reports whether qemu can run a guest with KVM here, once per
// test process: /dev/kvm may open and still fail at the first vCPU run
// (nested KVM on these machines aborts on an MSR), so the kernel is
// booted until it panics for want of a root, which takes about a second
// with KVM. BERTH_VM_ACCEL=tcg or kvm skips the probe.
func kvmWorks(kernel string) bool {
	kvm.once.Do(func() {
		switch os.Getenv("BERTH_VM_ACCEL") {
		case "tcg":
			return
		case "kvm":
			kvm.ok = true
			return
		}
		if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
			return
		} else {
			f.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-machine", "microvm,accel=kvm,acpi=off", "-cpu", "host",
			"-m", "128", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio",
			"-kernel", kernel, "-append", "console=ttyS0 panic=-1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		kvm.ok = err == nil && bytes.Contains(out, []byte("Kernel panic"))
	})
	return kvm.ok
}
