package main

// Docker's output formats: `--format` Go templates with the docker CLI's
// functions (json, join, split, lower, upper, title, pad, truncate,
// println), the `table` directive (a header row, columns aligned as the
// docker CLI's tabwriter does), `json` (one object per line) and the
// default tables.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode/utf8"
)

var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		return strings.TrimSpace(b.String())
	},
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    func(s string) string { return strings.ToUpper(s[:min(1, len(s))]) + s[min(1, len(s)):] },
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      func(s string, l, r int) string { return strings.Repeat(" ", l) + s + strings.Repeat(" ", r) },
	"truncate": func(s string, n int) string { return truncateRunes(s, n) },
	"println":  func(a ...any) string { return fmt.Sprintln(a...) },
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// ellipsis shortens s to n characters, the last one "…", as docker's
// tables do.
func ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return truncateRunes(s, n)
	}
	return string([]rune(s)[:n-1]) + "…"
}

// parseTemplate parses a --format template with docker's functions.
func parseTemplate(format string) (*template.Template, error) {
	t, err := template.New("").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return t, nil
}

// formatter writes rows in a --format (or a default table).
type formatter struct {
	out     io.Writer
	tmpl    *template.Template
	table   bool
	jsonFmt bool
	header  map[string]string
	tw      *tabwriter.Writer
	buf     bytes.Buffer
	wrote   bool
}

// newFormatter understands "table …", "json", "" (the default table) and
// any other template (one line per row).
func newFormatter(out io.Writer, format, defaultTable string, header map[string]string) (*formatter, error) {
	f := &formatter{out: out, header: header}
	switch {
	case format == "" || format == "table":
		format = defaultTable
	case format == "json":
		f.jsonFmt = true
		format = "{{json .}}"
	}
	if strings.HasPrefix(format, "table") {
		f.table = true
		format = strings.TrimLeft(strings.TrimPrefix(format, "table"), " ")
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := parseTemplate(format)
	if err != nil {
		return nil, err
	}
	f.tmpl = t
	if f.table {
		f.tw = tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
	}
	return f, nil
}

// row writes one object.
func (f *formatter) row(obj any) error {
	w := f.out
	if f.table {
		w = f.tw
		if !f.wrote {
			f.writeHeader()
		}
	}
	f.wrote = true
	f.buf.Reset()
	if err := f.tmpl.Execute(&f.buf, obj); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	f.buf.WriteByte('\n')
	_, err := w.Write(f.buf.Bytes())
	return err
}

func (f *formatter) writeHeader() {
	var b bytes.Buffer
	if err := f.tmpl.Execute(&b, f.header); err == nil {
		b.WriteByte('\n')
		f.tw.Write(b.Bytes())
	}
}

// flush ends the output (a table with no rows still has its header).
func (f *formatter) flush() error {
	if f.table {
		if !f.wrote {
			f.writeHeader()
		}
		return f.tw.Flush()
	}
	return nil
}

// formatOne executes a template on one object (inspect --format).
func formatOne(w io.Writer, t *template.Template, obj any) error {
	var b bytes.Buffer
	if err := t.Execute(&b, obj); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}
