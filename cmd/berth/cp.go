package main

// berth cp: files between a container and the host, as tar streams
// (GET/PUT/HEAD /containers/{id}/archive, X-Docker-Container-Path-Stat),
// with docker cp's rules for existing and new destinations. What comes out
// of a container is unpacked with archive.Apply, which never writes
// outside the destination directory (CVE-2019-14271, CVE-2018-15664).

import (
	"archive/tar"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/client"
)

func init() {
	registerVerb(&verb{name: "cp", group: "container", under: []string{"cp"},
		use:     "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		summary: "Copy files/folders between a container and the local filesystem", minArgs: 2, maxArgs: 2, setup: cpSetup})
}

// splitCpArg splits CONTAINER:PATH; a local path has no container.
func splitCpArg(arg string) (ctr, p string) {
	if filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok {
		return "", arg
	}
	return ctr, p
}

func cpSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	archiveMode := fs.BoolP("archive", "a", false, "Archive mode (copy all uid/gid information)")
	follow := fs.BoolP("follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	fs.BoolP("quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return func(c *cli, args []string) int {
		srcCtr, srcPath := splitCpArg(args[0])
		dstCtr, dstPath := splitCpArg(args[1])
		switch {
		case srcCtr != "" && dstCtr != "":
			return c.errorf(1, "copying between containers is not supported")
		case srcCtr == "" && dstCtr == "":
			return c.errorf(1, "must specify at least one container source")
		}
		if c.client() == nil {
			return 1
		}
		var err error
		if srcCtr != "" {
			err = copyFromContainer(c, srcCtr, srcPath, dstPath, *follow)
		} else {
			err = copyToContainer(c, srcPath, dstCtr, dstPath, *archiveMode, *follow)
		}
		if err != nil {
			return c.fail(err, 1)
		}
		return 0
	}
}

// statPath is HEAD /containers/{id}/archive?path=….
func statPath(c *cli, ctr, p string) (container.PathStat, error) {
	var st container.PathStat
	resp, err := c.api.Do(c.ctxt(), client.Request{Method: http.MethodHead, Path: containerPath(ctr, "archive"), Query: url.Values{"path": {p}}})
	if err != nil {
		if client.StatusOf(err) == http.StatusNotFound && !strings.Contains(err.Error(), "No such container") {
			return st, fmt.Errorf("Error response from daemon: Could not find the file %s in container %s: %w", p, ctr, os.ErrNotExist)
		}
		return st, err
	}
	resp.Body.Close()
	return st, decodePathStat(resp.Header.Get("X-Docker-Container-Path-Stat"), &st)
}

func decodePathStat(h string, st *container.PathStat) error {
	if h == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return fmt.Errorf("bad X-Docker-Container-Path-Stat header: %w", err)
	}
	return json.Unmarshal(b, st)
}

func copyFromContainer(c *cli, ctr, src, dst string, follow bool) error {
	if !path.IsAbs(src) {
		src = "/" + src
	}
	if follow {
		if st, err := statPath(c, ctr, src); err == nil && st.LinkTarget != "" {
			src = st.LinkTarget
		}
	}
	body, hdr, err := c.api.Stream(c.ctxt(), client.Request{Method: http.MethodGet, Path: containerPath(ctr, "archive"), Query: url.Values{"path": {src}}})
	if err != nil {
		return err
	}
	defer body.Close()
	if dst == "-" {
		_, err := io.Copy(c.stdout, body)
		return err
	}
	var st container.PathStat
	if err := decodePathStat(hdr.Get("X-Docker-Container-Path-Stat"), &st); err != nil {
		return err
	}
	srcBase := st.Name
	if srcBase == "" {
		srcBase = path.Base(src)
	}
	srcIsDir := st.Mode.IsDir()
	dfi, derr := os.Stat(dst)
	switch {
	case derr == nil && dfi.IsDir():
		if strings.HasSuffix(src, "/.") { // copy the contents
			return applyTar(dst, rebaseTar(body, srcBase, "."))
		}
		return applyTar(dst, body)
	case derr == nil:
		if srcIsDir {
			return fmt.Errorf("cannot copy a directory to a file")
		}
		return applyTar(filepath.Dir(dst), rebaseTar(body, srcBase, filepath.Base(dst)))
	case errors.Is(derr, os.ErrNotExist):
		if strings.HasSuffix(dst, "/") && !srcIsDir {
			return fmt.Errorf("destination directory %s does not exist", dst)
		}
		parent := filepath.Dir(filepath.Clean(dst))
		if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
			return fmt.Errorf("destination directory %s does not exist", parent)
		}
		return applyTar(parent, rebaseTar(body, srcBase, filepath.Base(filepath.Clean(dst))))
	default:
		return derr
	}
}

func applyTar(dir string, r io.Reader) error {
	opts := archive.DefaultOptions()
	opts.Whiteouts = archive.WhiteoutDelete
	_, err := archive.Apply(dir, r, opts)
	return err
}

// rebaseTar renames the stream's top entry from → to ("." : drop it).
func rebaseTar(r io.Reader, from, to string) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(r)
		tw := tar.NewWriter(pw)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			name := strings.TrimPrefix(h.Name, "./")
			rest, ok := strings.CutPrefix(strings.TrimSuffix(name, "/"), from)
			if ok && (rest == "" || strings.HasPrefix(rest, "/")) {
				suffix := ""
				if strings.HasSuffix(name, "/") {
					suffix = "/"
				}
				if to == "." {
					if rest == "" {
						continue
					}
					h.Name = strings.TrimPrefix(rest, "/") + suffix
				} else {
					h.Name = to + rest + suffix
				}
			}
			if h.Typeflag == tar.TypeLink {
				if lrest, ok := strings.CutPrefix(h.Linkname, from); ok && (lrest == "" || strings.HasPrefix(lrest, "/")) {
					if to == "." {
						h.Linkname = strings.TrimPrefix(lrest, "/")
					} else {
						h.Linkname = to + lrest
					}
				}
			}
			if err := tw.WriteHeader(h); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}

func copyToContainer(c *cli, src, ctr, dst string, archiveMode, follow bool) error {
	if !path.IsAbs(dst) {
		dst = "/" + dst
	}
	q := url.Values{"noOverwriteDirNonDir": {"true"}}
	if archiveMode {
		q.Set("copyUIDGID", "true")
	}
	put := func(dir string, r io.Reader) error {
		q.Set("path", dir)
		return c.api.Call(c.ctxt(), client.Request{Method: http.MethodPut, Path: containerPath(ctr, "archive"), Query: q,
			Body: r, Header: http.Header{"Content-Type": {"application/x-tar"}}}, nil)
	}
	if src == "-" { // a tar stream on stdin, unpacked into a directory
		st, err := statPath(c, ctr, dst)
		if err != nil {
			return err
		}
		if !st.Mode.IsDir() {
			return fmt.Errorf("destination \"%s:%s\" must be a directory", ctr, dst)
		}
		return put(dst, os.Stdin)
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	if follow {
		if abs, err = filepath.EvalSymlinks(abs); err != nil {
			return err
		}
	}
	sfi, err := os.Lstat(abs)
	if err != nil {
		return err
	}
	contents := strings.HasSuffix(src, "/.") && sfi.IsDir()
	st, serr := statPath(c, ctr, dst)
	var dir, name string
	switch {
	case serr == nil && st.Mode.IsDir():
		dir, name = dst, filepath.Base(abs)
	case serr == nil:
		if sfi.IsDir() {
			return fmt.Errorf("cannot copy a directory to a file")
		}
		dir, name = path.Dir(dst), path.Base(dst)
	case errors.Is(serr, os.ErrNotExist):
		if strings.HasSuffix(dst, "/") && !sfi.IsDir() {
			return fmt.Errorf("destination directory %s does not exist", dst)
		}
		dir, name = path.Dir(path.Clean(dst)), path.Base(path.Clean(dst))
		contents = false
	default:
		return serr
	}
	pr, pw := io.Pipe()
	go func() {
		if contents {
			pw.CloseWithError(archive.WriteTar(pw, abs, ".", ""))
			return
		}
		pw.CloseWithError(archive.WriteTar(pw, filepath.Dir(abs), filepath.Base(abs), name))
	}()
	err = put(dir, pr)
	pr.CloseWithError(err)
	return err
}
