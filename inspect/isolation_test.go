package inspect

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

func findings(r *IsolationReport) map[string]Finding {
	m := map[string]Finding{}
	for _, f := range r.Findings {
		m[f.Area+" "+f.Item] = f
	}
	return m
}

func TestIsolationHostProcess(t *testing.T) {
	testutil.RequiresRoot(t)
	r, err := Isolation(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	f := findings(r)
	for _, typ := range []string{"mnt", "uts", "ipc", "net", "pid"} {
		x := f["namespace "+typ]
		if x.IsDefault || !strings.HasPrefix(x.Value, "shared with host") {
			t.Errorf("host process %s namespace: %+v", typ, x)
		}
	}
	if x := f["user mapping uid_map"]; x.Value != "0 0 4294967295" || !x.IsDefault {
		t.Errorf("uid_map: %+v", x)
	}
	if x := f["mounts mount namespace"]; x.IsDefault {
		t.Errorf("host mount namespace marked default: %+v", x)
	}
	n := 0
	for _, x := range r.Findings {
		if !x.IsDefault {
			n++
		}
	}
	if n != r.Differences || n == 0 {
		t.Errorf("differences %d, counted %d", r.Differences, n)
	}
}

// TestIsolationContainerLike: an isolated process with some of Docker's
// masks and read-only paths applied by hand, the way runc applies them.
func TestIsolationContainerLike(t *testing.T) {
	testutil.RequiresRoot(t)
	script := `set -e
mount --make-rprivate /
mount -t proc proc /proc
mount --bind /dev/null /proc/keys
mount -t tmpfs -o ro tmpfs /sys/firmware
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
exec sleep 300`
	iso := startIsolatedCmd(t, []string{"--user", "--map-root-user", "--pid", "--ipc", "--uts", "--net", "--mount"}, "sh", "-c", script)
	r, err := Isolation(iso.Inner)
	if err != nil {
		t.Fatal(err)
	}
	f := findings(r)
	for typ, want := range map[string]bool{"user": false, "mnt": true, "uts": true, "ipc": true, "net": true, "pid": true, "time": true} {
		x := f["namespace "+typ]
		if x.IsDefault != want {
			t.Errorf("%s namespace: %+v, want default=%v", typ, x, want)
		}
		_, kid := kernelNS(t, iso.Inner, typ)
		_, hid := kernelNS(t, os.Getpid(), typ)
		if shared := strings.HasPrefix(x.Value, "shared"); shared != (kid == hid) || !strings.HasSuffix(x.Value, kid.String()) {
			t.Errorf("%s namespace %q; kernel says %s (host %s)", typ, x.Value, kid, hid)
		}
	}
	if x := f["user mapping uid_map"]; x.Value != "0 0 1" || x.IsDefault {
		t.Errorf("uid_map: %+v", x)
	}
	for p, want := range map[string]string{"/proc/keys": "masked", "/sys/firmware": "masked", "/proc/timer_list": "exposed"} {
		if _, err := os.Stat(p); err != nil {
			continue // not on this kernel
		}
		if x := f["masked path "+p]; x.Value != want {
			t.Errorf("%s: %+v, want %s", p, x, want)
		}
	}
	if x := f["read-only path /proc/sys"]; x.Value != "read-only" || !x.IsDefault {
		t.Errorf("/proc/sys: %+v", x)
	}
	if x := f["read-only path /proc/irq"]; x.Value != "writable" || x.IsDefault {
		t.Errorf("/proc/irq: %+v", x)
	}
	if x := f["mounts /"]; x.IsDefault || !strings.Contains(x.Value, "the host's root") {
		t.Errorf("root mount: %+v", x)
	}
	var out bytes.Buffer
	WriteIsolation(&out, r)
	if !strings.Contains(out.String(), "default  masked path     /proc/keys") || !strings.Contains(out.String(), "DIFFERS  namespace       user") {
		t.Errorf("text:\n%s", out.String())
	}
}
