package config

import "testing"

// FuzzParse: any daemon.json is accepted or refused with an error, never
// a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{}`, `{"userns-remap":"default"}`, `{"users-remap":"mtk"}`,
		`{"default-ulimits":{"nofile":{"Name":"nofile","Hard":10,"Soft":5}}}`, `{"hosts":["unix:///x"]}`, `[`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Config
		Parse(data, &c)
	})
}

// FuzzParseSubIDs: /etc/subuid content never panics and accepted ranges
// do not overflow.
func FuzzParseSubIDs(f *testing.F) {
	f.Add([]byte("mtk:100000:65536\n"))
	f.Add([]byte("a:1:2\n# c\nb:4294967295:1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ids, err := ParseSubIDs(data)
		if err != nil {
			return
		}
		for _, s := range ids {
			if uint64(s.Start)+uint64(s.Count) > 1<<32 || s.Count == 0 {
				t.Fatalf("bad range accepted: %+v", s)
			}
		}
	})
}
