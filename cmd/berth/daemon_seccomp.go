package main

import (
	"crypto/sha256"
	"strings"
	"sync"

	"github.com/berth-dev/berth/engine/config"
	"github.com/berth-dev/berth/seccomp"
	"github.com/berth-dev/berth/specopts"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompBuilder compiles the container's profile: the daemon's default
// (seccomp-profile, or Docker's built-in one) or the user's inline JSON,
// for the container's capability set, as dockerd does. Converting a
// profile parses its JSON (Docker's default: hundreds of syscall names),
// so results are kept by profile and capability set: containers share
// the result, which nothing modifies.
func seccompBuilder(cfg *config.Config) specopts.SeccompBuilder {
	if cfg.SeccompProfile == "unconfined" {
		return nil
	}
	var (
		mu    sync.Mutex
		cache = map[[32]byte]*specs.LinuxSeccomp{}
	)
	return func(profile []byte, caps []string) (*specs.LinuxSeccomp, error) {
		h := sha256.New()
		h.Write(profile)
		h.Write([]byte{0})
		h.Write([]byte(strings.Join(caps, ",")))
		if profile == nil {
			h.Write([]byte{1}) // the built-in default, not an empty profile
		}
		var key [32]byte
		h.Sum(key[:0])
		mu.Lock()
		sc, ok := cache[key]
		mu.Unlock()
		if ok {
			return sc, nil
		}
		var err error
		if profile == nil {
			sc, err = seccomp.DefaultProfile(caps)
		} else {
			sc, err = seccomp.FromDockerJSON(profile, caps)
		}
		if err != nil {
			return nil, err
		}
		mu.Lock()
		if len(cache) >= 64 {
			clear(cache)
		}
		cache[key] = sc
		mu.Unlock()
		return sc, nil
	}
}
