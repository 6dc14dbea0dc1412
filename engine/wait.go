package engine

import (
	"context"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/docker/docker/api/types/container"
)

// Wait registers a waiter and returns a function that blocks until the
// condition holds ("not-running" (default), "next-exit" or "removed") or
// ctx ends. Registration happens before Wait returns, so a caller can send
// the response headers and only then block, and a start that follows
// cannot be missed.
func (e *Engine) Wait(ref string, condition container.WaitCondition) (func(ctx context.Context) (container.WaitResponse, error), error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	switch condition {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return nil, errdefs.InvalidParameterf("invalid condition: %q", condition)
	}
	c.mu.Lock()
	startExits := c.State.Exits
	c.mu.Unlock()
	return func(ctx context.Context) (container.WaitResponse, error) {
		for {
			c.mu.Lock()
			st := c.State
			removed := c.removed
			ch := c.changed
			c.mu.Unlock()
			done := false
			switch condition {
			case container.WaitConditionNextExit:
				done = st.Exits > startExits || removed
			case container.WaitConditionRemoved:
				done = removed
			default:
				done = !st.Running() && st.Status != "restarting"
			}
			if done {
				resp := container.WaitResponse{StatusCode: int64(st.ExitCode)}
				if st.Error != "" && !removed {
					resp.Error = &container.WaitExitError{Message: st.Error}
				}
				return resp, nil
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return container.WaitResponse{}, ctx.Err()
			}
		}
	}, nil
}
