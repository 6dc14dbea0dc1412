package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/snapshot"
)

// PullOptions tune a pull. The zero value pulls the host's platform
// anonymously with dockerd's defaults.
type PullOptions struct {
	// Platform is "os/arch[/variant]" (the API's platform parameter, the
	// CLI's --platform); "" is the host's. An index is resolved to it; a
	// plain manifest for another platform is refused only when Platform
	// is given.
	Platform string
	// Auth holds the credentials for the image's registry (from the
	// X-Registry-Auth header or DockerConfigAuth); nil is anonymous,
	// which still gets bearer tokens from registries that hand them out.
	Auth *AuthConfig
	// Config is the daemon's registry configuration (insecure registries,
	// mirrors, concurrency).
	Config *Config
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// IdleTimeout gives up on (and resumes) a download that sends nothing
	// this long (default 30 s); Timeout bounds every other request
	// (default 2 min).
	IdleTimeout, Timeout time.Duration
	// UserAgent is sent to the registry (default "berth").
	UserAgent string
}

func (o *PullOptions) session(auth *AuthConfig) *sessionOptions {
	so := &sessionOptions{auth: auth, base: o.Transport, idle: o.IdleTimeout, timeout: o.Timeout, userAgent: o.UserAgent}
	if so.idle <= 0 {
		so.idle = defaultIdleTimeout
	}
	if so.timeout <= 0 {
		so.timeout = defaultRequestTimeout
	}
	if so.userAgent == "" {
		so.userAgent = "berth"
	}
	return so
}

// NormalizeImage joins the API's fromImage and tag parameters into a full
// normalized reference: a tag that is a digest pins it, no tag at all is
// latest (docker.io/library/busybox:latest).
func NormalizeImage(fromImage, tag string) (string, error) {
	named, err := reference.ParseNormalizedNamed(fromImage)
	if err != nil {
		return "", fmt.Errorf("invalid reference format %q: %w: %w", fromImage, err, image.ErrInvalid)
	}
	if tag != "" {
		if d, err := digest.Parse(tag); err == nil {
			named, err = reference.WithDigest(reference.TrimNamed(named), d)
			if err != nil {
				return "", fmt.Errorf("invalid digest %q: %w: %w", tag, err, image.ErrInvalid)
			}
		} else {
			named, err = reference.WithTag(reference.TrimNamed(named), tag)
			if err != nil {
				return "", fmt.Errorf("invalid tag %q: %w: %w", tag, err, image.ErrInvalid)
			}
		}
	}
	return reference.TagNameOnly(named).String(), nil
}

// Pull fetches the image ref (any form `docker pull` takes: busybox,
// busybox:1.36, 127.0.0.1:5000/busybox@sha256:…) into the store, unpacked
// and ready to run, and names it ref (and repository@digest). progress,
// when set, receives dockerd's message stream (one call at a time).
//
// Layers already stored are not downloaded; the others are downloaded in
// parallel, each unpacked while it streams, and verified against its
// digest, its size and the config's diff ID before it is kept. Nothing is
// named unless everything verified: a lying registry leaves no image.
func Pull(ctx context.Context, store *image.Store, ref string, opts PullOptions, progress func(ProgressMessage)) (*image.Image, error) {
	named, err := image.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	want, err := ParsePlatform(opts.Platform)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w: %w", ref, err, image.ErrInvalid)
	}
	p := &puller{store: store, named: named, want: want, explicit: opts.Platform != "",
		opts: &opts, sink: newProgressSink(progress)}
	var firstErr error
	for _, ep := range opts.Config.endpoints(named, false) {
		auth := opts.Auth
		if ep.mirror {
			auth = nil // credentials are for the registry, not its mirrors
		}
		img, err := p.pullFrom(ctx, ep, auth)
		if err == nil {
			return img, nil
		}
		if firstErr == nil || !ep.mirror {
			firstErr = err
		}
		if !ep.mirror || ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

type puller struct {
	store    *image.Store
	named    reference.Named
	want     ocispec.Platform
	explicit bool
	opts     *PullOptions
	sink     *progressSink
}

// manifestRef is the go-containerregistry reference of the wanted tag or
// digest in the session's repository.
func (p *puller) manifestRef(s *session) name.Reference {
	if d, ok := p.named.(reference.Digested); ok {
		return s.repo.Digest(d.Digest().String())
	}
	return s.repo.Tag(p.named.(reference.Tagged).Tag())
}

// what names the image in errors as dockerd does (busybox:latest).
func (p *puller) what() string { return reference.FamiliarString(p.named) }

func (p *puller) pullFrom(ctx context.Context, ep endpoint, auth *AuthConfig) (*image.Image, error) {
	s, err := openSession(ctx, ep, reference.Path(p.named), p.opts.session(auth))
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(p.manifestRef(s), remote.WithTransport(s.rt), remote.WithContext(ctx))
	if err != nil {
		err = classify(err, p.what())
		if errors.Is(err, ErrUnauthorized) {
			return nil, &regError{msg: fmt.Sprintf("pull access denied for %s, repository does not exist or may require 'docker login': %s",
				reference.FamiliarName(p.named), err), kind: ErrUnauthorized, err: err}
		}
		return nil, err
	}
	id := ""
	if _, ok := p.named.(reference.Digested); ok {
		id = reference.FamiliarString(p.named)
	} else {
		id = p.named.(reference.Tagged).Tag()
	}
	p.sink.send(ProgressMessage{Status: "Pulling from " + reference.Path(p.named), ID: id})

	repoDigest := digest.Digest(desc.Digest.String())
	mt, manifest := string(desc.MediaType), desc.Manifest
	if mt == "" {
		mt = sniffMediaType(manifest)
	}
	fromIndex := false
	if isIndex(mt) {
		child, err := p.resolveIndex(manifest)
		if err != nil {
			return nil, err
		}
		cd, err := remote.Get(s.repo.Digest(child.Digest.String()), remote.WithTransport(s.rt), remote.WithContext(ctx))
		if err != nil {
			return nil, classify(err, p.what()+"@"+child.Digest.String())
		}
		if int64(len(cd.Manifest)) != child.Size {
			return nil, fmt.Errorf("manifest %s: %d bytes, the index declares %d: %w", child.Digest, len(cd.Manifest), child.Size, ErrVerification)
		}
		mt, manifest, fromIndex = child.MediaType, cd.Manifest, true
	}
	return p.pullManifest(ctx, s, mt, manifest, repoDigest, fromIndex)
}

// sniffMediaType reads a manifest's own mediaType field when the registry
// sent no Content-Type.
func sniffMediaType(b []byte) string {
	var v struct {
		MediaType string `json:"mediaType"`
	}
	json.Unmarshal(b, &v)
	return v.MediaType
}

func (p *puller) resolveIndex(b []byte) (ocispec.Descriptor, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest list of %s: %w: %w", p.what(), err, ErrVerification)
	}
	d, ok := selectManifest(idx.Manifests, p.want)
	if !ok {
		return d, fmt.Errorf("no matching manifest for %s in the manifest list entries: %w", PlatformString(p.want), ErrNotFound)
	}
	if err := d.Digest.Validate(); err != nil || d.Size <= 0 || d.Size > image.MaxManifestSize {
		return d, fmt.Errorf("manifest list of %s: entry %q (%d bytes) is not a valid manifest descriptor: %w", p.what(), d.Digest, d.Size, ErrVerification)
	}
	return d, nil
}

// parseManifest checks an image manifest before anything is fetched.
func (p *puller) parseManifest(mt string, b []byte) (*ocispec.Manifest, error) {
	switch {
	case mt == mtDockerSchema1 || mt == mtDockerSchema1JWS:
		return nil, fmt.Errorf("%s: Docker image manifest schema 1 is not supported (deprecated since 2017): push the image again with a current client: %w", p.what(), ErrVerification)
	case !isImageManifest(mt):
		return nil, fmt.Errorf("%s: unsupported manifest media type %q: %w", p.what(), mt, ErrVerification)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest of %s: %w: %w", p.what(), err, ErrVerification)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("manifest of %s: schemaVersion %d, want 2: %w", p.what(), m.SchemaVersion, ErrVerification)
	}
	if err := checkDescriptor(m.Config); err != nil {
		return nil, fmt.Errorf("manifest of %s: config: %w", p.what(), err)
	}
	if m.Config.Size > image.MaxConfigSize {
		return nil, fmt.Errorf("manifest of %s: a %d-byte config is too large: %w", p.what(), m.Config.Size, ErrVerification)
	}
	if len(m.Layers) > 1000 {
		return nil, fmt.Errorf("manifest of %s: %d layers is too many: %w", p.what(), len(m.Layers), ErrVerification)
	}
	for _, l := range m.Layers {
		if err := checkDescriptor(l); err != nil {
			return nil, fmt.Errorf("manifest of %s: layer: %w", p.what(), err)
		}
		if !isLayer(l.MediaType) {
			return nil, fmt.Errorf("manifest of %s: layer %s has unsupported media type %q: %w", p.what(), l.Digest, l.MediaType, ErrVerification)
		}
	}
	return &m, nil
}

func checkDescriptor(d ocispec.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w: %w", d.Digest, err, ErrVerification)
	}
	if d.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %s: only sha256 is supported: %w", d.Digest, ErrVerification)
	}
	if d.Size < 0 {
		return fmt.Errorf("blob %s: negative size: %w", d.Digest, ErrVerification)
	}
	return nil
}

func (p *puller) pullManifest(ctx context.Context, s *session, mt string, manifest []byte, repoDigest digest.Digest, fromIndex bool) (*image.Image, error) {
	m, err := p.parseManifest(mt, manifest)
	if err != nil {
		return nil, err
	}
	in, err := p.store.NewIngest()
	if err != nil {
		return nil, err
	}
	defer in.Close()
	config, err := p.config(ctx, s, in, m.Config)
	if err != nil {
		return nil, err
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(config, &cfg); err != nil {
		return nil, fmt.Errorf("image config of %s: %w: %w", p.what(), err, ErrVerification)
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image %s: its config lists %d layers, its manifest %d: %w", p.what(), len(diffIDs), len(m.Layers), ErrVerification)
	}
	for _, d := range diffIDs {
		if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 {
			return nil, fmt.Errorf("image %s: config has a bad diff ID %q: %w", p.what(), d, ErrVerification)
		}
	}
	if p.explicit && !fromIndex {
		have := ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
		if platformRank(p.want, have) == 0 {
			return nil, fmt.Errorf("image with reference %s was found but does not match the specified platform: wanted %s, actual: %s: %w",
				p.what(), PlatformString(p.want), PlatformString(normalizePlatform(have)), ErrNotFound)
		}
	}
	var prevID digest.Digest
	if prev, err := p.store.Get(p.named.String()); err == nil {
		prevID = prev.ID
	}

	layers := &layerSet{p: p, s: s, in: in, m: m, diffIDs: diffIDs, chain: image.ChainIDs(diffIDs)}
	if err := layers.fetch(ctx); err != nil {
		return nil, err
	}

	names := []string{p.named.String()}
	if _, ok := p.named.(reference.Digested); !ok {
		dn, err := reference.WithDigest(reference.TrimNamed(p.named), repoDigest)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", p.what(), err)
		}
		names = append(names, dn.String())
	}
	img, err := in.Commit(mt, manifest, config, names)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", p.what(), err)
	}
	p.sink.send(ProgressMessage{Status: "Digest: " + repoDigest.String()})
	if prevID == img.ID && layers.downloaded == 0 {
		p.sink.send(ProgressMessage{Status: "Status: Image is up to date for " + p.what()})
	} else {
		p.sink.send(ProgressMessage{Status: "Status: Downloaded newer image for " + p.what()})
	}
	return img, nil
}

// config returns the image config, from the store when it has it.
func (p *puller) config(ctx context.Context, s *session, in *image.Ingest, d ocispec.Descriptor) ([]byte, error) {
	if in.HasBlob(d) {
		if b, err := p.store.ReadBlob(d.Digest); err == nil {
			return b, nil
		}
	}
	b, err := s.fetchSmall(ctx, d, image.MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("image config of %s: %w", p.what(), err)
	}
	return b, nil
}

// layerSet fetches and unpacks the layers of one manifest.
type layerSet struct {
	p          *puller
	s          *session
	in         *image.Ingest
	m          *ocispec.Manifest
	diffIDs    []digest.Digest
	chain      []digest.Digest
	downloaded int
}

func (ls *layerSet) parent(i int) digest.Digest {
	if i == 0 {
		return ""
	}
	return ls.chain[i-1]
}

func (ls *layerSet) fetch(ctx context.Context) error {
	sink := ls.p.sink
	complete := ls.in.HasBlob(ls.m.Config)
	for i, l := range ls.m.Layers {
		complete = complete && ls.in.HasBlob(l) && ls.in.HasLayer(ls.chain[i])
	}
	if complete {
		return nil // dockerd says nothing per layer for an image it has
	}
	var jobs []int
	seen := map[digest.Digest]bool{}
	for i, l := range ls.m.Layers {
		id := shortID(l.Digest.String())
		switch {
		case ls.in.HasBlob(l) && ls.in.HasLayer(ls.chain[i]):
			sink.send(layerStatus(id, "Already exists"))
		case ls.in.HasBlob(l) || seen[l.Digest]:
			// stored (or being downloaded): unpacked from the blob below
		default:
			seen[l.Digest] = true
			jobs = append(jobs, i)
			sink.send(layerStatus(id, "Pulling fs layer"))
		}
	}
	limit := ls.p.opts.Config.downloads()
	for _, i := range jobs[min(limit, len(jobs)):] {
		sink.send(layerStatus(shortID(ls.m.Layers[i].Digest.String()), "Waiting"))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for _, i := range jobs {
		g.Go(func() error { return ls.download(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	ls.downloaded = len(jobs)
	// Layers whose blob is stored but not unpacked under this chain.
	for i, l := range ls.m.Layers {
		if ls.in.HasLayer(ls.chain[i]) {
			continue
		}
		id := shortID(l.Digest.String())
		sink.send(layerProgress(id, "Extracting", l.Size, l.Size))
		if err := ls.in.UnpackBlob(l, ls.parent(i), ls.diffIDs[i]); err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		sink.send(layerStatus(id, "Pull complete"))
	}
	return nil
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 {
		c.fn(c.n)
	}
	return n, err
}

// download streams layer i from the registry into its blob and, at the
// same time, through the decompressor into a new unpacked layer; both
// are kept only if the blob's digest and size and the layer's diff ID
// all match.
func (ls *layerSet) download(ctx context.Context, i int) (err error) {
	desc, diffID, sink := ls.m.Layers[i], ls.diffIDs[i], ls.p.sink
	id := shortID(desc.Digest.String())
	defer func() {
		if err != nil {
			err = fmt.Errorf("layer %s of %s: %w", desc.Digest, ls.p.what(), err)
		}
	}()
	body, err := ls.s.openBlob(ctx, desc)
	if err != nil {
		return err
	}
	defer body.Close()
	bw, err := ls.in.NewBlob(desc)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			bw.Abort()
		}
	}()
	counted := &countingReader{r: body, fn: func(n int64) { sink.bytes(id, "Downloading", n, desc.Size, false) }}
	tee := io.TeeReader(counted, bw)

	var lw *snapshot.LayerWriter
	var gotDiffID digest.Digest
	if snaps := ls.in.Snapshotter(); snaps != nil && !ls.in.HasLayer(ls.chain[i]) {
		if lw, err = snaps.NewLayer(); err != nil {
			return err
		}
		defer lw.Abort()
		gotDiffID, err = unpack(lw, tee)
		if err != nil {
			// Say the blob is wrong rather than what the wrong blob broke.
			if _, derr := io.Copy(io.Discard, tee); derr == nil && bw.Digest() != desc.Digest {
				return blobMismatch(bw, desc)
			}
			return err
		}
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return err
	}
	sink.bytes(id, "Downloading", counted.n, desc.Size, true)
	sink.send(layerStatus(id, "Verifying Checksum"))
	if bw.Digest() != desc.Digest || bw.Written() != desc.Size {
		return blobMismatch(bw, desc)
	}
	if lw != nil && gotDiffID != diffID {
		return fmt.Errorf("uncompressed content is %s, the image config says %s: %w", gotDiffID, diffID, ErrVerification)
	}
	if err := bw.Commit(); err != nil {
		return err
	}
	committed = true
	sink.send(layerStatus(id, "Download complete"))
	if lw != nil {
		sink.send(layerProgress(id, "Extracting", desc.Size, desc.Size))
		if err := lw.Commit(ls.chain[i]); err != nil {
			return err
		}
	}
	sink.send(layerStatus(id, "Pull complete"))
	return nil
}

func blobMismatch(bw *image.BlobWriter, desc ocispec.Descriptor) error {
	return fmt.Errorf("the registry sent content with digest %s (%d bytes), the manifest declares %d bytes: filesystem layer verification failed: %w",
		bw.Digest(), bw.Written(), desc.Size, ErrVerification)
}

// unpack decompresses r (gzip, zstd or plain; detected) into lw and
// returns the digest of the uncompressed tar (the diff ID).
func unpack(lw *snapshot.LayerWriter, r io.Reader) (digest.Digest, error) {
	plain, _, err := archive.Decompress(r)
	if err != nil {
		return "", fmt.Errorf("%w: %w", err, ErrVerification)
	}
	defer plain.Close()
	h := digest.Canonical.Digester()
	tr := io.TeeReader(plain, h.Hash())
	if _, err := lw.Apply(tr); err != nil {
		return "", fmt.Errorf("unpack: %w", err)
	}
	// The tar reader stops at the end-of-archive marker: hash the rest.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return "", fmt.Errorf("decompress: %w", err)
	}
	return h.Digest(), nil
}
