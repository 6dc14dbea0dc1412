package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
)

// floorDaemon answers the calls the docker CLI makes for `run --rm` and
// `exec` (ping, create, attach, wait, start; inspect, exec create, start
// and inspect) at once, doing nothing: the CLI's time against it is the
// floor under any daemon's, what no daemon can go below on this host.
func floorDaemon(sock string) (*daemon, func(), error) {
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	started := map[string]chan struct{}{}
	n := 0
	startedCh := func(id string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		c, ok := started[id]
		if !ok {
			c = make(chan struct{})
			started[id] = c
		}
		return c
	}
	upgrade := func(w http.ResponseWriter) net.Conn {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return nil
		}
		buf.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
		buf.Flush()
		return conn
	}
	js := func(w http.ResponseWriter, code int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintln(w, body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("HEAD /_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Ostype", "linux")
	})
	mux.HandleFunc("GET /v1.41/version", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, `{"Version":"floor","ApiVersion":"1.41","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64"}`)
	})
	mux.HandleFunc("POST /v1.41/containers/create", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		id := fmt.Sprintf("%064x", n)
		mu.Unlock()
		js(w, 201, `{"Id":"`+id+`","Warnings":[]}`)
	})
	mux.HandleFunc("POST /v1.41/containers/{id}/attach", func(w http.ResponseWriter, r *http.Request) {
		if conn := upgrade(w); conn != nil {
			<-startedCh(r.PathValue("id"))
			conn.Close()
		}
	})
	mux.HandleFunc("POST /v1.41/containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		<-startedCh(r.PathValue("id"))
		fmt.Fprintln(w, `{"Error":null,"StatusCode":0}`)
	})
	mux.HandleFunc("POST /v1.41/containers/{id}/start", func(w http.ResponseWriter, r *http.Request) {
		close(startedCh(r.PathValue("id")))
		w.WriteHeader(204)
	})
	mux.HandleFunc("GET /v1.41/containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, `{"Id":"`+r.PathValue("id")+`","State":{"Status":"running","Running":true},"Config":{"Tty":false}}`)
	})
	mux.HandleFunc("POST /v1.41/containers/{id}/exec", func(w http.ResponseWriter, r *http.Request) {
		js(w, 201, `{"Id":"floor-exec"}`)
	})
	mux.HandleFunc("POST /v1.41/exec/{id}/start", func(w http.ResponseWriter, r *http.Request) {
		if conn := upgrade(w); conn != nil {
			// The process "ends" once the CLI has closed its input (at
			// once, without -i); closing first breaks its write.
			io.Copy(io.Discard, conn)
			conn.Close()
		}
	})
	mux.HandleFunc("GET /v1.41/exec/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, `{"ID":"floor-exec","Running":false,"ExitCode":0}`)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	return &daemon{name: "floor", host: "unix://" + sock}, func() { srv.Close() }, nil
}
