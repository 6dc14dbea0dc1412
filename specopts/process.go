package specopts

import (
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WithArgs sets the command line (entrypoint + cmd, already combined).
func WithArgs(args []string) Opt {
	return func(s *specs.Spec) error {
		if len(args) == 0 {
			return invalid("no command specified")
		}
		s.Process.Args = append([]string(nil), args...)
		return nil
	}
}

// WithEnv merges env (image env first, then the user's) into the process
// environment; later entries replace earlier ones with the same name, and
// PATH keeps the default unless one is given.
func WithEnv(env ...[]string) Opt {
	return func(s *specs.Spec) error {
		for _, list := range env {
			for _, kv := range list {
				s.Process.Env = replaceEnv(s.Process.Env, kv)
			}
		}
		return nil
	}
}

func replaceEnv(env []string, kv string) []string {
	name, _, hasEq := strings.Cut(kv, "=")
	if !hasEq {
		// "-e NAME" without a value is resolved by the client; a bare name
		// here has no value to set.
		return env
	}
	for i, e := range env {
		if n, _, _ := strings.Cut(e, "="); n == name {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// WithCwd sets the working directory (default "/").
func WithCwd(dir string) Opt {
	return func(s *specs.Spec) error {
		if dir == "" {
			return nil
		}
		if !strings.HasPrefix(dir, "/") {
			return invalid("the working directory '%s' is invalid, it needs to be an absolute path", dir)
		}
		s.Process.Cwd = dir
		return nil
	}
}

// WithTTY gives the process a terminal of the given size (0 = unknown).
func WithTTY(tty bool, height, width uint) Opt {
	return func(s *specs.Spec) error {
		s.Process.Terminal = tty
		if tty {
			s.Process.Env = replaceEnv(s.Process.Env, "TERM=xterm")
			if height > 0 && width > 0 {
				s.Process.ConsoleSize = &specs.Box{Height: height, Width: width}
			}
		}
		return nil
	}
}

// WithHostname sets the hostname (and domain name) of the UTS namespace,
// and HOSTNAME in the environment, as Docker does.
func WithHostname(hostname, domain string) Opt {
	return func(s *specs.Spec) error {
		if hostname == "" {
			return nil
		}
		if hasNamespace(s, specs.UTSNamespace) {
			s.Hostname = hostname
			s.Domainname = domain
		}
		s.Process.Env = replaceEnv(s.Process.Env, "HOSTNAME="+hostname)
		return nil
	}
}

// WithUser sets the process credentials.
func WithUser(u User) Opt {
	return func(s *specs.Spec) error {
		s.Process.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
		if u.Home != "" {
			found := false
			for _, e := range s.Process.Env {
				if strings.HasPrefix(e, "HOME=") {
					found = true
				}
			}
			if !found {
				s.Process.Env = append(s.Process.Env, "HOME="+u.Home)
			}
		}
		return nil
	}
}

// WithAnnotations copies annotations into the spec.
func WithAnnotations(a map[string]string) Opt {
	return func(s *specs.Spec) error {
		if len(a) == 0 {
			return nil
		}
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for k, v := range a {
			s.Annotations[k] = v
		}
		return nil
	}
}
