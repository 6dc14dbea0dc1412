package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/client"
	"github.com/docker/docker/api/types/container"
)

func init() {
	register(&command{name: "cp", summary: "Copy files/folders between a container and the local filesystem", run: cpMain})
}

func splitCpArg(s string) (ctr, p string) {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return "", s
	}
	if i := strings.Index(s, ":"); i > 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}

func cpMain(args []string) int {
	v := newVerb("cp", "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH", "Copy files/folders between a container and the local filesystem", true)
	archiveMode := v.fs.BoolP("archive", "a", false, "Archive mode (copy all uid/gid information)")
	v.fs.BoolP("follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	v.fs.BoolP("quiet", "q", false, "Suppress progress output during copy")
	rest, code, done := v.parse(args, 2)
	if done {
		return code
	}
	srcCtr, srcPath := splitCpArg(rest[0])
	dstCtr, dstPath := splitCpArg(rest[1])
	if (srcCtr == "") == (dstCtr == "") {
		fmt.Fprintln(os.Stderr, "copying between containers or within the host is not supported: one of SRC and DEST must be CONTAINER:PATH")
		return 1
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	if srcCtr != "" {
		return cliError(copyFromContainer(c, srcCtr, srcPath, dstPath), 1)
	}
	return cliError(copyToContainer(c, srcPath, dstCtr, dstPath, *archiveMode), 1)
}

func renameTar(r io.Reader, from, to string) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(r)
		tw := tar.NewWriter(pw)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if h.Name == from || h.Name == from+"/" || strings.HasPrefix(h.Name, from+"/") {
				h.Name = to + strings.TrimPrefix(h.Name, from)
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
		pw.CloseWithError(tw.Close())
	}()
	return pr
}

func copyFromContainer(c *client.Client, ctr, src, dst string) error {
	resp, err := c.Do(context.Background(), "GET", "/containers/"+ctr+"/archive", url.Values{"path": {src}}, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if dst == "-" {
		_, err := io.Copy(os.Stdout, resp.Body)
		return err
	}
	base := path.Base(path.Clean("/" + src))
	destDir := dst
	var r io.Reader = resp.Body
	if fi, err := os.Stat(dst); err != nil || !fi.IsDir() {
		destDir = filepath.Dir(dst)
		r = renameTar(resp.Body, base, filepath.Base(dst))
		if err == nil {
			os.Remove(dst) // a file is replaced
		}
	}
	opts := archive.DefaultOptions()
	opts.Whiteouts = archive.WhiteoutDelete
	opts.NoChown = true
	_, err = archive.Apply(destDir, r, opts)
	return err
}

func copyToContainer(c *client.Client, src, ctr, dst string, keepOwner bool) error {
	target := dst
	name := filepath.Base(filepath.Clean(src))
	resp, err := c.Do(context.Background(), "HEAD", "/containers/"+ctr+"/archive", url.Values{"path": {dst}}, nil, nil)
	isDir := false
	if err == nil {
		resp.Body.Close()
		hdr := resp.Header.Get("X-Docker-Container-Path-Stat")
		var st container.PathStat
		if json.Unmarshal([]byte(decodeStat(hdr)), &st) == nil {
			isDir = st.Mode.IsDir()
		}
	} else if client.StatusOf(err) == 404 {
		target = path.Dir(path.Clean("/" + dst))
		name = path.Base(path.Clean("/" + dst))
	} else {
		return err
	}
	if err == nil && !isDir {
		target = path.Dir(path.Clean("/" + dst))
		name = path.Base(path.Clean("/" + dst))
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarPath(pw, src, name, keepOwner)) }()
	q := url.Values{"path": {target}, "noOverwriteDirNonDir": {"true"}}
	if keepOwner {
		q.Set("copyUIDGID", "true")
	}
	resp, err = c.Do(context.Background(), "PUT", "/containers/"+ctr+"/archive", q, pr, map[string][]string{"Content-Type": {"text/plain"}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// tarPath writes src (a file or a tree) as entries rooted at name.
func tarPath(w io.Writer, src, name string, keepOwner bool) error {
	tw := tar.NewWriter(w)
	src = filepath.Clean(src)
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		entry := name
		if rel != "." {
			entry = name + "/" + filepath.ToSlash(rel)
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = entry
		if fi.IsDir() {
			h.Name += "/"
		}
		if !keepOwner {
			h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return tw.Close()
}
