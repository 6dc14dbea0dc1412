package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/internal/busybox"
	"github.com/berth-dev/berth/internal/testregistry"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registry"
)

// startDaemon is testutil.StartDaemon: a private daemon, stopped at the end.
func startDaemon(t *testing.T, extra ...string) string { return testutil.StartDaemon(t, extra...) }

// seedRegistry pushes busybox (built from busybox-static) to the registry
// as berth-test/busybox:v1 and berth-test/other:v1, from a store of the
// test's own, and returns the manifest digest.
func seedRegistry(t *testing.T, ctx context.Context, reg *testregistry.Registry, auth *registry.AuthConfig) *registry.PushResult {
	t.Helper()
	src, err := image.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	if err := busybox.WriteTar(&tb); err != nil {
		t.Fatal(err)
	}
	var first *registry.PushResult
	for _, name := range []string{"busybox:v1", "other:v1"} {
		ref := reg.Host + "/berth-test/" + name
		if _, err := src.Import(bytes.NewReader(tb.Bytes()), ref, []string{`CMD ["sh"]`}, ""); err != nil {
			t.Fatal(err)
		}
		res, err := registry.Push(ctx, src, ref, registry.PushOptions{Auth: auth}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = res
		}
	}
	return first
}

// The talk's first step against a local registry, through the real docker
// CLI and berth's daemon: pull (progress drawn by the CLI), run, push
// under a new name with the same digest, run's automatic pull, and the
// errors dockerd gives.
func TestDockerCLIPullRunPush(t *testing.T) {
	testutil.RequiresRoot(t)
	dockerCLI, err := exec.LookPath("docker")
	if err != nil {
		t.Fatal("no docker CLI (make deps installs docker.io)")
	}
	reg := testregistry.StartT(t, testregistry.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pushed := seedRegistry(t, ctx, reg, nil)

	host := startDaemon(t)
	docker := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, dockerCLI, append([]string{"-H", host}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	ref := reg.Host + "/berth-test/busybox:v1"
	out, err := docker("pull", ref)
	if err != nil {
		t.Fatalf("docker pull: %v\n%s", err, out)
	}
	for _, want := range []string{"v1: Pulling from berth-test/busybox", ": Pull complete", "Digest: " + pushed.Digest.String(),
		"Status: Downloaded newer image for " + ref, "\n" + ref + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker pull output lacks %q:\n%s", want, out)
		}
	}
	if out, err := docker("run", "--rm", ref, "echo", "hello from the registry"); err != nil || out != "hello from the registry\n" {
		t.Errorf("docker run: %v %q", err, out)
	}
	if out, err := docker("pull", ref); err != nil || !strings.Contains(out, "Status: Image is up to date for "+ref) {
		t.Errorf("second pull: %v\n%s", err, out)
	}

	again := reg.Host + "/berth-test/again:v2"
	if out, err := docker("tag", ref, again); err != nil {
		t.Fatalf("docker tag: %v %s", err, out)
	}
	out, err = docker("push", again)
	if err != nil || !strings.Contains(out, "v2: digest: "+pushed.Digest.String()) || !strings.Contains(out, "Mounted from berth-test/busybox") {
		t.Errorf("docker push under a new name (want digest %s):\n%v %s", pushed.Digest, err, out)
	}

	// run pulls what it does not have.
	out, err = docker("run", "--rm", reg.Host+"/berth-test/other:v1", "sh", "-c", "echo $((6*7))")
	if err != nil || !strings.Contains(out, "Unable to find image") || !strings.HasSuffix(out, "\n42\n") {
		t.Errorf("docker run of an image not pulled yet: %v\n%s", err, out)
	}

	out, err = docker("pull", reg.Host+"/berth-test/nope:v1")
	if err == nil || !strings.Contains(out, "Error response from daemon: manifest for "+reg.Host+"/berth-test/nope:v1 not found: manifest unknown: manifest unknown") {
		t.Errorf("pull of a missing tag: %v\n%s", err, out)
	}
	out, err = docker("pull", "--platform", "linux/s390x", ref)
	if err == nil || !strings.Contains(out, "does not match the specified platform: wanted linux/s390x") {
		t.Errorf("pull for another platform: %v\n%s", err, out)
	}
}

// berth pull and berth push, with credentials from a docker config.json
// (sent to the daemon as X-Registry-Auth), against a registry with basic
// auth.
func TestBerthPullPushWithCredentials(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testregistry.StartT(t, testregistry.Options{User: "alice", Password: "s3cret"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pushed := seedRegistry(t, ctx, reg, &registry.AuthConfig{Username: "alice", Password: "s3cret"})
	host := startDaemon(t)
	cfgDir := t.TempDir()
	berth := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, testutil.BerthBinary(t), args...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfgDir, "DOCKER_HOST="+host)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	ref := reg.Host + "/berth-test/busybox:v1"
	out, err := berth("pull", ref)
	if err == nil || !strings.Contains(out, "Error response from daemon: pull access denied for "+reg.Host+"/berth-test/busybox") {
		t.Errorf("pull without credentials: %v\n%s", err, out)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = berth("pull", ref)
	if err != nil {
		t.Fatalf("berth pull: %v\n%s", err, out)
	}
	want := "v1: Pulling from berth-test/busybox\n"
	if !strings.HasPrefix(out, want) || !strings.HasSuffix(out, "Digest: "+pushed.Digest.String()+"\nStatus: Downloaded newer image for "+ref+"\n"+ref+"\n") ||
		strings.Contains(out, "Downloading") {
		t.Errorf("berth pull output (not a terminal: no byte counts):\n%s", out)
	}
	if out, err := berth("tag", ref, reg.Host+"/berth-test/mine:v3"); err != nil {
		// No berth tag verb yet: tag through the API with the docker CLI.
		if d, lerr := exec.LookPath("docker"); lerr == nil {
			if out, err := exec.Command(d, "-H", host, "tag", ref, reg.Host+"/berth-test/mine:v3").CombinedOutput(); err != nil {
				t.Fatalf("docker tag: %v %s", err, out)
			}
		} else {
			t.Fatalf("berth tag: %v %s", err, out)
		}
	}
	out, err = berth("push", reg.Host+"/berth-test/mine:v3")
	if err != nil || !strings.Contains(out, "v3: digest: "+pushed.Digest.String()) {
		t.Errorf("berth push: %v\n%s", err, out)
	}
	out, err = berth("pull", "-q", reg.Host+"/berth-test/other:v1")
	if err != nil || out != reg.Host+"/berth-test/other:v1\n" {
		t.Errorf("berth pull -q: %v %q", err, out)
	}
	if out, err := berth("pull", reg.Host+"/berth-test/nope:v1"); err == nil || !strings.Contains(out, "manifest unknown") {
		t.Errorf("berth pull of a missing tag: %v %s", err, out)
	}
}
