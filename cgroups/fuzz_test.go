package cgroups

import (
	"encoding/json"
	"path"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/cgroups/devices"
	v2 "github.com/berth-dev/berth/cgroups/v2"
)

// cgroupsPath comes from an untrusted config.json: whatever it is, an
// accepted path stays below the hierarchy it is placed in.
func FuzzInnerPath(f *testing.F) {
	for _, s := range []string{"", "/berth/abc", "../../etc", "/a/../../b", "a/./b//c", "\x00", "/.."} {
		f.Add(s, "abc")
	}
	f.Fuzz(func(t *testing.T, p, id string) {
		inner, abs, err := InnerPath(p, id)
		if err != nil {
			return
		}
		for _, own := range []string{"/", "/user.slice/x"} {
			for _, parent := range []bool{false, true} {
				got := hostPath("/sys/fs/cgroup/cpu", "/", own, inner, abs, parent)
				if got == "/sys/fs/cgroup/cpu" || !strings.HasPrefix(got, "/sys/fs/cgroup/cpu/") || path.Clean(got) != got {
					t.Fatalf("InnerPath(%q, %q) = %q → %q escapes or is the root", p, id, inner, got)
				}
			}
		}
	})
}

// linux.resources is untrusted too: validation never panics, and what it
// accepts converts without panicking.
func FuzzResources(f *testing.F) {
	for _, s := range []string{
		`{"cpu":{"quota":1000,"period":2000,"cpus":"0-1"}}`,
		`{"memory":{"limit":33554432,"swap":33554432}}`,
		`{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]}`,
		`{"blockIO":{"throttleReadBpsDevice":[{"major":7,"minor":0,"rate":1048576}]}}`,
		`{"unified":{"memory.high":"1"}}`,
		`{"hugepageLimits":[{"pageSize":"2MB","limit":1}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r specs.LinuxResources
		if json.Unmarshal(b, &r) != nil {
			return
		}
		if ValidateResources(&r) != nil {
			return
		}
		rules, err := devices.FromSpec(r.Devices)
		if err != nil {
			t.Fatalf("validated device rules rejected: %v", err)
		}
		devices.Program(devices.Emulate(devices.Effective(rules)))
		devices.V1Lines(rules)
		if r.BlockIO != nil {
			v2.IOMaxLines(r.BlockIO)
		}
	})
}
