package image

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// ApplyChanges applies Dockerfile-like instructions, as `docker import
// --change` and `docker commit --change` take them, to an image config:
// CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, SHELL,
// STOPSIGNAL, USER, VOLUME and WORKDIR.
func ApplyChanges(cfg *dockerspec.DockerOCIImageConfig, changes []string) error {
	for _, line := range changes {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		instr, args, _ := strings.Cut(line, " ")
		args = strings.TrimSpace(args)
		if err := applyChange(cfg, strings.ToUpper(instr), args); err != nil {
			return fmt.Errorf("change %q: %w: %w", line, err, ErrInvalid)
		}
	}
	return nil
}

func applyChange(cfg *dockerspec.DockerOCIImageConfig, instr, args string) error {
	switch instr {
	case "CMD", "ENTRYPOINT", "SHELL":
		v, err := execOrShell(cfg, args, instr != "SHELL")
		if err != nil {
			return err
		}
		switch instr {
		case "CMD":
			cfg.Cmd = v
		case "ENTRYPOINT":
			cfg.Entrypoint = v
		case "SHELL":
			cfg.Shell = v
		}
	case "ENV":
		pairs, err := keyValues(args, true)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
		}
	case "LABEL":
		pairs, err := keyValues(args, false)
		if err != nil {
			return err
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		words, err := splitWords(args)
		if err != nil || len(words) == 0 {
			return fmt.Errorf("EXPOSE requires at least one argument")
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, w := range words {
			port, proto, _ := strings.Cut(w, "/")
			if proto == "" {
				proto = "tcp"
			}
			proto = strings.ToLower(proto)
			if proto != "tcp" && proto != "udp" && proto != "sctp" {
				return fmt.Errorf("invalid proto: %s", proto)
			}
			lo, hi, isRange := strings.Cut(port, "-")
			a, err1 := strconv.ParseUint(lo, 10, 16)
			b := a
			var err2 error
			if isRange {
				b, err2 = strconv.ParseUint(hi, 10, 16)
			}
			if err1 != nil || err2 != nil || b < a || b-a > 65535 {
				return fmt.Errorf("invalid containerPort: %s", port)
			}
			for p := a; p <= b; p++ {
				cfg.ExposedPorts[fmt.Sprintf("%d/%s", p, proto)] = struct{}{}
			}
		}
	case "VOLUME":
		var vols []string
		if strings.HasPrefix(args, "[") {
			if err := json.Unmarshal([]byte(args), &vols); err != nil {
				return fmt.Errorf("VOLUME: %w", err)
			}
		} else {
			var err error
			if vols, err = splitWords(args); err != nil {
				return err
			}
		}
		if len(vols) == 0 {
			return fmt.Errorf("VOLUME requires at least one argument")
		}
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			if strings.TrimSpace(v) == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case "WORKDIR":
		w := unquote(args)
		if w == "" {
			return fmt.Errorf("WORKDIR requires exactly one argument")
		}
		if !path.IsAbs(w) {
			base := cfg.WorkingDir
			if base == "" {
				base = "/"
			}
			w = path.Join(base, w)
		}
		cfg.WorkingDir = path.Clean(w)
	case "USER":
		u := unquote(args)
		if u == "" {
			return fmt.Errorf("USER requires exactly one argument")
		}
		cfg.User = u
	case "STOPSIGNAL":
		sig := unquote(args)
		if sig == "" {
			return fmt.Errorf("STOPSIGNAL requires exactly one argument")
		}
		cfg.StopSignal = sig
	case "ONBUILD":
		trigger, _, _ := strings.Cut(args, " ")
		switch strings.ToUpper(trigger) {
		case "", "ONBUILD", "FROM", "MAINTAINER":
			return fmt.Errorf("%s isn't allowed as an ONBUILD trigger", trigger)
		}
		cfg.OnBuild = append(cfg.OnBuild, args)
	case "HEALTHCHECK":
		hc, err := parseHealthcheck(args)
		if err != nil {
			return err
		}
		cfg.Healthcheck = hc
	default:
		return fmt.Errorf("%s is not a valid change command", instr)
	}
	return nil
}

// execOrShell parses the JSON (exec) form ["a","b"] or the shell form,
// which runs under the image's SHELL (default /bin/sh -c).
func execOrShell(cfg *dockerspec.DockerOCIImageConfig, args string, shellForm bool) ([]string, error) {
	if strings.HasPrefix(args, "[") {
		var v []string
		if err := json.Unmarshal([]byte(args), &v); err == nil {
			return v, nil
		}
		if !shellForm {
			return nil, fmt.Errorf("SHELL requires the JSON form")
		}
	}
	if !shellForm {
		return nil, fmt.Errorf("SHELL requires the JSON form")
	}
	if args == "" {
		return nil, nil
	}
	sh := cfg.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(append([]string{}, sh...), args), nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// keyValues parses `k=v k2="v 2"`, or for ENV also the old `k v…` form.
func keyValues(args string, legacy bool) ([][2]string, error) {
	words, err := splitWords(args)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("requires at least one argument")
	}
	first, _ := splitWordsRaw(args)
	if legacy && len(first) > 0 && !strings.Contains(first[0], "=") {
		name := words[0]
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(args), first[0]))
		return [][2]string{{name, unquote(rest)}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: key=value expected", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func unquote(s string) string {
	w, err := splitWords(s)
	if err != nil || len(w) == 0 {
		return strings.TrimSpace(s)
	}
	return strings.Join(w, " ")
}

// splitWords splits on blanks, honouring "double" and 'single' quotes and
// backslash escapes, and removes the quotes.
func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, quote, esc := false, rune(0), false
	for _, c := range s {
		switch {
		case esc:
			cur.WriteRune(c)
			esc, in = false, true
		case c == '\\' && quote != '\'':
			esc = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if esc {
		cur.WriteRune('\\')
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// splitWordsRaw splits on blanks outside quotes, keeping the quotes.
func splitWordsRaw(s string) ([]string, error) {
	var out []string
	start, quote := -1, rune(0)
	for i, c := range s {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
			if start < 0 {
				start = i
			}
		case c == ' ' || c == '\t':
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out, nil
}

func parseHealthcheck(args string) (*dockerspec.HealthcheckConfig, error) {
	hc := &dockerspec.HealthcheckConfig{}
	rest := strings.TrimSpace(args)
	if strings.EqualFold(rest, "NONE") {
		hc.Test = []string{"NONE"}
		return hc, nil
	}
	for strings.HasPrefix(rest, "--") {
		flag, r, _ := strings.Cut(rest, " ")
		rest = strings.TrimSpace(r)
		k, v, ok := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		if !ok {
			return nil, fmt.Errorf("HEALTHCHECK flag %s needs a value", flag)
		}
		var err error
		switch k {
		case "interval":
			hc.Interval, err = time.ParseDuration(v)
		case "timeout":
			hc.Timeout, err = time.ParseDuration(v)
		case "start-period":
			hc.StartPeriod, err = time.ParseDuration(v)
		case "start-interval":
			hc.StartInterval, err = time.ParseDuration(v)
		case "retries":
			hc.Retries, err = strconv.Atoi(v)
		default:
			return nil, fmt.Errorf("unknown HEALTHCHECK flag --%s", k)
		}
		if err != nil {
			return nil, fmt.Errorf("HEALTHCHECK --%s: %w", k, err)
		}
	}
	word, cmd, _ := strings.Cut(rest, " ")
	if !strings.EqualFold(word, "CMD") {
		return nil, fmt.Errorf("HEALTHCHECK: unknown type %q, expected CMD or NONE", word)
	}
	cmd = strings.TrimSpace(cmd)
	var v []string
	if strings.HasPrefix(cmd, "[") && json.Unmarshal([]byte(cmd), &v) == nil {
		hc.Test = append([]string{"CMD"}, v...)
	} else if cmd != "" {
		hc.Test = []string{"CMD-SHELL", cmd}
	} else {
		return nil, fmt.Errorf("HEALTHCHECK CMD needs a command")
	}
	return hc, nil
}
