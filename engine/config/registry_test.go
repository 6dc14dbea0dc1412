package config

import (
	"strings"
	"testing"
)

// daemon.json's registry keys reach the registry package's Config.
func TestParseRegistryKeys(t *testing.T) {
	var c Config
	err := Parse([]byte(`{"insecure-registries":["reg.local:5000","10.0.0.0/8"],"registry-mirrors":["https://mirror.example"],"max-concurrent-downloads":6,"max-concurrent-uploads":2}`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Insecure) != 2 || c.Mirrors[0] != "https://mirror.example" || c.MaxConcurrentDownloads != 6 || c.MaxConcurrentUploads != 2 {
		t.Errorf("parsed %+v", c.Config)
	}
	if !c.IsInsecure("reg.local:5000") {
		t.Error("reg.local:5000 is not insecure")
	}
	for _, bad := range []string{`{"registry-mirrors":["mirror.example"]}`, `{"insecure-registries":["https://x"]}`, `{"registry-mirror":["x"]}`} {
		var c Config
		if err := Parse([]byte(bad), &c); err == nil {
			t.Errorf("%s accepted", bad)
		} else if strings.Contains(bad, `"registry-mirror"`) && !strings.Contains(err.Error(), `did you mean "registry-mirrors"`) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
