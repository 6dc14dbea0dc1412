package engine

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/docker/docker/api/types/container"
)

// topFromPS runs ps with args and keeps the header and the rows whose PID
// column is one of pids.
func topFromPS(pids []int, args []string) (container.TopResponse, error) {
	var resp container.TopResponse
	for _, a := range args {
		if strings.ContainsAny(a, ";&|`$") {
			return resp, errdefs.InvalidParameterf("invalid ps argument %q", a)
		}
	}
	out, err := exec.Command("ps", args...).Output()
	if err != nil {
		return resp, errdefs.InvalidParameterf("error running ps %s: %v", strings.Join(args, " "), err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) == 0 {
		return resp, fmt.Errorf("ps printed nothing")
	}
	resp.Titles = strings.Fields(lines[0])
	pidCol := -1
	for i, t := range resp.Titles {
		if t == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return resp, errdefs.InvalidParameterf("couldn't find PID field in ps output")
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	resp.Processes = [][]string{}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= pidCol {
			continue
		}
		pid, err := strconv.Atoi(f[pidCol])
		if err != nil || !want[pid] {
			continue
		}
		// The last column (CMD) may contain spaces: join the rest.
		row := append([]string{}, f[:len(resp.Titles)-1]...)
		row = append(row, strings.Join(f[len(resp.Titles)-1:], " "))
		resp.Processes = append(resp.Processes, row)
	}
	return resp, nil
}
