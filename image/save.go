package image

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/archive"
)

// Save writes the images named by refs as a docker-archive (`docker save`'s
// format: manifest.json, repositories, <config>.json, <layer>/layer.tar
// with uncompressed layers) that `docker load`, skopeo and berth's Load
// read. A name without a tag saves every tag of that repository; an ID
// saves the image without names.
func (s *Store) Save(w io.Writer, refs []string) error {
	images, err := s.load()
	if err != nil {
		return err
	}
	type entry struct {
		img  *Image
		tags []string // full names
	}
	var order []*entry
	byID := map[digest.Digest]*entry{}
	for _, ref := range refs {
		img, err := resolve(images, ref)
		if err != nil {
			return err
		}
		e := byID[img.ID]
		if e == nil {
			e = &entry{img: img}
			byID[img.ID] = e
			order = append(order, e)
		}
		if isIDPrefix(img.ID, ref) {
			continue
		}
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			return fmt.Errorf("save: %w: %w", err, ErrInvalid)
		}
		var want []string
		if reference.IsNameOnly(named) {
			for _, n := range img.names {
				if o, err := reference.ParseNormalizedNamed(n); err == nil && o.Name() == named.Name() {
					if _, ok := o.(reference.Tagged); ok {
						want = append(want, n)
					}
				}
			}
			// Other images tagged in the same repository come along too.
			for _, other := range images {
				if other.ID == img.ID {
					continue
				}
				for _, n := range other.names {
					if o, err := reference.ParseNormalizedNamed(n); err == nil && o.Name() == named.Name() {
						if _, ok := o.(reference.Tagged); ok {
							oe := byID[other.ID]
							if oe == nil {
								oe = &entry{img: other}
								byID[other.ID] = oe
								order = append(order, oe)
							}
							oe.tags = appendUnique(oe.tags, n)
						}
					}
				}
			}
		} else if _, ok := named.(reference.Tagged); ok {
			want = []string{named.String()}
		}
		for _, n := range want {
			e.tags = appendUnique(e.tags, n)
		}
	}
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	var manifest []DockerManifest
	repos := map[string]map[string]string{}
	mtime := time.Unix(0, 0)
	for _, e := range order {
		img := e.img
		cfgName := img.ID.Encoded() + ".json"
		cb, err := s.readBlob(img.ID)
		if err != nil {
			return fmt.Errorf("save %s: %w", img.ID, err)
		}
		if !written[cfgName] {
			if err := writeTarFile(tw, cfgName, cb, mtime); err != nil {
				return err
			}
			written[cfgName] = true
		}
		m := DockerManifest{Config: cfgName, RepoTags: []string{}}
		diffIDs := img.DiffIDs()
		if len(diffIDs) != len(img.Manifest.Layers) {
			return fmt.Errorf("save %s: config and manifest disagree on the layers", img.ID)
		}
		var top string
		for i, d := range diffIDs {
			dir := d.Encoded()
			name := dir + "/layer.tar"
			if !written[name] {
				if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
					return err
				}
				if err := writeTarFile(tw, dir+"/VERSION", []byte("1.0"), mtime); err != nil {
					return err
				}
				if err := s.writeLayer(tw, name, img.Manifest.Layers[i], d, mtime); err != nil {
					return fmt.Errorf("save %s: %w", img.ID, err)
				}
				written[name] = true
			}
			m.Layers = append(m.Layers, name)
			top = dir
		}
		for _, n := range e.tags {
			named, err := reference.ParseNormalizedNamed(n)
			if err != nil {
				continue
			}
			tagged, ok := named.(reference.Tagged)
			if !ok {
				continue
			}
			m.RepoTags = append(m.RepoTags, reference.FamiliarString(named))
			repo := reference.FamiliarName(named)
			if repos[repo] == nil {
				repos[repo] = map[string]string{}
			}
			repos[repo][tagged.Tag()] = top
		}
		if len(m.RepoTags) == 0 {
			m.RepoTags = nil
		}
		manifest = append(manifest, m)
	}
	mb, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := writeTarFile(tw, "manifest.json", mb, mtime); err != nil {
		return err
	}
	if len(repos) > 0 {
		rb, _ := json.Marshal(repos)
		if err := writeTarFile(tw, "repositories", rb, mtime); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func writeTarFile(tw *tar.Writer, name string, b []byte, mtime time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: mtime}); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if _, err := tw.Write(b); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// writeLayer writes a layer uncompressed, checking it is diffID.
func (s *Store) writeLayer(tw *tar.Writer, name string, desc ocispec.Descriptor, diffID digest.Digest, mtime time.Time) error {
	size := desc.Size
	c, err := s.blobCompression(desc.Digest)
	if err != nil {
		return err
	}
	if c != archive.Uncompressed {
		// The tar header needs the uncompressed size: count it first.
		if size, err = s.inflatedSize(desc.Digest); err != nil {
			return err
		}
	}
	f, err := openBlob(s, desc.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	plain, _, err := archive.Decompress(f)
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer plain.Close()
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: mtime}); err != nil {
		return err
	}
	h := digest.Canonical.Digester()
	n, err := io.Copy(io.MultiWriter(tw, h.Hash()), plain)
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if n != size || h.Digest() != diffID {
		return fmt.Errorf("layer %s: stored content is %s (%d bytes), want %s: the store is corrupted", desc.Digest, h.Digest(), n, diffID)
	}
	return nil
}

func (s *Store) inflatedSize(d digest.Digest) (int64, error) {
	f, err := openBlob(s, d)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	plain, _, err := archive.Decompress(f)
	if err != nil {
		return 0, err
	}
	defer plain.Close()
	return io.Copy(io.Discard, plain)
}
