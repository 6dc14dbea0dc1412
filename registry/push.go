package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/image"
)

// PushOptions tune a push.
type PushOptions struct {
	// Auth holds the credentials for the target registry (nil: anonymous).
	Auth *AuthConfig
	// Config is the daemon's registry configuration (insecure registries,
	// upload concurrency); mirrors are never pushed to.
	Config *Config
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// Timeout bounds each request but blob uploads (default 2 min).
	Timeout time.Duration
	// UserAgent is sent to the registry (default "berth").
	UserAgent string
}

// PushResult is what a push produced, also sent as the stream's aux
// message (the docker CLI reads it).
type PushResult struct {
	Tag    string        `json:"Tag"`
	Digest digest.Digest `json:"Digest"`
	Size   int64         `json:"Size"`
}

// Push uploads the image named ref (a tag; busybox is busybox:latest) to
// its registry: the layer blobs the registry lacks (in parallel, each
// checked first), the config, then the stored manifest byte for byte, so
// the pushed image keeps the digest a pull gave it. The image gains the
// repository digest (RepoDigests). progress receives dockerd's push
// stream.
func Push(ctx context.Context, store *image.Store, ref string, opts PushOptions, progress func(ProgressMessage)) (*PushResult, error) {
	named, err := image.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	tagged, ok := named.(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("push %s: push a tag, not a digest: %w", ref, image.ErrInvalid)
	}
	img, err := store.Get(named.String())
	if err != nil {
		if errors.Is(err, image.ErrNotFound) {
			return nil, &regError{msg: "An image does not exist locally with the tag: " + reference.FamiliarName(named), kind: image.ErrNotFound, err: err}
		}
		return nil, err
	}
	sink := newProgressSink(progress)
	sink.send(ProgressMessage{Status: "The push refers to repository [" + named.Name() + "]"})
	eps := opts.Config.endpoints(named, true)
	so := (&PullOptions{Transport: opts.Transport, Timeout: opts.Timeout, UserAgent: opts.UserAgent}).session(opts.Auth)
	so.pushScope = true
	s, err := openSession(ctx, eps[len(eps)-1], reference.Path(named), so)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", reference.FamiliarString(named), err)
	}
	manifest, err := store.ReadBlob(img.ManifestDescriptor.Digest)
	if err != nil {
		return nil, err
	}
	_, err = store.ReadBlob(img.ID) // verified before it is sent
	if err != nil {
		return nil, err
	}
	layers := img.Manifest.Layers
	diffIDs := img.DiffIDs()
	if len(diffIDs) != len(layers) {
		return nil, fmt.Errorf("push %s: config and manifest disagree on the layers", img.ID)
	}
	limit := opts.Config.uploads()
	// dockerd lists layers top first, by diff ID.
	for i := len(layers) - 1; i >= 0; i-- {
		sink.send(layerStatus(shortID(diffIDs[i].String()), "Preparing"))
	}
	for i := len(layers) - 1 - limit; i >= 0; i-- {
		sink.send(layerStatus(shortID(diffIDs[i].String()), "Waiting"))
	}
	// Blobs of this image in another repository of the same registry are
	// mounted from there rather than uploaded, as dockerd does.
	var from string
	for _, n := range img.Names() {
		if o, err := reference.ParseNormalizedNamed(n); err == nil &&
			reference.Domain(o) == reference.Domain(named) && reference.Path(o) != reference.Path(named) {
			from = reference.Path(o)
			break
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	done := map[digest.Digest]bool{}
	for i := len(layers) - 1; i >= 0; i-- {
		l := layers[i]
		if done[l.Digest] {
			continue
		}
		done[l.Digest] = true
		id := shortID(diffIDs[i].String())
		g.Go(func() error { return pushBlob(gctx, s, store, l, id, from, sink) })
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("push %s: %w", reference.FamiliarString(named), err)
	}
	cfgDesc := img.Manifest.Config
	if err := pushBlob(ctx, s, store, cfgDesc, "", "", nil); err != nil {
		return nil, fmt.Errorf("push %s: config: %w", reference.FamiliarString(named), err)
	}
	mt := img.ManifestDescriptor.MediaType
	if mt == "" {
		mt = sniffMediaType(manifest)
	}
	if err := remote.Put(s.repo.Tag(tagged.Tag()), rawManifest{b: manifest, mt: mt}, remote.WithTransport(s.rt), remote.WithContext(ctx)); err != nil {
		return nil, fmt.Errorf("push %s: manifest: %w", reference.FamiliarString(named), classify(err, reference.FamiliarString(named)))
	}
	res := &PushResult{Tag: tagged.Tag(), Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
	if dn, err := reference.WithDigest(reference.TrimNamed(named), res.Digest); err == nil {
		if err := store.AddName(img, dn.String()); err != nil {
			return nil, err
		}
	}
	sink.send(ProgressMessage{Status: fmt.Sprintf("%s: digest: %s size: %d", res.Tag, res.Digest, res.Size)})
	aux, _ := json.Marshal(res)
	sink.send(ProgressMessage{Detail: &ProgressDetail{}, Aux: aux})
	return res, nil
}

// rawManifest is a stored manifest as go-containerregistry puts it.
type rawManifest struct {
	b  []byte
	mt string
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return types.MediaType(r.mt), nil }

// pushBlob uploads one stored blob unless the registry has it, trying
// first to mount it from the repository from ("" for none); id and sink
// (may be empty/nil) report progress as a layer.
func pushBlob(ctx context.Context, s *session, store *image.Store, desc ocispec.Descriptor, id, from string, sink *progressSink) error {
	exists, err := blobExists(ctx, s, desc.Digest)
	if err != nil {
		return err
	}
	if exists {
		if id != "" {
			sink.send(layerStatus(id, "Layer already exists"))
		}
		return nil
	}
	sb := &storeBlob{ctx: ctx, store: store, desc: desc, id: id, sink: sink}
	layer, err := partial.CompressedToLayer(sb)
	if err != nil {
		return err
	}
	if from != "" {
		layer = &remote.MountableLayer{Layer: layer, Reference: s.reg.Repo(from).Digest(desc.Digest.String())}
	}
	if err := remote.WriteLayer(s.repo, layer, remote.WithTransport(s.rt), remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, classify(err, "blob "+desc.Digest.String()))
	}
	switch {
	case id == "":
	case !sb.opened.Load():
		sink.send(layerStatus(id, "Mounted from "+from))
	default:
		sink.send(layerStatus(id, "Pushed"))
	}
	return nil
}

func blobExists(ctx context.Context, s *session, d digest.Digest) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, s.url("blobs", d.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", d, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return false, fmt.Errorf("blob %s: %s: %w", d, resp.Status, ErrUnauthorized)
	}
	return false, fmt.Errorf("blob %s: unexpected %s", d, resp.Status)
}

// storeBlob is a stored blob as a go-containerregistry layer, reporting
// upload progress.
type storeBlob struct {
	ctx    context.Context
	store  *image.Store
	desc   ocispec.Descriptor
	id     string
	sink   *progressSink
	opened atomic.Bool // content was read: uploaded, not mounted
}

func (b *storeBlob) Digest() (v1.Hash, error) { return v1.NewHash(b.desc.Digest.String()) }
func (b *storeBlob) Size() (int64, error)     { return b.desc.Size, nil }
func (b *storeBlob) MediaType() (types.MediaType, error) {
	return types.MediaType(b.desc.MediaType), nil
}

func (b *storeBlob) Compressed() (io.ReadCloser, error) {
	b.opened.Store(true)
	f, err := b.store.OpenBlob(b.desc.Digest)
	if err != nil {
		return nil, err
	}
	if b.id == "" {
		return f, nil
	}
	total := b.desc.Size
	c := &countingReader{r: f, fn: func(n int64) { b.sink.bytes(b.id, "Pushing", n, total, n == total) }}
	return struct {
		io.Reader
		io.Closer
	}{c, f}, nil
}
