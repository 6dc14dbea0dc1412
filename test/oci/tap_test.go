package main

import (
	"strings"
	"testing"
)

func TestParseTAP(t *testing.T) {
	cases := []struct {
		name, in string
		want     Result
		status   status
	}{
		{"plain", "TAP version 13\nok 1 - a\nnot ok 2 - b\n1..2\n",
			Result{Plan: 2, Ok: 1, NotOk: 1, Failed: []string{"not ok 2 - b"}}, statusFail},
		{"diagnostics between tests", "TAP version 13\nok 1 - state MUST fail\nRefer to: https://x\n  ---\n  {\n    \"error\": \"not ok\"\n  }\n  ...\nok 2 - b\n1..2\n",
			Result{Plan: 2, Ok: 2}, statusPass},
		{"yaml error, no tests", "TAP version 13\n  ---\n  {\n    \"error\": \"Hooks MUST be called\"\n  }\n  ...\n1..0\n",
			Result{Plan: 0, Errors: 1}, statusFail},
		{"empty pass", "TAP version 13\n1..0\n", Result{Plan: 0}, statusPass},
		{"two streams", "TAP version 13\nok 1 - a\nok 2 - b\n1..2\nTAP version 13\nok 1 - c\n1..1\n",
			Result{Plan: 3, Ok: 3}, statusPass},
		{"skip", "TAP version 13\n1..1\nok 1 # skip no AppArmor\n", Result{Plan: 1, Skipped: 1}, statusSkip},
		{"todo", "TAP version 13\nnot ok 1 - x # TODO later\nok 2\n1..2\n", Result{Plan: 2, Ok: 1, Todo: 1}, statusPass},
		{"missing tests", "TAP version 13\nok 1\n1..3\n", Result{Plan: 3, Ok: 1}, statusFail},
		{"yaml before the test it belongs to", "TAP version 13\n  ---\n  {\n    \"stdout\": \"x\"\n  }\n  ...\nok 1 - hostname\n1..1\n",
			Result{Plan: 1, Ok: 1}, statusPass},
		{"no tap", "panic: boom\n", Result{Plan: -1}, statusError},
		{"ok inside yaml is not a test", "TAP version 13\nok 1\n  ---\n  stdout: |\n    not ok 7 - inner\n  ...\n1..1\n",
			Result{Plan: 1, Ok: 1}, statusPass},
	}
	for _, c := range cases {
		got := ParseTAP(strings.NewReader(c.in))
		if got.Plan != c.want.Plan || got.Ok != c.want.Ok || got.NotOk != c.want.NotOk || got.Skipped != c.want.Skipped ||
			got.Todo != c.want.Todo || got.Errors != c.want.Errors || strings.Join(got.Failed, "|") != strings.Join(c.want.Failed, "|") {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
		if s := classify(got, 0, false); s != c.status {
			t.Errorf("%s: status %s, want %s", c.name, s, c.status)
		}
	}
	if s := classify(Result{Plan: 1, Ok: 1}, 1, false); s != statusFail {
		t.Errorf("non-zero exit with all ok: %s, want FAIL", s)
	}
	if s := classify(Result{Plan: 1, Ok: 1}, 0, true); s != statusTimeout {
		t.Errorf("timed out: %s", s)
	}
}
