package main

// Docker's low-level inspect: `berth inspect [--type container|image]
// NAME…` (through the hook inspect.go leaves), `berth container inspect`
// and `berth image inspect`. The daemon's documents are printed as they
// came (a JSON array, indented as docker does), or through --format.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/client"
)

func init() {
	inspectObjects = func(args []string) int {
		v := &verb{name: "inspect", use: "[OPTIONS] NAME|ID [NAME|ID...]",
			summary: "Return low-level information on Docker objects (or run an instrument: berth inspect ns|caps|cgroup|isolation)",
			minArgs: 1, maxArgs: -1, setup: inspectSetup("")}
		return v.main("berth inspect", args)
	}
	registerVerb(&verb{group: "container", under: []string{"inspect"}, use: "[OPTIONS] CONTAINER [CONTAINER...]",
		summary: "Display detailed information on one or more containers", minArgs: 1, maxArgs: -1, setup: inspectSetup("container")})
	registerVerb(&verb{group: "image", under: []string{"inspect"}, use: "[OPTIONS] IMAGE [IMAGE...]",
		summary: "Display detailed information on one or more images", minArgs: 1, maxArgs: -1, setup: inspectSetup("image")})
}

func inspectSetup(kind string) func(fs *pflag.FlagSet) func(*cli, []string) int {
	return func(fs *pflag.FlagSet) func(*cli, []string) int {
		format := fs.StringP("format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
		size := fs.BoolP("size", "s", false, "Display total file sizes if the type is container")
		typ := &kind
		if kind == "" {
			typ = fs.String("type", "", "Only inspect objects of the given type")
		}
		return func(c *cli, args []string) int {
			switch *typ {
			case "", "container", "image":
			default:
				return c.errorf(125, "%q is not a valid value for --type", *typ)
			}
			if c.client() == nil {
				return 1
			}
			var docs []json.RawMessage
			code := 0
			for _, a := range args {
				doc, err := inspectOne(c, *typ, a, *size)
				if err != nil {
					if client.IsConnectError(err) {
						fmt.Fprintln(c.stderr, err)
						return 1
					}
					if client.IsNotFound(err) {
						switch *typ {
						case "container":
							fmt.Fprintf(c.stderr, "Error: No such container: %s\n", a)
						case "image":
							fmt.Fprintf(c.stderr, "Error: No such image: %s\n", a)
						default:
							fmt.Fprintf(c.stderr, "Error: No such object: %s\n", a)
						}
					} else {
						fmt.Fprintln(c.stderr, err)
					}
					code = 1
					continue
				}
				docs = append(docs, doc)
			}
			if err := printInspect(c, docs, *format); err != nil {
				return c.errorf(1, "%v", err)
			}
			return code
		}
	}
}

// inspectOne asks for a container, then an image, as the docker CLI
// does for an object of no given type.
func inspectOne(c *cli, typ, name string, size bool) (json.RawMessage, error) {
	var doc json.RawMessage
	var err error
	if typ == "" || typ == "container" {
		q := url.Values{}
		if size {
			q.Set("size", "1")
		}
		err = c.api.Call(c.ctxt(), client.Request{Method: http.MethodGet, Path: containerPath(name, "json"), Query: q}, &doc)
		if err == nil || typ == "container" || !client.IsNotFound(err) {
			return doc, err
		}
	}
	err = c.api.Call(c.ctxt(), client.Request{Method: http.MethodGet, Path: "/images/" + name + "/json"}, &doc)
	return doc, err
}

// printInspect writes the documents as docker inspect does.
func printInspect(c *cli, docs []json.RawMessage, format string) error {
	if format == "" || format == "json" {
		var b bytes.Buffer
		if len(docs) == 0 {
			b.WriteString("[]")
		} else {
			b.WriteString("[\n")
			for i, d := range docs {
				var ind bytes.Buffer
				if err := json.Indent(&ind, bytes.TrimSpace(d), "    ", "    "); err != nil {
					return err
				}
				b.WriteString("    ")
				b.Write(ind.Bytes())
				if i < len(docs)-1 {
					b.WriteString(",")
				}
				b.WriteString("\n")
			}
			b.WriteString("]")
		}
		b.WriteString("\n")
		_, err := c.stdout.Write(b.Bytes())
		return err
	}
	t, err := parseTemplate(format)
	if err != nil {
		return err
	}
	for _, d := range docs {
		var obj any
		dec := json.NewDecoder(bytes.NewReader(d))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			return err
		}
		if err := formatOne(c.stdout, t, obj); err != nil {
			return err
		}
	}
	return nil
}
