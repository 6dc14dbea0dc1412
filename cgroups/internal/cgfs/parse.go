package cgfs

import (
	"os"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// ParseList parses a cpuset list such as "0-3,5".
func ParseList(s string) []uint16 {
	var out []uint16
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		if part == "" {
			continue
		}
		lo, hi, rng := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil
		}
		b := a
		if rng {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, uint16(i))
		}
	}
	return out
}

// HugePageSizes lists the huge page sizes the kernel supports, in the
// names cgroup files use ("2MB", "1GB"), from /sys/kernel/mm/hugepages.
func HugePageSizes() []string {
	ents, err := os.ReadDir("/sys/kernel/mm/hugepages")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		kb, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		kb, ok = strings.CutSuffix(kb, "kB")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(kb, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, PageSizeName(n*1024))
	}
	return out
}

// PageSizeName renders a page size in bytes the way hugetlb files name it.
func PageSizeName(b uint64) string {
	units := []string{"B", "KB", "MB", "GB", "TB"}
	i := 0
	for b >= 1024 && b%1024 == 0 && i < len(units)-1 {
		b /= 1024
		i++
	}
	return strconv.FormatUint(b, 10) + units[i]
}

// RdmaLines renders rdma.max lines (the same format on v1 and v2).
func RdmaLines(m map[string]specs.LinuxRdma) []string {
	var out []string
	for dev, l := range m {
		var parts []string
		if l.HcaHandles != nil {
			parts = append(parts, "hca_handle="+strconv.FormatUint(uint64(*l.HcaHandles), 10))
		}
		if l.HcaObjects != nil {
			parts = append(parts, "hca_object="+strconv.FormatUint(uint64(*l.HcaObjects), 10))
		}
		if len(parts) > 0 {
			out = append(out, dev+" "+strings.Join(parts, " "))
		}
	}
	return out
}
