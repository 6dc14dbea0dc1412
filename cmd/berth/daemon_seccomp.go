package main

import (
	"github.com/berth-dev/berth/engine/config"
	"github.com/berth-dev/berth/seccomp"
	"github.com/berth-dev/berth/specopts"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompBuilder compiles the container's profile: the daemon's default
// (seccomp-profile, or Docker's built-in one) or the user's inline JSON,
// for the container's capability set, as dockerd does.
func seccompBuilder(cfg *config.Config) specopts.SeccompBuilder {
	if cfg.SeccompProfile == "unconfined" {
		return nil
	}
	return func(profile []byte, caps []string) (*specs.LinuxSeccomp, error) {
		if profile == nil {
			return seccomp.DefaultProfile(caps)
		}
		return seccomp.FromDockerJSON(profile, caps)
	}
}
