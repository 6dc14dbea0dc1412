package caps

import "testing"

func TestDockerDefaultIsTheTalksBitmap(t *testing.T) {
	s, err := FromNames(DockerDefault)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Hex(), "00000000a80425fb"; got != want {
		t.Fatalf("Docker default set = %s, want %s", got, want)
	}
	if s.Len() != 14 {
		t.Fatalf("Docker default has %d capabilities, want 14", s.Len())
	}
}

func TestNumberAcceptsUserForms(t *testing.T) {
	for _, in := range []string{"CAP_SYS_ADMIN", "cap_sys_admin", "SYS_ADMIN", "sys_admin", " sys_admin "} {
		n, err := Number(in)
		if err != nil || n != 21 {
			t.Errorf("Number(%q) = %d, %v; want 21", in, n, err)
		}
	}
	if _, err := Number("CAP_FLY"); err == nil {
		t.Error("Number(CAP_FLY) succeeded")
	}
}

func TestHexRoundTrip(t *testing.T) {
	s, err := ParseHex("000001ffffffffff")
	if err != nil {
		t.Fatal(err)
	}
	if s != All(40) {
		t.Fatalf("ParseHex = %x, want All(40) = %x", s, All(40))
	}
	if s.Names()[40] != "CAP_CHECKPOINT_RESTORE" {
		t.Fatalf("cap 40 = %s", s.Names()[40])
	}
	if _, err := ParseHex("zz"); err == nil {
		t.Fatal("ParseHex(zz) succeeded")
	}
}

func TestNameOfUnknownNumber(t *testing.T) {
	if got := Name(55); got != "cap_55" {
		t.Fatalf("Name(55) = %q", got)
	}
}
