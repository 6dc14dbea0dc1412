package registry

import (
	"net/http"
	"sync"
)

// HTTPStream writes a pull or push message stream into a Docker API
// response as dockerd does: the 200 status and the JSON content type go out
// with the first message (so a failure before any progress can still be
// answered with an HTTP error, `{"message":…}` with 404 or 500, as dockerd
// answers an unknown manifest or an unreachable registry), and every line
// ("\r\n"-terminated JSON) is flushed at once.
//
//	st := registry.NewHTTPStream(w)
//	_, err := registry.Pull(ctx, store, ref, opts, st.Send)
//	if err != nil && st.Started() {
//		st.Send(registry.ErrorMessage(err)) // the stream's last line
//	} else if err != nil {
//		// answer with an HTTP error
//	}
type HTTPStream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	started bool
}

// NewHTTPStream wraps an API response.
func NewHTTPStream(w http.ResponseWriter) *HTTPStream { return &HTTPStream{w: w} }

// Send writes one message (safe for concurrent use).
func (s *HTTPStream) Send(m ProgressMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.w.Header().Set("Content-Type", "application/json")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
	s.w.Write(m.Line())
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Started tells whether the response status has been sent.
func (s *HTTPStream) Started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}
