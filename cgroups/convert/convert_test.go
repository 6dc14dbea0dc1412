package convert

import (
	"math"
	"testing"
)

func TestSharesToWeight(t *testing.T) {
	for _, c := range []struct{ shares, weight uint64 }{
		{0, 0}, {1, 1}, {2, 1}, {512, 59}, {1024, 100}, {2048, 174}, {262144, 10000}, {1 << 30, 10000},
	} {
		if got := SharesToWeight(c.shares); got != c.weight {
			t.Errorf("SharesToWeight(%d) = %d, want %d", c.shares, got, c.weight)
		}
	}
	// Monotonic over the whole range.
	prev := uint64(0)
	for s := uint64(MinShares); s <= MaxShares; s += 97 {
		w := SharesToWeight(s)
		if w < prev || w < MinWeight || w > MaxWeight {
			t.Fatalf("SharesToWeight(%d) = %d after %d", s, w, prev)
		}
		prev = w
	}
}

func TestWeightToShares(t *testing.T) {
	for _, c := range []struct{ weight, shares uint64 }{
		{0, 0}, {1, 2}, {100, 1024}, {10000, 262144}, {20000, 262144},
	} {
		if got := WeightToShares(c.weight); got != c.shares {
			t.Errorf("WeightToShares(%d) = %d, want %d", c.weight, got, c.shares)
		}
	}
	// Round trip stays close (the weight scale is coarser than shares).
	for _, s := range []uint64{2, 100, 1024, 5000, 100000, 262144} {
		back := WeightToShares(SharesToWeight(s))
		if math.Abs(float64(back)-float64(s)) > float64(s)*0.05+2 {
			t.Errorf("round trip %d → %d → %d", s, SharesToWeight(s), back)
		}
	}
}

func TestBlkioWeightToIOWeight(t *testing.T) {
	for _, c := range []struct {
		in   uint16
		want uint64
	}{{0, 0}, {10, 1}, {500, 4950}, {1000, 10000}, {5, 1}, {2000, 10000}} {
		if got := BlkioWeightToIOWeight(c.in); got != c.want {
			t.Errorf("BlkioWeightToIOWeight(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestSwapToV2(t *testing.T) {
	for _, c := range []struct {
		swap, mem, want int64
		err             bool
	}{
		{-1, 100, -1, false},
		{0, 100, 0, false},
		{300, 100, 200, false},
		{100, 100, 0, false},
		{50, 100, 0, true},
		{300, 0, 0, true},
		{300, -1, 0, true},
		{-5, 100, 0, true},
	} {
		got, err := SwapToV2(c.swap, c.mem)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("SwapToV2(%d, %d) = %d, %v; want %d, err=%v", c.swap, c.mem, got, err, c.want, c.err)
		}
	}
	if SwapFromV2(200, 100) != 300 || SwapFromV2(math.MaxUint64, 100) != math.MaxUint64 {
		t.Error("SwapFromV2")
	}
}

func TestCPUMaxAndLimit(t *testing.T) {
	for _, c := range []struct {
		q    int64
		p    uint64
		want string
	}{{1000, 2000, "1000 2000"}, {-1, 2000, "max 2000"}, {0, 0, "max 100000"}, {50000, 0, "50000 100000"}} {
		if got := CPUMax(c.q, c.p); got != c.want {
			t.Errorf("CPUMax(%d,%d) = %q want %q", c.q, c.p, got, c.want)
		}
	}
	if V2Limit(-1) != "max" || V2Limit(42) != "42" {
		t.Error("V2Limit")
	}
}
