package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// TestEngineGoClient drives berth daemon with Docker's official Go client
// (API version negotiated from the ping), as SDK users and tools do.
func TestEngineGoClient(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	cli, err := client.NewClientWithOpts(client.WithHost(e.host()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	ping, err := cli.Ping(ctx)
	if err != nil || ping.APIVersion != "1.41" || ping.OSType != "linux" {
		t.Fatalf("ping: %+v %v", ping, err)
	}
	if v, err := cli.ServerVersion(ctx); err != nil || v.APIVersion != "1.41" {
		t.Fatalf("version: %+v %v", v, err)
	}
	imgs, err := cli.ImageList(ctx, image.ListOptions{})
	if err != nil || len(imgs) != 1 || imgs[0].RepoTags[0] != "busybox:latest" {
		t.Fatalf("images: %+v %v", imgs, err)
	}
	evCtx, evCancel := context.WithCancel(ctx)
	defer evCancel()
	evs, evErrs := cli.Events(evCtx, events.ListOptions{Filters: filters.NewArgs(filters.Arg("type", "container"), filters.Arg("event", "die"))})

	created, err := cli.ContainerCreate(ctx, &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 4"},
		AttachStdout: true, AttachStderr: true}, &container.HostConfig{}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	att, err := cli.ContainerAttach(ctx, created.ID, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	waitC, waitErr := cli.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	stdcopy.StdCopy(&out, &errb, att.Reader)
	att.Close()
	if out.String() != "out\n" || errb.String() != "err\n" {
		t.Fatalf("attach: %q %q", out.String(), errb.String())
	}
	select {
	case w := <-waitC:
		if w.StatusCode != 4 {
			t.Fatalf("wait: %+v", w)
		}
	case err := <-waitErr:
		t.Fatal(err)
	}
	select {
	case ev := <-evs:
		if ev.Actor.ID != created.ID || ev.Actor.Attributes["exitCode"] != "4" {
			t.Fatalf("die event: %+v", ev)
		}
	case err := <-evErrs:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("no die event")
	}
	logs, err := cli.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	stdcopy.StdCopy(&out, &errb, logs)
	logs.Close()
	if out.String() != "out\n" || errb.String() != "err\n" {
		t.Fatalf("logs: %q %q", out.String(), errb.String())
	}
	ins, err := cli.ContainerInspect(ctx, created.ID)
	if err != nil || ins.State.ExitCode != 4 || ins.State.Status != "exited" || ins.Config.Image != "busybox" {
		t.Fatalf("inspect: %+v %v", ins.State, err)
	}
	if err := cli.ContainerRemove(ctx, created.ID, container.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerInspect(ctx, created.ID); !client.IsErrNotFound(err) {
		t.Fatalf("inspect after remove: %v", err)
	}

	// A running container: exec, stats, cp both ways.
	run, err := cli.ContainerCreate(ctx, &container.Config{Image: "busybox", Cmd: []string{"sleep", "1000"}}, &container.HostConfig{AutoRemove: true}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, run.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	ex, err := cli.ContainerExecCreate(ctx, run.ID, container.ExecOptions{Cmd: []string{"sh", "-c", "cat /proc/1/comm; exit 2"}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	ea, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	stdcopy.StdCopy(&out, io.Discard, ea.Reader)
	ea.Close()
	if out.String() != "sleep\n" {
		t.Fatalf("exec output %q", out.String())
	}
	ei, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil || ei.ExitCode != 2 || ei.Running {
		t.Fatalf("exec inspect: %+v %v", ei, err)
	}
	st, err := cli.ContainerStatsOneShot(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var s container.StatsResponse
	json.NewDecoder(st.Body).Decode(&s)
	st.Body.Close()
	if s.ID != run.ID || s.PidsStats.Current != 1 || s.MemoryStats.Usage == 0 {
		t.Fatalf("stats: id %s pids %d mem %d", s.ID, s.PidsStats.Current, s.MemoryStats.Usage)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 3})
	tw.Write([]byte("hi\n"))
	tw.Close()
	if err := cli.CopyToContainer(ctx, run.ID, "/tmp", &tb, container.CopyToContainerOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, stat, err := cli.CopyFromContainer(ctx, run.ID, "/tmp/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	body, _ := io.ReadAll(tr)
	rc.Close()
	if err != nil || h.Name != "hello.txt" || string(body) != "hi\n" || stat.Name != "hello.txt" || stat.Size != 3 {
		t.Fatalf("copy from: %v %+v %q %+v", err, h, body, stat)
	}
	if _, err := cli.ContainerStatPath(ctx, run.ID, "/no/such"); !client.IsErrNotFound(err) {
		t.Fatalf("stat of a missing path: %v", err)
	}
	timeout := 1
	if err := cli.ContainerStop(ctx, run.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	rmC, rmErr := cli.ContainerWait(ctx, run.ID, container.WaitConditionRemoved)
	select {
	case <-rmC:
	case err := <-rmErr:
		if !client.IsErrNotFound(err) && !strings.Contains(err.Error(), "No such container") {
			t.Fatal(err)
		}
	}
	if _, err := cli.ContainerInspect(ctx, run.ID); !client.IsErrNotFound(err) {
		t.Fatalf("AutoRemove left the container: %v", err)
	}
}
