package runtimecli

import (
	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/ns"
	"github.com/berth-dev/berth/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

func init() {
	register(&verb{"features", "print the features this runtime supports, as JSON", func(g *globals, args []string) error {
		if _, err := parse(flags("features"), args); err != nil {
			return err
		}
		return printJSON(featureSet())
	}})
}

func boolp(b bool) *bool { return &b }

func featureSet() *features.Features {
	var namespaces []string
	for _, t := range ns.Types {
		namespaces = append(namespaces, string(t.Spec))
	}
	var capNames []string
	for i := 0; i <= caps.MaxKnown; i++ {
		capNames = append(capNames, caps.Name(i))
	}
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specVersion,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions: []string{
			"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion", "lazytime",
			"loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand",
			"norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "rbind", "rdev", "rdiratime",
			"relatime", "remount", "rexec", "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnosuid",
			"rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime",
			"rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave", "strictatime", "suid",
			"symfollow", "sync", "unbindable",
		},
		Linux: &features.Linux{
			Namespaces:   namespaces,
			Capabilities: capNames,
			// The systemd driver: transient scopes over systemd's D-Bus
			// (cgroups/systemd), on v2, hybrid and v1 hosts; no user instance.
			Cgroup:          &features.Cgroup{V1: boolp(true), V2: boolp(true), Systemd: boolp(true), SystemdUser: boolp(false)},
			Seccomp:         seccomp.Features(),
			Apparmor:        &features.Apparmor{Enabled: boolp(false)},
			Selinux:         &features.Selinux{Enabled: boolp(false)},
			IntelRdt:        &features.IntelRdt{Enabled: boolp(false)},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: boolp(true)}},
		},
		Annotations: map[string]string{"org.opencontainers.runtime-spec.features.berth.version": Version},
	}
}
