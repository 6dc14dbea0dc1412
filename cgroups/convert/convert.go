// Package convert holds the pure conversions between cgroup v1 and cgroup v2
// values that the OCI runtime-spec expresses in v1 terms (cpu shares, blkio
// weights, memory+swap totals). It does no I/O; every function is covered by
// table tests.
package convert

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// The v1 and v2 ranges the kernel accepts.
const (
	MinShares   = 2
	MaxShares   = 262144
	MinWeight   = 1
	MaxWeight   = 10000
	MinBlkio    = 10
	MaxBlkio    = 1000
	DefaultCPU  = 1024 // v1 default shares
	DefaultWght = 100  // v2 default cpu.weight
)

// The shares → weight mapping is a quadratic in log space,
// log10(weight) = a·log2(shares)² + b·log2(shares) + c, the unique one
// through the three points that matter: the minimum (2 → 1), the default
// (1024 → 100) and the maximum (262144 → 10000). A linear map would turn
// the default 1024 shares into weight 39 and make every container without
// --cpu-shares weaker than a plain process on a v2 host.
const (
	qa = 1.0 / 612
	qb = 125.0 / 612
	qc = -7.0 / 34
)

// SharesToWeight converts cpu.shares (v1) to cpu.weight (v2). 0 means
// "not set" and stays 0. Values outside the v1 range are clamped, as the
// kernel clamps them.
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, MinShares), MaxShares)
	x := math.Log2(float64(shares))
	w := math.Ceil(math.Pow(10, qa*x*x+qb*x+qc))
	return uint64(min(max(w, MinWeight), MaxWeight))
}

// WeightToShares is the inverse of SharesToWeight (to the nearest share).
func WeightToShares(weight uint64) uint64 {
	if weight == 0 {
		return 0
	}
	weight = min(max(weight, MinWeight), MaxWeight)
	y := math.Log10(float64(weight))
	// a x² + b x + (c - y) = 0, the root with x ≥ 1.
	x := (-qb + math.Sqrt(qb*qb-4*qa*(qc-y))) / (2 * qa)
	s := math.Round(math.Pow(2, x))
	return uint64(min(max(s, MinShares), MaxShares))
}

// BlkioWeightToIOWeight maps blkio.weight [10, 1000] linearly onto io.weight
// [1, 10000]. 0 means "not set".
func BlkioWeightToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	v := uint64(min(max(w, MinBlkio), MaxBlkio))
	return 1 + (v-MinBlkio)*(MaxWeight-1)/(MaxBlkio-MinBlkio)
}

// ErrSwapWithoutLimit is returned when a finite swap total is asked without
// a memory limit to subtract it from.
var ErrSwapWithoutLimit = errors.New("a memory+swap limit needs a memory limit")

// SwapToV2 turns the OCI/v1 memory+swap total into cgroup v2's swap-only
// memory.swap.max value. It returns -1 for unlimited and 0 for "not set"
// (swap == 0). memory is the memory limit (0 unset, -1 unlimited).
func SwapToV2(swap, memory int64) (int64, error) {
	switch {
	case swap == -1:
		return -1, nil
	case swap == 0:
		return 0, nil
	case swap < -1:
		return 0, fmt.Errorf("invalid memory+swap limit %d", swap)
	case memory == 0 || memory == -1:
		return 0, ErrSwapWithoutLimit
	case memory > swap:
		return 0, fmt.Errorf("memory+swap limit (%d) must be at least the memory limit (%d)", swap, memory)
	}
	return swap - memory, nil
}

// SwapFromV2 is the inverse: v2 swap-only max plus the memory max gives the
// v1 total (math.MaxUint64 stays unlimited).
func SwapFromV2(swapMax, memMax uint64) uint64 {
	if swapMax == math.MaxUint64 || memMax == math.MaxUint64 {
		return math.MaxUint64
	}
	return swapMax + memMax
}

// CPUMax renders cpu.max from an OCI quota and period. quota ≤ 0 means
// unlimited ("max"); period 0 keeps the kernel default (100000 µs).
func CPUMax(quota int64, period uint64) string {
	q := "max"
	if quota > 0 {
		q = strconv.FormatInt(quota, 10)
	}
	if period == 0 {
		period = 100000
	}
	return q + " " + strconv.FormatUint(period, 10)
}

// V2Limit renders a byte or count limit for v2: -1 (or any negative) is "max".
func V2Limit(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}
