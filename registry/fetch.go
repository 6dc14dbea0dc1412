package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// blobReader streams one blob of a known size from the registry. It never
// reads past the size the descriptor declares (more is an error, so an
// endless stream costs at most size+1 bytes), resumes with a Range request
// where a connection breaks, stalls or ends early (at most
// maxBlobAttempts connections in all; a registry without Range support is
// re-read from the start and the bytes already had are skipped), and
// gives up on a connection that sends nothing for the idle timeout.
//
// It does not hash: the caller verifies the digest of what it read.
type blobReader struct {
	ctx      context.Context
	s        *session
	desc     ocispec.Descriptor
	url      string
	off      int64
	attempts int
	eof      bool

	mu      sync.Mutex
	body    io.ReadCloser
	cancel  context.CancelFunc
	timer   *time.Timer
	stalled bool
}

func (s *session) openBlob(ctx context.Context, desc ocispec.Descriptor) (*blobReader, error) {
	r := &blobReader{ctx: ctx, s: s, desc: desc, url: s.url("blobs", desc.Digest.String())}
	for {
		err := r.connect()
		if err == nil {
			return r, nil
		}
		if !r.retryable(err) {
			return nil, err
		}
	}
}

// retryable counts an attempt and tells whether another is allowed.
func (r *blobReader) retryable(err error) bool {
	r.attempts++
	if r.ctx.Err() != nil || r.attempts >= maxBlobAttempts || errors.Is(err, ErrVerification) ||
		errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnauthorized) {
		return false
	}
	select {
	case <-r.ctx.Done():
		return false
	case <-time.After(time.Duration(r.attempts) * 100 * time.Millisecond):
	}
	return true
}

func (r *blobReader) connect() error {
	ctx, cancel := context.WithCancel(context.WithValue(r.ctx, unboundedKey{}, true))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		cancel()
		return err
	}
	if r.off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", r.off))
	}
	r.mu.Lock()
	r.stalled = false
	r.mu.Unlock()
	timer := time.AfterFunc(r.s.idle, func() {
		r.mu.Lock()
		r.stalled = true
		r.mu.Unlock()
		cancel()
	})
	resp, err := r.s.client.Do(req)
	if err != nil {
		timer.Stop()
		cancel()
		return r.netErr(err)
	}
	fail := func(err error) error {
		resp.Body.Close()
		timer.Stop()
		cancel()
		return err
	}
	skip := int64(0)
	switch resp.StatusCode {
	case http.StatusOK:
		if cl := resp.ContentLength; cl >= 0 && cl != r.desc.Size {
			return fail(fmt.Errorf("blob %s: the registry sends %d bytes, the manifest declares %d: %w", r.desc.Digest, cl, r.desc.Size, ErrVerification))
		}
		skip = r.off // no Range support: skip what we have
	case http.StatusPartialContent:
		start, err := contentRangeStart(resp.Header.Get("Content-Range"))
		if err != nil || start != r.off {
			return fail(fmt.Errorf("blob %s: resumed at byte %d, the registry answered %q: %w", r.desc.Digest, r.off, resp.Header.Get("Content-Range"), ErrVerification))
		}
	default:
		return fail(classify(transport.CheckError(resp, http.StatusOK), "blob "+r.desc.Digest.String()))
	}
	r.mu.Lock()
	r.body, r.cancel, r.timer = resp.Body, cancel, timer
	r.mu.Unlock()
	if skip > 0 {
		if _, err := io.CopyN(io.Discard, &connReader{r}, skip); err != nil {
			r.closeBody()
			return r.netErr(err)
		}
	}
	return nil
}

// connReader reads the current connection, resetting the idle timer.
type connReader struct{ r *blobReader }

func (c *connReader) Read(p []byte) (int, error) {
	n, err := c.r.body.Read(p)
	if n > 0 {
		c.r.timer.Reset(c.r.s.idle)
	}
	return n, err
}

func contentRangeStart(h string) (int64, error) {
	// bytes START-END/TOTAL
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, fmt.Errorf("bad Content-Range %q", h)
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, fmt.Errorf("bad Content-Range %q", h)
	}
	return strconv.ParseInt(start, 10, 64)
}

func (r *blobReader) netErr(err error) error {
	r.mu.Lock()
	stalled := r.stalled
	r.mu.Unlock()
	if stalled && r.ctx.Err() == nil {
		return fmt.Errorf("blob %s: the registry sent nothing for %s at byte %d of %d", r.desc.Digest, r.s.idle, r.off, r.desc.Size)
	}
	if r.ctx.Err() != nil {
		return r.ctx.Err()
	}
	return fmt.Errorf("blob %s: %w", r.desc.Digest, err)
}

func (r *blobReader) closeBody() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.body != nil {
		r.body.Close()
		r.timer.Stop()
		r.cancel()
		r.body = nil
	}
}

// Read implements io.Reader over as many connections as it takes.
func (r *blobReader) Read(p []byte) (int, error) {
	for {
		if r.eof {
			return 0, io.EOF
		}
		if r.body == nil {
			if err := r.connect(); err != nil {
				if r.retryable(err) {
					continue
				}
				return 0, err
			}
		}
		if r.off >= r.desc.Size {
			var one [1]byte
			n, _ := io.ReadFull(&connReader{r}, one[:])
			r.closeBody()
			if n > 0 {
				return 0, fmt.Errorf("blob %s: the registry sends more than the %d bytes the manifest declares: %w", r.desc.Digest, r.desc.Size, ErrVerification)
			}
			r.eof = true
			return 0, io.EOF
		}
		if left := r.desc.Size - r.off; int64(len(p)) > left {
			p = p[:left]
		}
		n, err := (&connReader{r}).Read(p)
		r.off += int64(n)
		if n > 0 {
			return n, nil // an error comes back on the next read
		}
		if err == nil {
			continue
		}
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("the registry closed the connection at byte %d of %d (truncated): %w", r.off, r.desc.Size, io.ErrUnexpectedEOF)
		}
		err = r.netErr(err)
		r.closeBody()
		if !r.retryable(err) {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return 0, fmt.Errorf("%w: %w", err, ErrVerification)
			}
			return 0, err
		}
	}
}

// Close releases the connection.
func (r *blobReader) Close() error {
	r.closeBody()
	return nil
}

// fetchSmall downloads a small blob (an image config) into memory and
// verifies it.
func (s *session) fetchSmall(ctx context.Context, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if desc.Size < 0 || desc.Size > limit {
		return nil, fmt.Errorf("blob %s: %d bytes is not a plausible size (limit %d): %w", desc.Digest, desc.Size, limit, ErrVerification)
	}
	r, err := s.openBlob(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if got := digest.FromBytes(b); got != desc.Digest {
		return nil, fmt.Errorf("blob %s: the registry sent content with digest %s: %w", desc.Digest, got, ErrVerification)
	}
	return b, nil
}
