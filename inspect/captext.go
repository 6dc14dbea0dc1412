package inspect

import (
	"strconv"
	"strings"

	"github.com/berth-dev/berth/caps"
)

// CapText renders the effective, inheritable and permitted sets in
// libcap's cap_to_text(3) form, the one getpcaps prints: the most common
// combination of flags among the capabilities the kernel knows (capabilities
// 0..last) becomes the "=flags" base, and every other group of capabilities
// is listed with the flags it adds (+) and drops (-) relative to that base.
// A base that is empty is folded into the first group ("a,b=eip" rather
// than "= a,b+eip"). Bits above last (never set by a real kernel) are
// listed by number with "+".
//
// The text is checked against the installed getpcaps in the tests; the
// talk's older libcap printed the same sets as "= cap_chown,...+eip".
func CapText(eff, inh, prm caps.Set, last int) string {
	// libcap numbers the flags e=1, p=2, i=4; groups print in descending
	// order of that value, the flags themselves as "eip".
	const e, p, i = 1, 2, 4
	state := func(n int) int {
		s := 0
		if eff.Has(n) {
			s |= e
		}
		if inh.Has(n) {
			s |= i
		}
		if prm.Has(n) {
			s |= p
		}
		return s
	}
	flags := func(s int) string {
		var b strings.Builder
		if s&e != 0 {
			b.WriteByte('e')
		}
		if s&i != 0 {
			b.WriteByte('i')
		}
		if s&p != 0 {
			b.WriteByte('p')
		}
		return b.String()
	}
	if last > 63 {
		last = 63
	}
	var count [8]int
	for n := 0; n <= last; n++ {
		count[state(n)]++
	}
	// The base is the most frequent state; ties go to the state with fewer
	// flags (lower value), so an all-clear process prints "=".
	base := 0
	for s := 1; s < 8; s++ {
		if count[s] > count[base] {
			base = s
		}
	}
	var out strings.Builder
	out.WriteString("=" + flags(base))
	folded := false
	for s := 7; s >= 0; s-- {
		if s == base || count[s] == 0 {
			continue
		}
		var names []string
		for n := 0; n <= last; n++ {
			if state(n) == s {
				names = append(names, textName(n))
			}
		}
		clause := strings.Join(names, ",")
		if add := s &^ base; add != 0 {
			if base == 0 && !folded {
				// "= a,b+eip" is written "a,b=eip".
				out.Reset()
				clause += "=" + flags(add)
				folded = true
			} else {
				clause += "+" + flags(add)
			}
		}
		if drop := base &^ s; drop != 0 {
			clause += "-" + flags(drop)
		}
		if out.Len() > 0 {
			out.WriteByte(' ')
		}
		out.WriteString(clause)
	}
	// Bits beyond what the kernel knows: listed by number, always added.
	for s := 7; s >= 1; s-- {
		var names []string
		for n := last + 1; n < 64; n++ {
			if state(n) == s {
				names = append(names, strconv.Itoa(n))
			}
		}
		if len(names) > 0 {
			out.WriteString(" " + strings.Join(names, ",") + "+" + flags(s))
		}
	}
	return out.String()
}

// textName is a capability's name as libcap prints it: lower case for the
// names it knows, the number otherwise.
func textName(n int) string {
	if n > caps.MaxKnown {
		return strconv.Itoa(n)
	}
	return strings.ToLower(caps.Name(n))
}
