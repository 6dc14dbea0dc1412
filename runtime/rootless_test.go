package runtime_test

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// An unprivileged caller with a subordinate id range gets a multi-range
// map (its own uid as root, the range for the rest), written by the
// setuid newuidmap/newgidmap while berth-nsenter waits in the new user
// namespace. The test's user and ranges exist only in a private mount
// namespace, where /etc/passwd, group, subuid and subgid are bind mounts
// of the test's own files: the host's are not touched.
func TestRootlessMultiRangeMaps(t *testing.T) {
	e := newEnv(t)
	for _, tool := range []string{"newuidmap", "newgidmap", "setpriv", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (hack/deps.sh: uidmap, util-linux)", tool)
		}
	}
	uid := 40000 + rand.Intn(10000)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	etc := filepath.Join(dir, "etc")
	os.Mkdir(etc, 0o755)
	for _, f := range []string{"passwd", "group"} {
		b, err := os.ReadFile("/etc/" + f)
		if err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("berthtest:x:%d:%d::/:/bin/false\n", uid, uid)
		if f == "group" {
			line = fmt.Sprintf("berthtest:x:%d:\n", uid)
		}
		if err := os.WriteFile(filepath.Join(etc, f), append(b, line...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"subuid", "subgid"} {
		if err := os.WriteFile(filepath.Join(etc, f), []byte("berthtest:300000:65536\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o700)
	os.Chown(state, uid, uid)
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(uid), Size: 1}, {ContainerID: 1, HostID: 300000, Size: 65536}}
	b := e.bundle([]string{"sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox"}, nil)
	spec := runtime.DefaultSpec(true, uint32(uid), uint32(uid))
	spec.Process.Terminal = false
	spec.Process.Args = []string{"sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox"}
	spec.Linux.UIDMappings, spec.Linux.GIDMappings = maps, maps
	cfg, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(b, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	script := `set -e
for f in passwd group subuid subgid; do mount --bind "$ETC/$f" /etc/$f; done
exec setpriv --reuid "$U" --regid "$U" --clear-groups "$BIN" --root "$STATE" run --bundle "$BUNDLE" rootless-test
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "ETC=" + etc, "U=" + fmt.Sprint(uid), "BIN=" + e.bin, "STATE=" + state, "BUNDLE=" + b}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rootless run: %v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	want := []string{"0", fmt.Sprint(uid), "1", "1", "300000", "65536", "0", fmt.Sprint(uid), "1", "1", "300000", "65536", "0", "65534"}
	if strings.Join(f, " ") != strings.Join(want, " ") {
		t.Errorf("got %q, want the two-range maps, root inside, and the host root's files unmapped (65534)", out)
	}
}
