package devices

import (
	"fmt"

	"github.com/berth-dev/berth/cgroups/internal/cgfs"
)

// Line is one write to a v1 devices file.
type Line struct {
	File  string // devices.allow or devices.deny
	Value string
}

// V1Lines renders rules as writes to devices.allow/devices.deny: a reset
// rule becomes "a", a type-"a" exception its c and b halves.
func V1Lines(rules []Rule) []Line {
	var out []Line
	for _, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if r.isReset() {
			out = append(out, Line{file, "a"})
			continue
		}
		for _, one := range expand(r) {
			out = append(out, Line{file, one.String()})
		}
	}
	return out
}

// SetV1 applies rules to the v1 devices cgroup dir. The cgroup is first
// reset to what the first rule implies, so an update replaces the old
// policy instead of adding to it.
func SetV1(dir string, rules []Rule) error {
	lines := V1Lines(rules)
	if len(rules) > 0 && !rules[0].isReset() {
		// Start from "allow all" like a fresh cgroup: the rules are then
		// read as exceptions to it, as Emulate does.
		lines = append([]Line{{"devices.allow", "a"}}, lines...)
	}
	for _, l := range lines {
		if err := cgfs.Write(dir, l.File, l.Value); err != nil {
			return fmt.Errorf("device rule: %w", err)
		}
	}
	return nil
}
