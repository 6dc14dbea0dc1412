// Package testregistry starts Debian's docker-registry (the distribution
// registry server) on a free loopback port, optionally with htpasswd basic
// auth, for tests and benchmarks; it stops it by the PID it started and
// removes its storage. It touches nothing but its own directory.
package testregistry

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Binary is where Debian's docker-registry package installs the server.
const Binary = "/usr/bin/docker-registry"

// Options configure a registry.
type Options struct {
	// User and Password, when set, protect the registry with htpasswd
	// basic auth (bcrypt, generated here).
	User, Password string
}

// Registry is a running registry.
type Registry struct {
	Host string // 127.0.0.1:PORT
	Dir  string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

// Start runs a registry storing under dir (which it owns from now on).
func Start(dir string, opts Options) (*Registry, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("docker-registry not installed (apt-get install docker-registry): %w", err)
	}
	var lastErr error
	for range 5 { // the free port may be taken between probe and bind
		r, err := start(dir, opts)
		if err == nil {
			return r, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(dir string, opts Options) (*Registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o700); err != nil {
		return nil, err
	}
	auth := ""
	if opts.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(opts.User+":"+string(hash)+"\n"), 0o600); err != nil {
			return nil, err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", pw)
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: 127.0.0.1:%d
  secret: berth-test-secret
%s`, storage, port, auth)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(Binary, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", Binary, err)
	}
	r := &Registry{Host: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, cmd: cmd, log: log, done: make(chan error, 1)}
	go func() { r.done <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-r.done:
			log.Close()
			out, _ := os.ReadFile(log.Name())
			return nil, fmt.Errorf("docker-registry exited: %v: %s", err, strings.TrimSpace(string(out)))
		default:
		}
		resp, err := http.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return r, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Stop()
	return nil, fmt.Errorf("docker-registry on %s did not answer within 10s", r.Host)
}

// Stop ends the registry (by its PID) and waits for it.
func (r *Registry) Stop() {
	if r.cmd.Process != nil {
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			r.cmd.Process.Kill()
			<-r.done
		}
	}
	r.log.Close()
}

// StartT starts a registry for a test and stops it when the test ends;
// the test fails when docker-registry is not installed (hack/deps.sh
// installs it).
func StartT(t testing.TB, opts Options) *Registry {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("needs %s (apt-get install docker-registry, or make deps)", Binary)
	}
	r, err := Start(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}
