package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/busybox"
	"github.com/berth-dev/berth/internal/testutil"
)

// The berth CLI end to end: `berth daemon` on a private socket and data
// root, the busybox image imported with `berth import`, every verb driven
// through bin/berth and, where it makes sense, the same command through
// the real docker CLI against the same daemon: same exit codes, same
// essential output.

// cliResult is one command's outcome.
type cliResult struct {
	out, err string
	code     int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", r.code, r.out, r.err)
}

// cliEnv runs berth and docker against one daemon.
type cliEnv struct {
	t      *testing.T
	host   string
	berth  string
	docker string // "" when no docker CLI is installed
	env    []string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	testutil.RequiresRoot(t)
	e := &cliEnv{t: t, host: startDaemon(t), berth: testutil.BerthBinary(t)}
	e.docker, _ = exec.LookPath("docker")
	e.env = append(os.Environ(), "DOCKER_HOST="+e.host, "BERTH_AUTOSTART=0", "DOCKER_CONFIG="+t.TempDir())
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	f, err := os.Create(tarball)
	if err != nil {
		t.Fatal(err)
	}
	if err := busybox.WriteTar(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if r := e.run(e.berth, nil, "import", "--change", `CMD ["sh"]`, tarball, "busybox"); r.code != 0 || !strings.HasPrefix(r.out, "sha256:") {
		t.Fatalf("berth import: %v", r)
	}
	return e
}

func (e *cliEnv) run(bin string, stdin []byte, args ...string) cliResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = e.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("%s %v: %v", bin, args, err)
	}
	return cliResult{out.String(), errb.String(), code}
}

func (e *cliEnv) b(args ...string) cliResult { e.t.Helper(); return e.run(e.berth, nil, args...) }

// both runs the same command through berth and docker and requires the
// same exit code; it returns berth's result and docker's (docker's is
// berth's when no docker CLI is installed).
func (e *cliEnv) both(args ...string) (cliResult, cliResult) {
	e.t.Helper()
	br := e.b(args...)
	if e.docker == "" {
		return br, br
	}
	dr := e.run(e.docker, nil, args...)
	if br.code != dr.code {
		e.t.Errorf("%v: berth exit %d, docker exit %d\nberth: %v\ndocker: %v", args, br.code, dr.code, br, dr)
	}
	return br, dr
}

func (e *cliEnv) ok(args ...string) string {
	e.t.Helper()
	r := e.b(args...)
	if r.code != 0 {
		e.t.Fatalf("berth %v: %v", args, r)
	}
	return r.out
}

func cliName(t *testing.T, what string) string {
	return fmt.Sprintf("berth-test-%s-%d-%d", what, os.Getpid(), time.Now().UnixNano()%1e6)
}

// The talk's commands through berth run, compared with the docker CLI.
func TestCLITalk(t *testing.T) {
	e := newCLIEnv(t)

	br, dr := e.both("run", "--rm", "busybox", "sh", "-c", `echo "hello world"`)
	if br.out != "hello world\n" || br.code != 0 || dr.out != br.out {
		t.Errorf("hello world: berth %v\ndocker %v", br, dr)
	}
	// ls -l bin | awk '{print $2, $5, $9}': every applet a hard link to busybox.
	br, dr = e.both("run", "--rm", "busybox", "ls", "-l", "bin")
	if br.out != dr.out || !regexp.MustCompile(`(?m)^\S+\s+(\d+)\s+root\s+root\s+(\d+) .* busybox$`).MatchString(br.out) {
		t.Errorf("ls -l bin: berth %v\ndocker %v", br, dr)
	}
	m := regexp.MustCompile(`(?m)^\S+\s+(\d+)\s+root\s+root\s+(\d+) .* sh$`).FindStringSubmatch(br.out)
	if m == nil || m[1] == "1" {
		t.Errorf("bin/sh is not a hard link to busybox: %s", br.out)
	}
	br, dr = e.both("run", "--rm", "busybox", "sh", "-c", `echo "$$"; id`)
	if want := "1\nuid=0(root) gid=0(root) groups=10(wheel)\n"; br.out != want || dr.out != want {
		t.Errorf("echo $$; id: berth %v\ndocker %v", br, dr)
	}

	// The sleeping container, found with container ls | awk, exec'd into.
	name := cliName(t, "sleep")
	id := strings.TrimSpace(e.ok("run", "-d", "--name", name, "--cpu-period=2000", "--cpu-quota=1000", "busybox", "sh", "-c", "sleep 1000"))
	defer e.b("rm", "-f", name)
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64-hex ID", id)
	}
	var found string
	for _, line := range strings.Split(e.ok("container", "ls"), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 1 && f[1] == "busybox" && strings.HasSuffix(line, name) {
			found = f[0]
		}
	}
	if found != id[:12] {
		t.Fatalf("container ls | awk '$2 == \"busybox\" {print $1}': %q, want %q", found, id[:12])
	}
	out := e.ok("exec", found, "sh", "-c", "grep Name /proc/[1-9]*/status")
	if !regexp.MustCompile(`^/proc/1/status:Name:\s+sleep\n/proc/\d+/status:Name:\s+grep\n$`).MatchString(out) {
		t.Errorf("exec grep Name: %q", out)
	}
	// The cpu quota in the container's own cgroup.
	pid := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Pid}}", name))
	if got := strings.TrimSpace(e.ok("inspect", "--format", "{{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}}", name)); got != "2000 1000" {
		t.Errorf("inspect cpu period/quota: %q", got)
	}
	cg, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var cpuDir string
	for _, l := range strings.Split(string(cg), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && (strings.Contains(","+f[1]+",", ",cpu,") || f[1] == "") {
			for _, root := range []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup"} {
				if _, err := os.Stat(filepath.Join(root, f[2], "cpu.cfs_quota_us")); err == nil {
					cpuDir = filepath.Join(root, f[2])
				} else if _, err := os.Stat(filepath.Join(root, f[2], "cpu.max")); err == nil && cpuDir == "" {
					cpuDir = filepath.Join(root, f[2])
				}
			}
		}
	}
	if cpuDir == "" {
		t.Errorf("no cpu cgroup of the container in %s", cg)
	} else if q, err := os.ReadFile(filepath.Join(cpuDir, "cpu.cfs_quota_us")); err == nil {
		p, _ := os.ReadFile(filepath.Join(cpuDir, "cpu.cfs_period_us"))
		if strings.TrimSpace(string(q)) != "1000" || strings.TrimSpace(string(p)) != "2000" {
			t.Errorf("%s: quota %q period %q", cpuDir, q, p)
		}
	} else if mx, err := os.ReadFile(filepath.Join(cpuDir, "cpu.max")); err != nil || strings.TrimSpace(string(mx)) != "1000 2000" {
		t.Errorf("%s/cpu.max: %q %v", cpuDir, mx, err)
	}
	// cp the burner in and exec it (a terminal is not needed to count).
	if r := e.b("cp", e.berth, found+":/cpu_burner"); r.code != 0 {
		t.Fatalf("cp: %v", r)
	}
	out = e.ok("exec", found, "/cpu_burner", "bench", "cpu", "--seconds", "2")
	if !regexp.MustCompile(`(?m)^\[\d+\] 1: elapsed/cpu = [\d.]+; %CPU = [\d.]+$`).MatchString(out) {
		t.Errorf("burner in the container: %q", out)
	}

	// seccomp: unshare allowed by default, killed by the talk's profile.
	// (Whether unshare -U succeeds under the default profile depends on
	// the daemon's user-namespace set-up; both CLIs must agree on it.)
	br, dr = e.both("run", "--rm", "busybox", "sh", "-c", "unshare -U echo hi")
	if br.out != dr.out {
		t.Errorf("unshare -U under the default profile: berth %v\ndocker %v", br, dr)
	}
	prof := filepath.Join(t.TempDir(), "deny_unshare.json")
	os.WriteFile(prof, []byte(`{ "defaultAction" : "SCMP_ACT_ALLOW",
  "syscalls": [ { "name" : "unshare", "action" : "SCMP_ACT_KILL" } ] }`), 0o644)
	br, dr = e.both("run", "--rm", "--security-opt=seccomp="+prof, "busybox", "sh", "-c", "unshare -U echo hi")
	if br.code != 159 || br.out != "" {
		t.Errorf("deny_unshare.json: want exit 159 and no output, got %v\ndocker %v", br, dr)
	}
}

// Exit codes and error wording, berth next to docker.
func TestCLIExitCodesAndErrors(t *testing.T) {
	e := newCLIEnv(t)
	cases := []struct {
		args []string
		code int
		want string // in berth's stderr
	}{
		{[]string{"run", "--rm", "busybox", "sh", "-c", "exit 3"}, 3, ""},
		{[]string{"run", "--rm", "busybox", "sh", "-c", `sh -c 'kill -9 $$'; exit $?`}, 137, ""},
		{[]string{"run", "busybox", "nosuchcmd"}, 127, `exec: "nosuchcmd": executable file not found in $PATH`},
		{[]string{"run", "busybox", "/etc"}, 126, "Run 'berth run --help' for more information"},
		{[]string{"run", "--nosuchflag", "busybox"}, 125, "unknown flag: --nosuchflag"},
		{[]string{"run", "-m", "lots", "busybox", "true"}, 125, `invalid argument "lots" for "-m, --memory" flag`},
		{[]string{"run"}, 1, "'berth run' requires at least 1 argument"},
		{[]string{"rm", "berth-test-nosuch"}, 1, "Error response from daemon: No such container: berth-test-nosuch"},
		{[]string{"stop", "berth-test-nosuch"}, 1, "Error response from daemon: No such container: berth-test-nosuch"},
		{[]string{"logs", "berth-test-nosuch"}, 1, "Error response from daemon: No such container: berth-test-nosuch"},
		{[]string{"exec", "berth-test-nosuch", "true"}, 1, "Error response from daemon: No such container: berth-test-nosuch"},
		{[]string{"inspect", "berth-test-nosuch"}, 1, "Error: No such object: berth-test-nosuch"},
		{[]string{"rmi", "berth-test-nosuch"}, 1, "No such image"},
		{[]string{"ps", "--nosuchflag"}, 125, "unknown flag: --nosuchflag"},
	}
	for _, c := range cases {
		br, dr := e.both(c.args...)
		if br.code != c.code || !strings.Contains(br.err, c.want) {
			t.Errorf("berth %v: want exit %d and %q on stderr, got %v", c.args, c.code, c.want, br)
		}
		if e.docker != "" && c.want != "" {
			dw := strings.ReplaceAll(strings.ReplaceAll(c.want, "berth", "docker"), "docker-test", "berth-test")
			if c.code != 125 || strings.Contains(c.want, "flag") {
				if !strings.Contains(dr.err, dw) {
					t.Logf("docker's wording differs for %v: %q", c.args, dr.err)
				}
			}
		}
	}
	e.ok("container", "prune", "--force")
	if r := e.b("nosuchverb"); r.code != 125 || !strings.Contains(r.err, "nosuchverb") {
		t.Errorf("unknown verb: %v", r)
	}
	if r := e.b("run", "--help"); r.code != 0 || !strings.Contains(r.out, "Usage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]") ||
		!strings.Contains(r.out, "--cpu-quota int") || !strings.Contains(r.out, "-m, --memory bytes") {
		t.Errorf("run --help: %v", r)
	}
	// No daemon at the address: docker's message and codes, nothing started.
	sock := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	r := e.b("-H", sock, "ps")
	if r.code != 1 || !strings.Contains(r.err, "Cannot connect to the berth daemon at "+sock) {
		t.Errorf("ps with no daemon: %v", r)
	}
	if r := e.b("-H", sock, "run", "busybox", "true"); r.code != 125 {
		t.Errorf("run with no daemon: %v", r)
	}
}

// Every container verb, with output checked against the daemon's state.
func TestCLIContainerVerbs(t *testing.T) {
	e := newCLIEnv(t)
	name := cliName(t, "verbs")
	id := strings.TrimSpace(e.ok("create", "--name", name, "-e", "GREETING=hi", "-l", "berth.test=yes", "-w", "/tmp",
		"busybox", "sh", "-c", `trap 'echo got TERM; exit 0' TERM; echo "$GREETING from $(pwd)"; echo to-stderr >&2; while :; do sleep 0.1; done`))
	defer e.b("rm", "-f", name)
	if st := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Status}}", name)); st != "created" {
		t.Errorf("state after create: %q", st)
	}
	if out := e.ok("start", name); out != name+"\n" {
		t.Errorf("start printed %q", out)
	}
	// ps: table, -q, --format, filters.
	ps := e.ok("ps", "--no-trunc", "--filter", "name="+name)
	if !regexp.MustCompile(`^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES\n`).MatchString(ps) || !strings.Contains(ps, id) || !strings.Contains(ps, "Up ") {
		t.Errorf("ps:\n%s", ps)
	}
	if q := e.ok("ps", "-q", "--filter", "label=berth.test=yes"); q != id[:12]+"\n" {
		t.Errorf("ps -q --filter label: %q", q)
	}
	if f := e.ok("ps", "-a", "--filter", "id="+id, "--format", "{{.Names}}|{{.State}}|{{.Label \"berth.test\"}}"); f != name+"|running|yes\n" {
		t.Errorf("ps --format: %q", f)
	}
	if f := e.ok("ps", "--filter", "id="+id, "--format", "table {{.ID}}\t{{.Names}}"); !regexp.MustCompile(`^CONTAINER ID\s+NAMES\n` + id[:12] + `\s+` + name + "\n$").MatchString(f) {
		t.Errorf("ps --format table: %q", f)
	}
	// logs: both streams, timestamps, tail.
	var logs cliResult
	for i := 0; i < 50; i++ {
		if logs = e.b("logs", name); strings.Contains(logs.err, "to-stderr") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if logs.out != "hi from /tmp\n" || logs.err != "to-stderr\n" {
		t.Errorf("logs: %v", logs)
	}
	if r := e.b("logs", "-t", "--tail", "1", name); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (hi from /tmp|to-stderr)\n$`).MatchString(r.out + r.err) {
		t.Errorf("logs -t --tail 1: %v", r)
	}
	if r := e.b("logs", "--since", "1h", "--until", "1ns", name); r.code != 0 {
		t.Errorf("logs --since/--until: %v", r)
	}
	// top, stats, exec with env and user, pause/unpause.
	if top := e.ok("top", name); !strings.HasPrefix(top, "UID") || !strings.Contains(top, "sh -c") {
		t.Errorf("top:\n%s", top)
	}
	st := e.ok("stats", "--no-stream", name)
	if !regexp.MustCompile(`^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE / LIMIT\s+MEM %\s+NET I/O\s+BLOCK I/O\s+PIDS\n` + id[:12] + `\s+` + name + `\s+[\d.]+%\s+\S+ / \S+\s+[\d.]+%`).MatchString(st) {
		t.Errorf("stats --no-stream:\n%s", st)
	}
	if out := e.ok("exec", "-e", "X=42", "-u", "nobody", "-w", "/etc", name, "sh", "-c", `echo $X $(id -u) $(pwd)`); out != "42 65534 /etc\n" {
		t.Errorf("exec -e -u -w: %q", out)
	}
	if r := e.run(e.berth, []byte("piped\n"), "exec", "-i", name, "cat"); r.out != "piped\n" {
		t.Errorf("exec -i: %v", r)
	}
	if r := e.b("exec", name, "sh", "-c", "exit 9"); r.code != 9 {
		t.Errorf("exec exit status: %v", r)
	}
	e.ok("pause", name)
	if s := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", name)); s != "paused true" {
		t.Errorf("after pause: %q", s)
	}
	e.ok("unpause", name)
	// update, rename, port, wait after stop.
	e.ok("update", "--memory", "64m", "--memory-swap", "128m", "--pids-limit", "50", name)
	if s := strings.TrimSpace(e.ok("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", name)); s != "67108864 50" {
		t.Errorf("after update: %q", s)
	}
	renamed := name + "-renamed"
	e.ok("rename", name, renamed)
	defer e.b("rm", "-f", renamed)
	if out := e.ok("inspect", "-f", "{{.Name}}", id); out != "/"+renamed+"\n" {
		t.Errorf("after rename: %q", out)
	}
	if r := e.b("rename", renamed, renamed); r.code == 0 {
		t.Errorf("rename to its own name succeeded: %v", r)
	}
	waitCh := make(chan cliResult, 1)
	go func() { waitCh <- e.b("wait", renamed) }()
	time.Sleep(200 * time.Millisecond)
	if out := e.ok("stop", "-t", "5", renamed); out != renamed+"\n" {
		t.Errorf("stop printed %q", out)
	}
	select {
	case w := <-waitCh:
		if w.out != "0\n" {
			t.Errorf("wait: %v", w)
		}
	case <-time.After(30 * time.Second):
		t.Error("wait did not return after stop")
	}
	if r := e.b("logs", renamed); !strings.Contains(r.out, "got TERM") {
		t.Errorf("stop did not send SIGTERM first: %v", r)
	}
	// restart, kill with a signal, rm.
	e.ok("restart", "-t", "1", renamed)
	if s := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Running}}", renamed)); s != "true" {
		t.Errorf("after restart running=%q", s)
	}
	e.ok("kill", "-s", "KILL", renamed)
	if w := e.ok("wait", renamed); w != "137\n" {
		t.Errorf("wait after kill -s KILL: %q", w)
	}
	if s := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.ExitCode}}", renamed)); s != "137" {
		t.Errorf("after kill: exit code %q", s)
	}
	if r := e.b("kill", renamed); r.code != 1 || !strings.Contains(r.err, "is not running") {
		t.Errorf("kill of a stopped container: %v", r)
	}
	e.ok("rm", renamed)
	if r := e.b("inspect", renamed); r.code != 1 {
		t.Errorf("inspect after rm: %v", r)
	}

	// run -i stdin, --rm leaves nothing, -e/--env-file, --entrypoint, -u, --read-only, caps.
	if r := e.run(e.berth, []byte("from stdin\n"), "run", "-i", "--rm", "busybox", "cat"); r.out != "from stdin\n" || r.code != 0 {
		t.Errorf("run -i: %v", r)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	os.WriteFile(envFile, []byte("# comment\nA=1\nB=two words\n"), 0o644)
	if out := e.ok("run", "--rm", "--env-file", envFile, "-e", "C=3", "busybox", "sh", "-c", `echo "$A|$B|$C"`); out != "1|two words|3\n" {
		t.Errorf("--env-file: %q", out)
	}
	if out := e.ok("run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint"); out != "via entrypoint\n" {
		t.Errorf("--entrypoint: %q", out)
	}
	if out := e.ok("run", "--rm", "-u", "65534:65534", "--hostname", "berthbox", "busybox", "sh", "-c", "id -u; id -g; hostname"); out != "65534\n65534\nberthbox\n" {
		t.Errorf("-u --hostname: %q", out)
	}
	if r := e.b("run", "--rm", "--read-only", "busybox", "touch", "/x"); r.code == 0 || !strings.Contains(r.err, "Read-only file system") {
		t.Errorf("--read-only: %v", r)
	}
	if out := e.ok("run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "busybox", "grep", "CapEff", "/proc/self/status"); !strings.HasSuffix(out, "0000000000001000\n") {
		t.Errorf("--cap-drop ALL --cap-add NET_ADMIN: %q", out)
	}
	if out := e.ok("run", "--rm", "--tmpfs", "/scratch:size=1m", "busybox", "sh", "-c", "grep /scratch /proc/mounts | cut -d' ' -f3"); out != "tmpfs\n" {
		t.Errorf("--tmpfs: %q", out)
	}
	if out := e.ok("run", "--rm", "--pids-limit", "20", "--memory", "32m", "busybox", "true"); out != "" {
		t.Errorf("--pids-limit --memory: %q", out)
	}
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "f"), []byte("bound\n"), 0o644)
	if out := e.ok("run", "--rm", "-v", hostDir+":/mnt:ro", "busybox", "sh", "-c", "cat /mnt/f; touch /mnt/g 2>&1 || true"); !strings.HasPrefix(out, "bound\n") || !strings.Contains(out, "Read-only") {
		t.Errorf("-v ro: %q", out)
	}
	if r := e.b("run", "-t", "--rm", "busybox", "sh", "-c", "exit 4"); r.code != 4 {
		t.Errorf("run -t exit status: %v", r)
	}
	before := e.ok("ps", "-aq")
	if out := e.ok("run", "--rm", "busybox", "true"); out != "" {
		t.Errorf("run --rm true printed %q", out)
	}
	if after := e.ok("ps", "-aq"); after != before {
		t.Errorf("run --rm left a container: before %q after %q", before, after)
	}
	cid := filepath.Join(t.TempDir(), "cid")
	did := strings.TrimSpace(e.ok("run", "-d", "--rm", "--cidfile", cid, "busybox", "sleep", "100"))
	if b, _ := os.ReadFile(cid); string(b) != did {
		t.Errorf("--cidfile holds %q, run -d printed %q", b, did)
	}
	e.ok("rm", "-f", did)
	e.ok("container", "prune", "-f")
}

// cp both ways, like the talk's burner, plus directories and stdin/stdout tars.
func TestCLICopy(t *testing.T) {
	e := newCLIEnv(t)
	name := cliName(t, "cp")
	e.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
	defer e.b("rm", "-f", name)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "dir/sub"), 0o755)
	os.WriteFile(filepath.Join(src, "dir/sub/f"), []byte("deep\n"), 0o640)
	os.WriteFile(filepath.Join(src, "file"), []byte("top\n"), 0o600)
	e.ok("cp", filepath.Join(src, "file"), name+":/tmp/")        // into an existing directory
	e.ok("cp", filepath.Join(src, "file"), name+":/tmp/renamed") // to a new name
	e.ok("cp", filepath.Join(src, "dir"), name+":/tmp/newdir")   // a directory under a new name
	e.ok("cp", filepath.Join(src, "dir")+"/.", name+":/tmp/")    // a directory's contents
	out := e.ok("exec", name, "sh", "-c", "cat /tmp/file /tmp/renamed /tmp/newdir/sub/f /tmp/sub/f; stat -c %a /tmp/file")
	if out != "top\ntop\ndeep\ndeep\n600\n" {
		t.Errorf("after cp into the container: %q", out)
	}
	dst := t.TempDir()
	e.ok("cp", name+":/tmp/newdir", filepath.Join(dst, "back"))
	e.ok("cp", name+":/etc/passwd", dst)
	if b, err := os.ReadFile(filepath.Join(dst, "back/sub/f")); err != nil || string(b) != "deep\n" {
		t.Errorf("cp a directory out: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "passwd")); err != nil || !strings.HasPrefix(string(b), "root:x:0:0:") {
		t.Errorf("cp a file out: %q %v", b, err)
	}
	r := e.b("cp", name+":/etc/hostname", "-")
	if r.code != 0 || !strings.Contains(r.out, "hostname") || len(r.out)%512 != 0 {
		t.Errorf("cp to stdout is not a tar stream: %v", r)
	}
	if r := e.run(e.berth, []byte(r.out), "cp", "-", name+":/root"); r.code != 0 {
		t.Errorf("cp a tar from stdin: %v", r)
	}
	if out := e.ok("exec", name, "ls", "/root"); out != "hostname\n" {
		t.Errorf("after cp -: %q", out)
	}
	br, _ := e.both("cp", name+":/nonexistent", dst)
	if br.code != 1 || !strings.Contains(br.err, "Could not find the file /nonexistent") {
		t.Errorf("cp of a missing file: %v", br)
	}
	// A file named like a directory of the container never replaces it
	// (the CLIs ask for noOverwriteDirNonDir): before, it wiped /etc.
	flat := t.TempDir()
	os.WriteFile(filepath.Join(flat, "etc"), []byte("flat\n"), 0o644)
	br, dr := e.both("cp", filepath.Join(flat, "etc"), name+":/")
	for _, r := range []cliResult{br, dr} {
		if r.code != 1 || !strings.Contains(r.err, "cannot overwrite directory") {
			t.Errorf("cp of a file over /etc: %v", r)
		}
	}
	if out := e.ok("exec", name, "sh", "-c", "test -d /etc && head -c 5 /etc/passwd"); out != "root:" {
		t.Errorf("/etc after the refused cp: %q", out)
	}
	// A symlink in the container pointing at a host path is copied as a link, never followed on the host.
	e.ok("exec", name, "ln", "-s", "/etc/shadow", "/tmp/evil")
	e.ok("cp", name+":/tmp/evil", filepath.Join(dst, "evil"))
	if l, err := os.Readlink(filepath.Join(dst, "evil")); err != nil || l != "/etc/shadow" {
		t.Errorf("symlink copied out: %q %v", l, err)
	}
}

// Images: images, tag, inspect, history, save, load, rmi, import from stdin with --change and -m.
func TestCLIImageVerbs(t *testing.T) {
	e := newCLIEnv(t)
	br, dr := e.both("images")
	// The CREATED column ages between the two calls ("Less than a second
	// ago", then "1 second ago"): compare the rows without it.
	// The column widths follow it, so padding is compared as one gap.
	created, padding := regexp.MustCompile(`\s{2,}\S.* ago\s{2,}`), regexp.MustCompile(` {2,}`)
	norm := func(s string) string { return padding.ReplaceAllString(created.ReplaceAllString(s, " | "), " | ") }
	if !regexp.MustCompile(`^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\nbusybox\s+latest\s+[0-9a-f]{12}\s+.+ ago\s+[\d.]+MB\n$`).MatchString(br.out) ||
		norm(br.out) != norm(dr.out) {
		t.Errorf("images: berth %v\ndocker %v", br, dr)
	}
	tag := "berth-test/tagged:v1"
	e.ok("tag", "busybox", tag)
	ids := e.ok("images", "-q", "--no-trunc")
	if !strings.HasPrefix(ids, "sha256:") || strings.Count(ids, "\n") != 1 {
		t.Errorf("images -q --no-trunc (one image, two tags): %q", ids)
	}
	if out := e.ok("image", "inspect", "-f", "{{.Id}} {{json .RepoTags}}", tag); !strings.Contains(out, strings.TrimSpace(ids)) || !strings.Contains(out, tag) {
		t.Errorf("image inspect: %q", out)
	}
	if out := e.ok("history", tag); !strings.HasPrefix(out, "IMAGE") || !strings.Contains(out, "CREATED BY") {
		t.Errorf("history:\n%s", out)
	}
	t.Run("save-load", func(t *testing.T) { cliSaveLoad(t, e, tag) })
	var tb bytes.Buffer
	if err := busybox.WriteTar(&tb); err != nil {
		t.Fatal(err)
	}
	r := e.run(e.berth, tb.Bytes(), "import", "-c", "ENV FOO=bar", "-c", `CMD ["sh","-c","echo $FOO"]`, "-m", "imported by a test", "-", "berth-test/imported:v2")
	if r.code != 0 || !strings.HasPrefix(r.out, "sha256:") {
		t.Fatalf("import -: %v", r)
	}
	if out := e.ok("run", "--rm", "berth-test/imported:v2"); out != "bar\n" {
		t.Errorf("imported image's ENV and CMD: %q", out)
	}
	if out := e.ok("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "berth-test/imported"); out != "berth-test/imported:v2\n" {
		t.Errorf("image ls REPOSITORY filter: %q", out)
	}
	if r := e.b("rmi", "berth-test/imported:v2"); r.code != 0 || !strings.Contains(r.out, "Untagged: berth-test/imported:v2") {
		t.Errorf("rmi: %v", r)
	}
	exp := filepath.Join(t.TempDir(), "export.tar")
	name := cliName(t, "export")
	e.ok("create", "--name", name, "busybox")
	defer e.b("rm", "-f", name)
	e.ok("export", "-o", exp, name)
	if fi, err := os.Stat(exp); err != nil || fi.Size() < 1<<20 {
		t.Errorf("export: %v %v", fi, err)
	}
}

// cliSaveLoad: save -o, rmi, load -i, load from stdin.
func cliSaveLoad(t *testing.T, e *cliEnv, tag string) {
	archive := filepath.Join(t.TempDir(), "saved.tar")
	r := e.b("save", "-o", archive, tag)
	if r.code != 0 && strings.Contains(r.err, "not supported yet") {
		t.Skipf("the daemon does not serve GET /images/get yet: %s", r.err)
	}
	if r.code != 0 {
		t.Fatalf("save: %v", r)
	}
	e.ok("rmi", tag)
	if r := e.b("image", "inspect", tag); r.code != 1 {
		t.Errorf("inspect after rmi: %v", r)
	}
	if out := e.ok("load", "-i", archive); out != "Loaded image: "+tag+"\n" {
		t.Errorf("load -i: %q", out)
	}
	data, _ := os.ReadFile(archive)
	e.ok("rmi", tag)
	if r := e.run(e.berth, data, "load"); r.out != "Loaded image: "+tag+"\n" {
		t.Errorf("load from stdin: %v", r)
	}
	if r := e.run(e.berth, nil, "save", tag); r.code != 0 || len(r.out) < 1<<20 {
		t.Errorf("save to a pipe: exit %d, %d bytes", r.code, len(r.out))
	}
}

// info, version, events, system df.
func TestCLISystemVerbs(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok("version")
	if !strings.Contains(out, "Client:\n Version:") || !strings.Contains(out, "Server: berth\n Engine:\n") || !strings.Contains(out, "API version:       1.41") {
		t.Errorf("version:\n%s", out)
	}
	if out := e.ok("version", "--format", "{{.Server.APIVersion}}"); out != "1.41\n" {
		t.Errorf("version --format: %q", out)
	}
	if out := e.ok("info"); !strings.Contains(out, "Server:\n Containers:") || !strings.Contains(out, "Cgroup Driver:") {
		t.Errorf("info:\n%s", out)
	}
	if out := e.ok("info", "--format", "{{.Images}}"); out != "1\n" {
		t.Errorf("info --format: %q", out)
	}
	if out := e.ok("system", "df"); !strings.HasPrefix(out, "TYPE") || !strings.Contains(out, "Images") {
		t.Errorf("system df:\n%s", out)
	}
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	name := cliName(t, "events")
	e.ok("run", "--rm", "--name", name, "busybox", "true")
	ev := e.ok("events", "--since", since, "--until", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		"--filter", "type=container", "--filter", "event=die", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	if !strings.Contains(ev, "container die "+name+"\n") {
		t.Errorf("events --filter event=die: %q", ev)
	}
}

// The daemon started on demand: a private socket, data root and exec
// root; the first command starts it (and says so once), later ones use it.
func TestCLIDaemonOnDemand(t *testing.T) {
	testutil.RequiresRoot(t)
	berth := testutil.BerthBinary(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "berth.sock")
	execRoot := filepath.Join(dir, "exec")
	// The host's /etc/berth/daemon.json stays out; containers go under a
	// cgroup parent of the test's own (removed after the daemon stops).
	cfg := filepath.Join(dir, "daemon.json")
	os.WriteFile(cfg, []byte(`{"cgroup-parent":"`+testutil.OwnCgroup(t, "ondemand")+`"}`), 0o644)
	env := append(os.Environ(), "DOCKER_HOST=unix://"+sock, "BERTH_DATA_ROOT="+filepath.Join(dir, "data"), "BERTH_EXEC_ROOT="+execRoot,
		"BERTH_DAEMON_CONFIG="+cfg)
	t.Cleanup(func() { stopDaemonAt(t, sock) })
	defer func() {
		cmd := exec.Command(berth, "container", "prune", "-f")
		cmd.Env = env
		cmd.Run()
	}()
	run := func(stdin []byte, args ...string) cliResult {
		cmd := exec.Command(berth, args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return cliResult{out.String(), errb.String(), code}
	}
	var tb bytes.Buffer
	if err := busybox.WriteTar(&tb); err != nil {
		t.Fatal(err)
	}
	r := run(tb.Bytes(), "import", "-", "busybox")
	if r.code != 0 || !strings.Contains(r.err, "started berth daemon") || !strings.Contains(r.err, filepath.Join(execRoot, "daemon.log")) {
		t.Fatalf("first command did not start the daemon: %v", r)
	}
	r = run(nil, "run", "busybox", "sh", "-c", `echo "hello world"`)
	if r.code != 0 || r.out != "hello world\n" || r.err != "" {
		t.Errorf("second command: %v", r)
	}
	// Without a data root of its own, a non-default socket gets no daemon.
	cmd := exec.Command(berth, "ps")
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(dir, "other.sock"))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Cannot connect to the berth daemon") {
		t.Errorf("ps at another socket: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "other.sock")); err == nil {
		t.Error("a daemon was started at a socket with no data root named")
	}
}

// stopDaemonAt ends the daemon listening on sock: its PID comes from the
// socket's peer credentials and is checked to be a berth daemon.
func stopDaemonAt(t *testing.T, sock string) {
	conn, err := syscallDialUnix(sock)
	if err != nil {
		return
	}
	cred, err := syscall.GetsockoptUcred(conn, syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	syscall.Close(conn)
	if err != nil {
		t.Errorf("peer credentials of %s: %v", sock, err)
		return
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cred.Pid))
	if !strings.Contains(string(cmdline), "daemon\x00") {
		t.Errorf("pid %d at %s is not a berth daemon: %q", cred.Pid, sock, cmdline)
		return
	}
	syscall.Kill(int(cred.Pid), syscall.SIGTERM)
	for i := 0; i < 200; i++ {
		if syscall.Kill(int(cred.Pid), 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(int(cred.Pid), syscall.SIGKILL)
}

func syscallDialUnix(path string) (int, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}
