package jsonlog

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSeekTailAndLogs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	var lines []string
	for i := 0; i < 5; i++ {
		lines = append(lines, `{"log":"line`+strconv.Itoa(i)+`\n","stream":"stdout","time":"2026-01-01T00:00:0`+strconv.Itoa(i)+`Z"}`)
	}
	os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	f, _ := os.Open(p)
	defer f.Close()
	if err := SeekTail(f, 2); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, 1000)
	n, _ := f.Read(rest)
	if !strings.HasPrefix(string(rest[:n]), `{"log":"line3`) {
		t.Fatalf("tail 2 starts at %q", rest[:n])
	}
	var buf bytes.Buffer
	lw := NewWriter(&buf, true, Options{Stdout: true, Timestamps: true,
		Since: time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC), Until: time.Date(2026, 1, 1, 0, 0, 3, 0, time.UTC)})
	for _, l := range lines {
		if lw.Entry([]byte(l)) {
			break
		}
	}
	if buf.String() != "2026-01-01T00:00:01.000000000Z line1\n2026-01-01T00:00:02.000000000Z line2\n2026-01-01T00:00:03.000000000Z line3\n" {
		t.Fatalf("since/until/timestamps: %q", buf.String())
	}
	if n, err := ParseTail("all"); err != nil || n != -1 {
		t.Fatal("tail all")
	}
	if _, err := ParseTail("-3"); err == nil {
		t.Fatal("negative tail accepted")
	}
}
