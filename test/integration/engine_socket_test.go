package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/caps"
)

// TestEngineSocketGroup is the talk's set-up: the socket belongs to root
// and the daemon's group, mode 0660, so an unprivileged user in that group
// (groupadd + gpasswd -a) uses the daemon and one outside it cannot.
func TestEngineSocketGroup(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	group := fmt.Sprintf("berth-g%d", os.Getpid()%100000)
	if out, err := exec.Command("groupadd", group).CombinedOutput(); err != nil {
		t.Skipf("groupadd: %v %s", err, out)
	}
	defer exec.Command("groupdel", group).Run()
	out, _ := exec.Command("getent", "group", group).Output()
	gid, _ := strconv.Atoi(strings.Split(strings.TrimSpace(string(out)), ":")[2])

	e := newEngine(t, "--group", group)
	fi, err := os.Stat(e.sock)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o660 || st.Uid != 0 || int(st.Gid) != gid {
		t.Fatalf("socket %v uid %d gid %d, want 0660 root:%d", fi.Mode(), st.Uid, st.Gid, gid)
	}
	os.Chmod(e.dir, 0o755)
	os.Chmod(e.dockerC, 0o777)
	as := func(groups string) (string, error) {
		cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--groups="+groups, "--", "docker", "ps", "-q")
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host(), "DOCKER_CONFIG="+e.dockerC, "HOME=/tmp")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := as(strconv.Itoa(gid)); err != nil {
		t.Fatalf("a member of %s cannot use the daemon: %v %s", group, err, out)
	}
	if out, err := as("65534"); err == nil || !strings.Contains(out, "permission denied") {
		t.Fatalf("a non-member used the daemon: %v %s", err, out)
	}
}

// TestEnginePrivileged: --privileged gives every capability the daemon
// holds, also on hosts without CAP_SYS_RESOURCE (dockerd 20.10 fails
// there with "unable to apply caps").
func TestEnginePrivileged(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	held, err := caps.Current()
	if err != nil {
		t.Fatal(err)
	}
	out := e.docker("run", "--rm", "--privileged", "busybox", "grep", "CapEff", "/proc/self/status")
	if want := "CapEff:\t" + held.Permitted.Hex() + "\n"; out != want {
		t.Fatalf("--privileged %q, want %q (the daemon's permitted set)", out, want)
	}
	if out := e.docker("run", "--rm", "--privileged", "busybox", "grep", "Seccomp:", "/proc/self/status"); out != "Seccomp:\t0\n" {
		t.Fatalf("--privileged keeps a seccomp filter: %q", out)
	}
}
