package inspect

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/proc"
)

// Known renderings (libcap 2.66's getpcaps), for machines without it.
func TestCapTextKnown(t *testing.T) {
	d := DockerDefaultCaps()
	all := caps.All(40)
	for _, c := range []struct {
		e, i, p caps.Set
		want    string
	}{
		{d, d, d, "cap_chown,cap_dac_override,cap_fowner,cap_fsetid,cap_kill,cap_setgid,cap_setuid,cap_setpcap,cap_net_bind_service,cap_net_raw,cap_sys_chroot,cap_mknod,cap_audit_write,cap_setfcap=eip"},
		{0, 0, 0, "="},
		{all, 0, all, "=ep"},
		{all &^ (1 << 24), 0, all &^ (1 << 24), "=ep cap_sys_resource-ep"},
		{1, 0, 3, "cap_chown=ep cap_dac_override+p"},
	} {
		if got := CapText(c.e, c.i, c.p, 40); got != c.want {
			t.Errorf("CapText(e=%s i=%s p=%s) = %q, want %q", c.e.Hex(), c.i.Hex(), c.p.Hex(), got, c.want)
		}
	}
}

// TestCapTextMatchesGetpcaps is differential: processes with random
// capability sets, described by berth and by libcap's getpcaps.
func TestCapTextMatchesGetpcaps(t *testing.T) {
	testutil.RequiresRoot(t)
	getpcaps, err := exec.LookPath("getpcaps")
	if err != nil {
		t.Skip("getpcaps (libcap2-bin) not installed")
	}
	last := caps.LastCap()
	all := caps.All(last)
	own, err := proc.ReadStatus(1)
	if err == nil {
		all &= own.CapBnd // a helper cannot gain what this machine's root lacks
	}
	self, err := caps.Current()
	if err != nil {
		t.Fatal(err)
	}
	all &= self.Permitted
	d := DockerDefaultCaps()
	rng := rand.New(rand.NewPCG(5, uint64(last)))
	type sets struct{ e, p, i, b, a caps.Set }
	cases := []sets{{d, d, d, d, 0}, {0, 0, 0, 0, 0}, {all, all, 0, all, 0}, {d, d, 0, d, 0}, {0, all, 0, all, 0}, {1, 1, 1, 1, 1}}
	for len(cases) < 24 {
		b := caps.Set(rng.Uint64()) & all
		if rng.IntN(3) == 0 {
			b = all
		}
		p := caps.Set(rng.Uint64()) & all
		e := caps.Set(rng.Uint64()) & p
		if rng.IntN(2) == 0 {
			e = p
		}
		i := caps.Set(rng.Uint64()) & b
		a := caps.Set(rng.Uint64()) & p & i
		cases = append(cases, sets{e, p, i, b, a})
	}
	for _, c := range cases {
		pid := startCapsHelper(t, c.e, c.p, c.i, c.b, c.a)
		out, err := exec.Command(getpcaps, fmt.Sprint(pid)).CombinedOutput()
		if err != nil {
			t.Fatalf("getpcaps %d: %v: %s", pid, err, out)
		}
		r, err := Caps(pid)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprintf("%d: %s\n", pid, r.Text), string(out); got != want {
			t.Errorf("sets e=%s p=%s i=%s:\n berth    %q\n getpcaps %q", c.e.Hex(), c.p.Hex(), c.i.Hex(), got, want)
		}
		// And the five sets as the kernel prints them.
		raw, _ := proc.ReadStatus(pid)
		for name, pair := range map[string][2]string{
			"CapEff": {r.Effective.Hex, raw.CapEff.Hex()}, "CapPrm": {r.Permitted.Hex, c.p.Hex()},
			"CapInh": {r.Inheritable.Hex, c.i.Hex()}, "CapBnd": {r.Bounding.Hex, c.b.Hex()}, "CapAmb": {r.Ambient.Hex, c.a.Hex()},
		} {
			if pair[0] != pair[1] {
				t.Errorf("%s: berth %s, want %s", name, pair[0], pair[1])
			}
		}
		if r.Effective.Hex != c.e.Hex() {
			t.Errorf("CapEff %s, helper set %s", r.Effective.Hex, c.e.Hex())
		}
	}
}

func TestCapsReportDockerDiff(t *testing.T) {
	testutil.RequiresRoot(t)
	d := DockerDefaultCaps()
	sysAdmin, _ := caps.Number("CAP_SYS_ADMIN")
	netRaw, _ := caps.Number("CAP_NET_RAW")
	set := (d | 1<<uint(sysAdmin)) &^ (1 << uint(netRaw))
	pid := startCapsHelper(t, set, set, 0, d, 0)
	r, err := Caps(pid)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(r.EffectiveVsDocker.Added) != "[cap_sys_admin]" || fmt.Sprint(r.EffectiveVsDocker.Dropped) != "[cap_net_raw]" {
		t.Errorf("effective vs Docker: %+v", r.EffectiveVsDocker)
	}
	if !r.BoundingVsDocker.Same() {
		t.Errorf("bounding vs Docker: %+v", r.BoundingVsDocker)
	}
	var out bytes.Buffer
	WriteCaps(&out, r)
	for _, want := range []string{
		fmt.Sprintf("%d: %s\n", pid, r.Text),
		"  CapEff: " + set.Hex() + "  cap_chown,",
		"  CapAmb: 0000000000000000  (none)\n",
		"effective: +cap_sys_admin -cap_net_raw\n",
		"bounding:  = Docker's default\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("caps text lacks %q:\n%s", want, out.String())
		}
	}
}
