package api

import (
	"bufio"
	"net"
	"net/http"
)

// hijacked is a client connection taken over from the HTTP server: reads
// see what the server had buffered first.
type hijacked struct {
	net.Conn
	br *bufio.Reader
}

func (h *hijacked) Read(p []byte) (int, error) { return h.br.Read(p) }

// CloseWrite half-closes when the transport supports it.
func (h *hijacked) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// hijack takes over the connection and answers "101 UPGRADED" (or 200
// for clients that did not ask to upgrade), with Docker's raw-stream
// content type. The docker CLI requires the 101.
func hijack(w http.ResponseWriter, r *http.Request) (*hijacked, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	head := "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"
	if r.Header.Get("Upgrade") != "" {
		head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
	}
	if _, err := conn.Write([]byte(head)); err != nil {
		conn.Close()
		return nil, err
	}
	return &hijacked{Conn: conn, br: brw.Reader}, nil
}
