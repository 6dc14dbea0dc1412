package cgroups

import (
	"strings"
	"testing"
)

func TestInnerPath(t *testing.T) {
	for _, c := range []struct {
		path, id, want string
		abs            bool
		err            string
	}{
		{"", "abc", "abc", false, ""},
		{"", "", "", false, "container ID"},
		{"", "a/b", "", false, "container ID"},
		{"", "..", "", false, "container ID"},
		{"/berth/abc", "x", "/berth/abc", true, ""},
		{"/berth//abc/", "x", "/berth/abc", true, ""},
		{"/a/../b", "x", "/b", true, ""},
		{"berth/abc", "x", "berth/abc", false, ""},
		{"./berth", "x", "berth", false, ""},
		{"../../etc", "x", "", false, "escapes"},
		{"/../../x", "x", "", false, "escapes"},
		{"/a/../../x", "x", "", false, "escapes"},
		{"/", "x", "", false, "root itself"},
		{"/a/..", "x", "", false, "root itself"},
		{"a\x00b", "x", "", false, "NUL"},
	} {
		got, abs, err := InnerPath(c.path, c.id)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("InnerPath(%q,%q) err = %v, want %q", c.path, c.id, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want || abs != c.abs {
			t.Errorf("InnerPath(%q,%q) = %q,%v,%v; want %q,%v", c.path, c.id, got, abs, err, c.want, c.abs)
		}
	}
}

func TestHostPath(t *testing.T) {
	for _, c := range []struct {
		mnt, root, own, inner string
		abs, parent           bool
		want                  string
	}{
		{"/sys/fs/cgroup/cpu", "/", "/user.slice", "/berth/x", true, false, "/sys/fs/cgroup/cpu/berth/x"},
		{"/sys/fs/cgroup/memory", "/", "/process_api/abc", "x", false, false, "/sys/fs/cgroup/memory/process_api/abc/x"},
		{"/sys/fs/cgroup", "/", "/user.slice/session-1.scope", "x", false, true, "/sys/fs/cgroup/user.slice/x"},
		{"/sys/fs/cgroup", "/", "/", "x", false, true, "/sys/fs/cgroup/x"},
		{"/sys/fs/cgroup/cpu", "/docker/abc", "/docker/abc/sub", "x", false, false, "/sys/fs/cgroup/cpu/sub/x"},
	} {
		if got := hostPath(c.mnt, c.root, c.own, c.inner, c.abs, c.parent); got != c.want {
			t.Errorf("hostPath(%+v) = %q, want %q", c, got, c.want)
		}
	}
}

const hybridMountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func TestParseMountinfo(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     Layout
		v1       []string
	}{
		{"hybrid", hybridMountinfo, Hybrid, []string{"cpu", "cpuacct", "memory", "name=systemd"}},
		{"v2", "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n", V2, nil},
		{"v1", "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n", V1, []string{"cpu", "cpuacct"}},
		{"v2 with stray named v1", "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n40 31 0:37 / /run/x rw - cgroup cgroup rw,name=systemd\n", V2, nil},
		{"escaped", `32 31 0:29 / /a\040b rw - cgroup cgroup rw,pids` + "\n", V1, []string{"pids"}},
	} {
		h, err := parseMountinfo(strings.NewReader(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if h.layout != c.want {
			t.Errorf("%s: layout %v, want %v", c.name, h.layout, c.want)
		}
		if len(h.v1) != len(c.v1) {
			t.Errorf("%s: v1 = %v, want %v", c.name, h.v1, c.v1)
		}
		for _, k := range c.v1 {
			if _, ok := h.v1[k]; !ok {
				t.Errorf("%s: missing %s", c.name, k)
			}
		}
		if c.name == "escaped" && h.v1["pids"].mountpoint != "/a b" {
			t.Errorf("unescape: %q", h.v1["pids"].mountpoint)
		}
	}
	if _, err := parseMountinfo(strings.NewReader("1 0 0:1 / / rw - ext4 /dev/sda rw\n")); err == nil {
		t.Error("no cgroup mounts: want an error")
	}
}

func TestParseProcCgroup(t *testing.T) {
	m := parseProcCgroup("9:name=systemd:/\n4:memory:/process_api/a\n1:cpu,cpuacct:/x\n0::/u\n")
	if m["memory"] != "/process_api/a" || m["cpu"] != "/x" || m["cpuacct"] != "/x" || m[""] != "/u" || m["name=systemd"] != "/" {
		t.Errorf("parseProcCgroup = %v", m)
	}
}
