package integration

import (
	"strings"
	"testing"
)

// A container whose process the kernel kills for memory shows
// State.OOMKilled true and exit status 137, as with dockerd; one killed
// by SIGKILL otherwise does not.
func TestEngineOOMKilled(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	// tail buffers what it reads, looking for a last line: /dev/zero has
	// none. 32 MiB allowed, and this host has no swap to spill into.
	id := strings.TrimSpace(e.docker("run", "-d", "-m", "32m", "--memory-swap", "32m", "busybox", "tail", "/dev/zero"))
	if out := e.docker("wait", id); out != "137\n" {
		t.Fatalf("wait: %q, want 137", out)
	}
	if out := e.docker("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", id); out != "true 137\n" {
		t.Fatalf("State.OOMKilled ExitCode: %q, want true 137", out)
	}
	// Killed in a child: the shell exits 137 after it, still an OOM kill.
	if _, _, code := e.dockerQuiet("run", "--rm", "-m", "32m", "--memory-swap", "32m", "busybox", "sh", "-c", "tail /dev/zero"); code != 137 {
		t.Fatalf("run --rm: exit %d, want 137", code)
	}
	id = strings.TrimSpace(e.docker("run", "-d", "-m", "32m", "busybox", "sleep", "1000"))
	e.docker("kill", id)
	e.docker("wait", id)
	if out := e.docker("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", id); out != "false 137\n" {
		t.Fatalf("a SIGKILL without OOM: %q, want false 137", out)
	}
}
