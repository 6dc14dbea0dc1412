package vm

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// SystemdBinary is systemd as Debian installs it; the systemd guest runs it
// as PID 1 (the package is on Debian hosts even where systemd does not run).
const SystemdBinary = "/lib/systemd/systemd"

// CgroupsAgent is systemd's cgroup v1 release agent (the path systemd 252
// writes to the name=systemd hierarchy's release_agent).
const CgroupsAgent = "/lib/systemd/systemd-cgroups-agent"

var lddRe = regexp.MustCompile(`(?m)(/\S+) \(0x[0-9a-f]+\)$`)

// WithLibraries adds a host binary and the shared libraries it loads (from
// ldd) to files, at the same paths in the guest.
func WithLibraries(files map[string]string, bin string) error {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", bin, err)
	}
	files[bin] = bin
	for _, m := range lddRe.FindAllStringSubmatch(string(out), -1) {
		files[m[1]] = m[1]
	}
	return nil
}

// HostTools are util-linux and libcap programs tests call whose busybox
// applets lack options (setpriv --bounding-set, unshare's full set); the
// guest gets the host's binaries where the host has them.
var HostTools = []string{"setpriv", "unshare", "nsenter", "getpcaps"}

// AddHostTools adds the HostTools found on the host (and their libraries).
func AddHostTools(files map[string]string) error {
	for _, name := range HostTools {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if err := WithLibraries(files, p); err != nil {
			return err
		}
	}
	return nil
}

// SystemdFiles lists systemd, its cgroup v1 release agent and the shared
// libraries they load (from ldd) as guest path → host path, plus
// /etc/os-release.
func SystemdFiles() (map[string]string, error) {
	if _, err := os.Stat(SystemdBinary); err != nil {
		return nil, fmt.Errorf("systemd guest: %w (install the systemd package)", err)
	}
	files := map[string]string{}
	if err := WithLibraries(files, SystemdBinary); err != nil {
		return nil, fmt.Errorf("systemd guest: %w", err)
	}
	// On a legacy v1 host systemd learns that a cgroup emptied only from
	// the kernel's release agent, which runs this (hybrid and v2 hosts
	// get cgroup.events from cgroup2 instead). Without it, stopping a
	// scope that still has processes waits for the stop timeout.
	if _, err := os.Stat(CgroupsAgent); err == nil {
		if err := WithLibraries(files, CgroupsAgent); err != nil {
			return nil, fmt.Errorf("systemd guest: %w", err)
		}
	}
	for _, f := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if _, err := os.Stat(f); err == nil {
			files[f] = f
		}
	}
	return files, nil
}

// SystemdUnit runs /berth-tests.sh once systemd is up.
const SystemdUnit = `[Unit]
Description=berth tests under systemd
DefaultDependencies=no

[Service]
Type=oneshot
ExecStart=/bin/busybox sh /berth-tests.sh
StandardOutput=null
StandardError=null
`

// SystemdLayouts are the kernel command lines that have systemd 252 set up
// each cgroup layout. It defaults to the unified hierarchy (and NoV1 keeps
// the kernel's v1 controllers out of reach); systemd.unified_cgroup_hierarchy=0
// asks for hybrid (v1 controllers, plus cgroup2 at /sys/fs/cgroup/unified
// for systemd's own tracking), and with systemd.legacy_systemd_cgroup_controller=1
// too, legacy v1 (name=systemd instead of the cgroup2 mount).
var SystemdLayouts = map[string]string{
	"v2":     NoV1,
	"hybrid": "systemd.unified_cgroup_hierarchy=0",
	"v1":     "systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=1",
}

// InitSystemd is the /init of a systemd guest: it moves onto a tmpfs root
// and execs systemd, which mounts the cgroup hierarchies itself (the
// layout follows the kernel command line, see SystemdLayouts) and starts
// berth-tests.service; that runs each
// command line in tests, prints ResultMarker and reboots. The unit and the
// script are returned as extra files.
func InitSystemd(tests []string) (init string, data map[string][]byte) {
	var s strings.Builder
	s.WriteString(`exec >/dev/console 2>&1
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root BERTH_VM=1 BERTH_BIN=/bin/berth
echo "vm: systemd $(cat /proc/1/comm) up, cgroup mounts:" $(awk '/ - cgroup2? /{print $5}' /proc/self/mountinfo)
[ -e /sys/fs/cgroup/cgroup.subtree_control ] && echo "vm: cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
rc=0
cd /tmp
`)
	for _, t := range tests {
		fmt.Fprintf(&s, "echo '=== vm run: %s'\n%s\nr=$?\necho \"=== vm exit: $r\"\n[ $r -ne 0 ] && [ $rc -eq 0 ] && rc=$r\n", t, t)
	}
	s.WriteString(`echo "` + ResultMarker + `$rc"
reboot -f
`)
	init = `if [ ! -e /.switched ]; then
	mkdir /newroot && mount -t tmpfs -o mode=755 tmpfs /newroot
	for e in /*; do [ "$e" = /newroot ] || cp -a "$e" /newroot/; done
	touch /newroot/.switched
	exec switch_root /newroot /init
fi
: > /etc/machine-id
exec ` + SystemdBinary + ` --unit=berth-tests.service
`
	return init, map[string][]byte{
		"/etc/systemd/system/berth-tests.service": []byte(SystemdUnit),
		"/berth-tests.sh":                         []byte(s.String()),
	}
}
