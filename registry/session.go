package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/image"
)

// Media types of the distribution protocol, beyond the OCI ones.
const (
	mtDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	mtDockerSchema1JWS   = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	mtDockerConfig       = "application/vnd.docker.container.image.v1+json"
	mtDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mtDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	mtOCIManifest        = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex           = "application/vnd.oci.image.index.v1+json"
)

func isImageManifest(mt string) bool { return mt == mtDockerManifest || mt == mtOCIManifest }
func isIndex(mt string) bool         { return mt == mtDockerManifestList || mt == mtOCIIndex }

func isLayer(mt string) bool {
	switch mt {
	case mtDockerLayer, mtDockerForeignLayer,
		"application/vnd.oci.image.layer.v1.tar",
		"application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.oci.image.layer.v1.tar+zstd",
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return true
	}
	return false
}

// Errors, tested with errors.Is. The engine maps ErrNotFound to 404 and
// ErrUnauthorized to 401; a registry that sends content other than what
// it declares gets ErrVerification.
var (
	ErrNotFound     = image.ErrNotFound
	ErrUnauthorized = errors.New("unauthorized")
	ErrVerification = errors.New("content verification failed")
)

// Defaults for talking to registries.
const (
	defaultIdleTimeout    = 30 * time.Second // a blob download that sends nothing this long is retried
	defaultRequestTimeout = 2 * time.Minute  // any other request, body included
	maxBlobAttempts       = 5                // connections per blob (resumed with Range)
	maxSmallResponse      = 4 << 20          // bodies of anything but blob downloads
)

// sessionOptions are what every operation shares.
type sessionOptions struct {
	auth        *AuthConfig
	base        http.RoundTripper // tests; nil: a fresh http.Transport
	idle        time.Duration
	timeout     time.Duration
	userAgent   string
	pushScope   bool
	extraScopes []string
}

// session is an authenticated connection to one repository of one
// registry: go-containerregistry's transport (ping, basic or bearer token
// flow, scheme fallback for insecure registries) over berth's bounded one.
type session struct {
	ep     endpoint
	reg    name.Registry
	repo   name.Repository
	rt     http.RoundTripper // *transport.Wrapper: reused without a new ping
	client *http.Client
	idle   time.Duration
}

type unboundedKey struct{}

func openSession(ctx context.Context, ep endpoint, path string, o *sessionOptions) (*session, error) {
	var nopts []name.Option
	if ep.insecure {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(ep.host, nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", ep.host, err)
	}
	repo, err := name.NewRepository(ep.host+"/"+path, nopts...)
	if err != nil {
		return nil, fmt.Errorf("repository %s/%s: %w", ep.host, path, err)
	}
	base := o.base
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		t.ResponseHeaderTimeout = o.timeout
		if ep.insecure {
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		}
		base = t
	}
	var rt http.RoundTripper = &boundedTransport{inner: base, timeout: o.timeout}
	rt = transport.NewRetry(rt,
		transport.WithRetryBackoff(transport.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}),
		transport.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout))
	rt = transport.NewUserAgent(rt, o.userAgent)
	auth, err := o.auth.authenticator()
	if err != nil {
		return nil, err
	}
	scopes := []string{repo.Scope(transport.PullScope)}
	if o.pushScope {
		scopes = []string{repo.Scope(transport.PushScope)}
	}
	scopes = append(scopes, o.extraScopes...)
	wrapped, err := transport.NewWithContext(ctx, reg, auth, rt, scopes)
	if err != nil {
		return nil, classify(err, "")
	}
	return &session{ep: ep, reg: reg, repo: repo, rt: wrapped, idle: o.idle,
		client: &http.Client{Transport: wrapped, CheckRedirect: checkRedirect}}, nil
}

// checkRedirect bounds redirects (blob downloads may go to a CDN).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// url is the API URL of a resource of the repository; the transport
// corrects the scheme to the one the ping found.
func (s *session) url(kind, ident string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", s.reg.Scheme(), s.reg.RegistryStr(), s.repo.RepositoryStr(), kind, ident)
}

// boundedTransport bounds what a registry can make berth read and wait
// for: every response but a blob download (which fetch.go bounds by the
// blob's size) is cut at 4 MiB, and must arrive, body included, within
// the request timeout (uploads, whose duration is their blob's, are only
// bounded by the context).
type boundedTransport struct {
	inner   http.RoundTripper
	timeout time.Duration
}

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Context().Value(unboundedKey{}) != nil {
		return t.inner.RoundTrip(req)
	}
	ctx, cancel := context.WithCancel(req.Context())
	timeout := t.timeout
	if req.Body != nil && req.Body != http.NoBody {
		// An upload takes as long as its blob does; its answer is small.
		timeout = 24 * time.Hour
	}
	timer := time.AfterFunc(timeout, cancel)
	resp, err := t.inner.RoundTrip(req.WithContext(ctx))
	if err != nil {
		timer.Stop()
		cancel()
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxSmallResponse, what: req.Method + " " + req.URL.Redacted(),
		done: func() { timer.Stop(); cancel() }}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
	what string
	done func()
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("%s: response larger than %d bytes: %w", b.what, maxSmallResponse, ErrVerification)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error {
	err := b.rc.Close()
	b.done()
	return err
}

// regError is an error worded as dockerd words it, classified by kind
// (ErrNotFound, ErrUnauthorized) for errors.Is.
type regError struct {
	msg  string
	kind error
	err  error
}

func (e *regError) Error() string   { return e.msg }
func (e *regError) Unwrap() []error { return []error{e.kind, e.err} }

// diagnostics words a registry's error list as dockerd does
// ("manifest unknown: manifest unknown").
func diagnostics(te *transport.Error) string {
	var parts []string
	for _, d := range te.Errors {
		parts = append(parts, strings.ToLower(strings.ReplaceAll(string(d.Code), "_", " "))+": "+d.Message)
	}
	if len(parts) == 0 {
		return te.Error()
	}
	return strings.Join(parts, ", ")
}

// classify wraps a registry error with the sentinel the engine maps to an
// HTTP status, and dockerd's wording for the common cases. what names the
// image (busybox:latest).
func classify(err error, what string) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return err
	}
	for _, d := range te.Errors {
		switch d.Code {
		case transport.ManifestUnknownErrorCode:
			return &regError{msg: fmt.Sprintf("manifest for %s not found: %s", what, diagnostics(te)), kind: ErrNotFound, err: err}
		case transport.NameUnknownErrorCode:
			return &regError{msg: fmt.Sprintf("repository for %s not found: %s", what, diagnostics(te)), kind: ErrNotFound, err: err}
		case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			return &regError{msg: diagnostics(te), kind: ErrUnauthorized, err: err}
		}
	}
	switch te.StatusCode {
	case http.StatusNotFound:
		return &regError{msg: fmt.Sprintf("%s not found: %s", what, diagnostics(te)), kind: ErrNotFound, err: err}
	case http.StatusUnauthorized, http.StatusForbidden:
		return &regError{msg: diagnostics(te), kind: ErrUnauthorized, err: err}
	}
	return err
}

// shortID is the 12 hex digits dockerd shows for a layer.
func shortID(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 {
		d = d[i+1:]
	}
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
