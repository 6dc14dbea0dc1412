package main

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Result is what one TAP stream says.
type Result struct {
	Plan    int // from "1..N"; -1 when absent
	Ok      int // "ok" lines that are not skips
	NotOk   int // "not ok" lines that are not TODO
	Skipped int // "ok … # SKIP"
	Todo    int // "not ok … # TODO"
	// Errors counts streams with a YAML diagnostic and no test line: the
	// lifecycle tests report a failure only that way, with a "1..0" plan.
	Errors int
	Failed []string
}

// Count is the number of test lines seen.
func (r Result) Count() int { return r.Ok + r.NotOk + r.Skipped + r.Todo }

var (
	testLine = regexp.MustCompile(`^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$`)
	planLine = regexp.MustCompile(`^1\.\.(\d+)\b`)
)

// ParseTAP reads a TAP stream the way runtime-tools writes it, which
// `prove` rejects: diagnostics ("Refer to: …") sit unindented between test
// lines, YAML blocks follow tests, and a test that runs runtimetest inside
// the container may splice that program's whole TAP stream (its own
// version line and plan) into its output. Only lines that look exactly
// like test lines or plans count; everything inside a YAML block
// ("  ---" … "  ...") is skipped. Some files write several streams one
// after the other (each "TAP version" line starts one): their plans add up.
func ParseTAP(r io.Reader) Result {
	res := Result{Plan: -1}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	inYAML := false
	streamPlan, streamTests, streamYAML := -1, 0, 0
	endStream := func() {
		if streamTests == 0 && streamYAML > 0 {
			res.Errors++
		}
		if streamPlan >= 0 {
			if res.Plan < 0 {
				res.Plan = 0
			}
			res.Plan += streamPlan
		}
		streamPlan, streamTests, streamYAML = -1, 0, 0
	}
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if inYAML {
			if trimmed == "..." {
				inYAML = false
			}
			continue
		}
		if trimmed == "---" && strings.HasPrefix(line, " ") {
			inYAML = true
			streamYAML++
			continue
		}
		if strings.HasPrefix(line, "TAP version") {
			endStream()
			continue
		}
		if m := planLine.FindStringSubmatch(line); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil {
				streamPlan = n
			}
			continue
		}
		m := testLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		streamTests++
		desc := m[3]
		directive := ""
		if i := strings.Index(desc, "#"); i >= 0 {
			directive = strings.ToUpper(strings.TrimSpace(desc[i+1:]))
		}
		switch {
		case m[1] == "ok" && strings.HasPrefix(directive, "SKIP"):
			res.Skipped++
		case m[1] == "ok":
			res.Ok++
		case strings.HasPrefix(directive, "TODO"):
			res.Todo++
		default:
			res.NotOk++
			res.Failed = append(res.Failed, strings.TrimSpace(line))
		}
	}
	endStream()
	return res
}
