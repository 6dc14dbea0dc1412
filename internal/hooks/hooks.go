// Package hooks runs OCI lifecycle hooks: each hook's program with its
// args and env, the container state as JSON on stdin, and its timeout.
// It does not decide when hooks run; the runtime and the init stage do.
package hooks

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Run executes hooks in order and stops at the first failure. kind names
// the hook list in errors ("createRuntime", "poststop", …).
func Run(kind string, list []specs.Hook, state []byte) error {
	for i, h := range list {
		if err := runOne(h, state); err != nil {
			return fmt.Errorf("%s hook #%d (%s): %w", kind, i, h.Path, err)
		}
	}
	return nil
}

// RunAll executes every hook in order, whatever the others do, and
// returns the failures (poststart and poststop hooks: a failure is a
// warning and the remaining hooks still run).
func RunAll(kind string, list []specs.Hook, state []byte) []error {
	var errs []error
	for i, h := range list {
		if err := runOne(h, state); err != nil {
			errs = append(errs, fmt.Errorf("%s hook #%d (%s): %w", kind, i, h.Path, err))
		}
	}
	return errs
}

func runOne(h specs.Hook, state []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout %d is not positive", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	}
	cmd.Env = h.Env
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}
