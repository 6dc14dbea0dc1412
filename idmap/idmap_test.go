package idmap

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseSubIDsByNameAndID(t *testing.T) {
	in := "# comment\nmtk:100000:65536\n1000:300000:10\nother:200000:65536\n"
	got, err := parseSubIDs(strings.NewReader(in), "subuid", "mtk", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (Range{100000, 65536}) || got[1] != (Range{300000, 10}) {
		t.Fatalf("ranges = %v", got)
	}
}

func TestParseSubIDsRejectsGarbage(t *testing.T) {
	for _, in := range []string{"mtk:x:1\n", "mtk:1\n", "mtk:1:0\n", "mtk:4294967295:2\n"} {
		if _, err := parseSubIDs(strings.NewReader(in), "subuid", "mtk", 1); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	if err := Validate("uid", ok); err != nil {
		t.Fatal(err)
	}
	bad := [][]specs.LinuxIDMapping{
		{{ContainerID: 0, HostID: 1, Size: 0}},
		{{ContainerID: 0, HostID: 100, Size: 10}, {ContainerID: 5, HostID: 1000, Size: 10}},
		{{ContainerID: 0, HostID: 100, Size: 10}, {ContainerID: 50, HostID: 105, Size: 10}},
		{{ContainerID: 4294967295, HostID: 0, Size: 2}},
	}
	for _, m := range bad {
		if err := Validate("uid", m); err == nil {
			t.Errorf("%v accepted", m)
		}
	}
	many := make([]specs.LinuxIDMapping, 341)
	for i := range many {
		many[i] = specs.LinuxIDMapping{ContainerID: uint32(i), HostID: uint32(i), Size: 1}
	}
	if err := Validate("uid", many); err == nil {
		t.Error("341 lines accepted")
	}
}

func TestToHost(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	if h, ok := ToHost(m, 1000); !ok || h != 101000 {
		t.Fatalf("ToHost(1000) = %d, %v", h, ok)
	}
	if _, ok := ToHost(m, 70000); ok {
		t.Fatal("unmapped id translated")
	}
}
