package specopts

import (
	"encoding/json"
	"testing"

	"github.com/docker/docker/api/types/container"
)

// FuzzHostConfig: a HostConfig from an API body becomes a spec or a clear
// error, never a panic.
func FuzzHostConfig(f *testing.F) {
	for _, s := range []string{`{}`, `{"CapAdd":["ALL"],"CapDrop":["CHOWN"]}`, `{"Binds":["/a:/b:ro"],"Tmpfs":{"/run":"size=1m"}}`,
		`{"CpuPeriod":2000,"CpuQuota":1000,"Memory":67108864,"PidsLimit":5,"CpusetCpus":"0-1"}`,
		`{"Ulimits":[{"Name":"nofile","Soft":10,"Hard":20}],"SecurityOpt":["no-new-privileges","seccomp=unconfined"]}`,
		`{"IpcMode":"host","PidMode":"host","NetworkMode":"none","CgroupnsMode":"private","Mounts":[{"Type":"tmpfs","Target":"/t"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var hc container.HostConfig
		if json.Unmarshal(data, &hc) != nil {
			return
		}
		sec, err := ParseSecurityOpts(hc.SecurityOpt)
		if err != nil {
			return
		}
		s := Default()
		Apply(s,
			WithCapabilities(hc.CapAdd, hc.CapDrop),
			WithSecurity(sec, hc.Privileged, nil, nil),
			WithResources(hc.Resources),
			WithUlimits(nil, hc.Ulimits, false),
			WithNamespaces(NamespaceModes{IPC: hc.IpcMode, PID: hc.PidMode, UTS: hc.UTSMode, Network: hc.NetworkMode, Cgroupns: hc.CgroupnsMode}),
			WithMounts(MountSet{Binds: hc.Binds, Mounts: hc.Mounts, Tmpfs: hc.Tmpfs, ReadonlyRootfs: hc.ReadonlyRootfs, ShmSize: hc.ShmSize}),
			WithOOMScoreAdj(hc.OomScoreAdj),
		)
	})
}
