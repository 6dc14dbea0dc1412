package ctrfs

import "testing"

func TestHostRootMapsEtcFilesAndBinds(t *testing.T) {
	m := Mounts{HostnamePath: "/d/hostname", HostsPath: "/d/hosts", ResolvPath: "/d/resolv.conf",
		Binds: []string{"/srv/data:/data:ro"}}
	for in, want := range map[string][2]string{
		"/etc/hostname":  {"/d", "/hostname"},
		"/data/x/y":      {"/srv/data", "/x/y"},
		"/etc/passwd":    {"/rootfs", "/etc/passwd"},
		"../../etc/host": {"/rootfs", "/etc/host"},
	} {
		root, rel := HostRoot(m, "/rootfs", in)
		if root != want[0] || rel != want[1] {
			t.Errorf("%s: %s %s, want %v", in, root, rel, want)
		}
	}
}
