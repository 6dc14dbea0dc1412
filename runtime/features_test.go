package runtime_test

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Namespaced sysctls are written before /proc/sys becomes read-only
// (Docker's readonlyPaths): dockerd sets net.ipv4.ip_unprivileged_port_start
// on every container, so with the order the other way round no container
// of dockerd's started.
func TestSysctlsWithReadOnlyProcSys(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun([]string{"sh", "-c", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni; echo 1 > /proc/sys/kernel/shmmni && echo writable; true"}, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shmmni": "1234"}
	})
	if f := strings.Fields(out); len(f) < 2 || f[0] != "0" || f[1] != "1234" {
		t.Errorf("sysctls not applied: %q", out)
	}
	if strings.Contains(out, "writable") {
		t.Errorf("/proc/sys is writable in the container: %q", out)
	}
}
