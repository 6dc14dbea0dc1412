package main

// The daemon on demand: when no daemon answers at the chosen unix socket
// and the caller is root, the CLI starts `berth daemon` itself (detached,
// in its own session, logging to a file), waits for /_ping and says so on
// stderr once. So one command works on a fresh machine:
//
//	berth run busybox sh -c 'echo "hello world"'
//
// It starts a daemon only where it cannot collide with another one: at the
// default socket with the default data root, or at any socket when the
// caller names a data root of its own, with BERTH_DATA_ROOT or a daemon
// configuration BERTH_DAEMON_CONFIG (tests use a private socket, data root
// and exec root). BERTH_DATA_ROOT, BERTH_EXEC_ROOT and BERTH_DAEMON_CONFIG
// are passed on as --data-root, --exec-root and --config; the log goes to
// daemon.log in the exec root (or data root) named, beside a private
// socket, else /var/log/berth/daemon.log. BERTH_AUTOSTART=0 turns it off.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/client"
)

const (
	defaultDaemonLog = "/var/log/berth/daemon.log"
	autostartTimeout = 30 * time.Second
)

// connectDaemon returns a client of the daemon at host, starting one when
// none answers and starting is allowed.
func connectDaemon(ctx context.Context, host string, stderr io.Writer) (*client.Client, error) {
	c, err := client.New(host)
	if err != nil {
		return nil, err
	}
	_, err = c.Ping(ctx)
	if err == nil || !client.IsConnectError(err) {
		return c, nil // a daemon answered (even with an error): let the call say it
	}
	network, sock, _ := client.ParseHost(host)
	dataRoot := os.Getenv("BERTH_DATA_ROOT")
	if network != "unix" || os.Geteuid() != 0 || isFalse(os.Getenv("BERTH_AUTOSTART")) ||
		(host != client.DefaultHost && dataRoot == "" && os.Getenv("BERTH_DAEMON_CONFIG") == "") {
		return nil, err
	}
	if err := spawnDaemon(ctx, c, host, sock, dataRoot, stderr); err != nil {
		return nil, err
	}
	return c, nil
}

func isFalse(s string) bool {
	switch strings.ToLower(s) {
	case "0", "false", "no", "off":
		return true
	}
	return false
}

// spawnDaemon spawns `berth daemon` for the socket, under a lock beside
// the socket so that concurrent CLIs start one daemon, not several.
func spawnDaemon(ctx context.Context, c *client.Client, host, sock, dataRoot string, stderr io.Writer) error {
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		return fmt.Errorf("start the berth daemon: %w", err)
	}
	lock, err := os.OpenFile(sock+".lock", os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("start the berth daemon: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("start the berth daemon: lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := c.Ping(ctx); err == nil {
		return nil // another CLI started it meanwhile
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start the berth daemon: %w", err)
	}
	args := []string{"daemon", "-H", host}
	logPath := defaultDaemonLog
	if dataRoot != "" {
		args = append(args, "--data-root", dataRoot)
	}
	if e := os.Getenv("BERTH_EXEC_ROOT"); e != "" {
		args = append(args, "--exec-root", e)
		logPath = filepath.Join(e, "daemon.log")
	} else if dataRoot != "" {
		logPath = filepath.Join(dataRoot, "daemon.log")
	} else if host != client.DefaultHost {
		logPath = filepath.Join(filepath.Dir(sock), "daemon.log")
	}
	if cfg := os.Getenv("BERTH_DAEMON_CONFIG"); cfg != "" {
		args = append(args, "--config", cfg)
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return fmt.Errorf("start the berth daemon: %w", err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("start the berth daemon: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(self, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the berth daemon (%s %s): %w", self, strings.Join(args, " "), err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Fprintf(stderr, "berth: no daemon answered at %s: started berth daemon (pid %d, log %s)\n", host, pid, logPath)
	deadline := time.Now().Add(autostartTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("berth daemon (pid %d) exited at start-up: %v; see %s:\n%s", pid, err, logPath, tail(logPath, 2048))
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := c.Ping(ctx); err == nil {
			cmd.Process.Release()
			return nil
		}
	}
	return fmt.Errorf("berth daemon (pid %d) did not answer at %s within %s; see %s", pid, host, autostartTimeout, logPath)
}

func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}
