package cgroups_test

import (
	"strconv"

	"github.com/berth-dev/berth/cgroups/convert"
)

func formatInt(v int64) string           { return strconv.FormatInt(v, 10) }
func formatMax(q int64, p uint64) string { return convert.CPUMax(q, p) }
