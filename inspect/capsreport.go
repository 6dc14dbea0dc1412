package inspect

import (
	"fmt"
	"io"
	"strings"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/proc"
)

// CapSet is one capability set, as the kernel prints it and decoded.
type CapSet struct {
	Hex   string   `json:"hex"`
	Names []string `json:"names"`
}

func capSet(s caps.Set) CapSet {
	names := []string{}
	for _, n := range s.Names() {
		names = append(names, strings.ToLower(n))
	}
	return CapSet{Hex: s.Hex(), Names: names}
}

// CapDiff is how a set differs from Docker's default.
type CapDiff struct {
	Added   []string `json:"added"`
	Dropped []string `json:"dropped"`
}

// Same reports whether the set equals Docker's default.
func (d CapDiff) Same() bool { return len(d.Added) == 0 && len(d.Dropped) == 0 }

func (d CapDiff) String() string {
	if d.Same() {
		return "= Docker's default"
	}
	var parts []string
	for _, a := range d.Added {
		parts = append(parts, "+"+a)
	}
	for _, r := range d.Dropped {
		parts = append(parts, "-"+r)
	}
	return strings.Join(parts, " ")
}

func diffDocker(s caps.Set, last int) CapDiff {
	def := DockerDefaultCaps()
	d := CapDiff{Added: []string{}, Dropped: []string{}}
	for n := 0; n <= last && n < 64; n++ {
		switch {
		case s.Has(n) && !def.Has(n):
			d.Added = append(d.Added, textName(n))
		case !s.Has(n) && def.Has(n):
			d.Dropped = append(d.Dropped, textName(n))
		}
	}
	return d
}

// DockerDefaultCaps is caps.DockerDefault as a set (00000000a80425fb).
func DockerDefaultCaps() caps.Set {
	s, err := caps.FromNames(caps.DockerDefault)
	if err != nil {
		panic("caps.DockerDefault has an unknown name: " + err.Error())
	}
	return s
}

// CapsReport is `berth inspect caps`.
type CapsReport struct {
	PID int `json:"pid"`
	// Text is getpcaps' rendering of the effective, inheritable and
	// permitted sets.
	Text        string `json:"text"`
	Effective   CapSet `json:"effective"`
	Permitted   CapSet `json:"permitted"`
	Inheritable CapSet `json:"inheritable"`
	Bounding    CapSet `json:"bounding"`
	Ambient     CapSet `json:"ambient"`
	// DockerDefault is Docker's default set; the diffs say how the
	// effective and bounding sets differ from it.
	DockerDefault     CapSet  `json:"docker_default"`
	EffectiveVsDocker CapDiff `json:"effective_vs_docker"`
	BoundingVsDocker  CapDiff `json:"bounding_vs_docker"`
}

// Caps reads process pid's capability sets from /proc/PID/status.
func Caps(pid int) (*CapsReport, error) {
	st, err := proc.ReadStatus(pid)
	if err != nil {
		return nil, err
	}
	return capsFromStatus(pid, st, caps.LastCap()), nil
}

func capsFromStatus(pid int, st *proc.Status, last int) *CapsReport {
	return &CapsReport{
		PID:               pid,
		Text:              CapText(st.CapEff, st.CapInh, st.CapPrm, last),
		Effective:         capSet(st.CapEff),
		Permitted:         capSet(st.CapPrm),
		Inheritable:       capSet(st.CapInh),
		Bounding:          capSet(st.CapBnd),
		Ambient:           capSet(st.CapAmb),
		DockerDefault:     capSet(DockerDefaultCaps()),
		EffectiveVsDocker: diffDocker(st.CapEff, last),
		BoundingVsDocker:  diffDocker(st.CapBnd, last),
	}
}

// WriteCaps prints the report: getpcaps' line first, then each set.
func WriteCaps(w io.Writer, r *CapsReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d: %s\n", r.PID, r.Text)
	for _, s := range []struct {
		name string
		set  CapSet
	}{{"CapInh", r.Inheritable}, {"CapPrm", r.Permitted}, {"CapEff", r.Effective}, {"CapBnd", r.Bounding}, {"CapAmb", r.Ambient}} {
		names := strings.Join(s.set.Names, ",")
		if names == "" {
			names = "(none)"
		}
		fmt.Fprintf(&b, "  %s: %s  %s\n", s.name, s.set.Hex, names)
	}
	fmt.Fprintf(&b, "  vs Docker's default (%s):\n", r.DockerDefault.Hex)
	fmt.Fprintf(&b, "    effective: %s\n", r.EffectiveVsDocker)
	fmt.Fprintf(&b, "    bounding:  %s\n", r.BoundingVsDocker)
	_, err := io.WriteString(w, b.String())
	return err
}
