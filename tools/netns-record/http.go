package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"time"
)

// The http scenario: a net/http server and real HTTP clients. record.sh
// runs two curl requests (one on a kept-alive connection that curl closes
// when it exits, one with "Connection: close" that the server closes), then
// this program's client makes two requests on one kept-alive connection
// and holds it open.

const httpBody = 1000

func httpServe(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(payload(httpBody, 'H'))
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 30 * time.Second,
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				logf("accepted %s -> %s", c.RemoteAddr(), c.LocalAddr())
				tuple(c.RemoteAddr().String(), c.LocalAddr().String())
			}
		},
	}
	go func() {
		if err := srv.Serve(ln); err != nil {
			die("http serve: %v", err)
		}
	}()
}

func httpClient(addr string, lport int) {
	tr := &http.Transport{
		Proxy: nil, // never an http_proxy from the environment
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := dialer(lport).DialContext(ctx, network, a)
			if err == nil {
				logf("connected %s -> %s", c.LocalAddr(), c.RemoteAddr())
				tuple(c.LocalAddr().String(), c.RemoteAddr().String())
			}
			return c, err
		},
		DisableCompression: true,
		MaxConnsPerHost:    1,
	}
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := 0; i < 2; i++ {
		resp, err := cl.Get("http://" + addr + "/hello")
		if err != nil {
			die("GET: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(body) != httpBody {
			die("GET: status %d, %d bytes, %v", resp.StatusCode, len(body), err)
		}
		logf("GET %d: %s, %d bytes", i+1, resp.Status, len(body))
	}
}

// heartbeat sends a small UDP datagram to addr every interval until the
// process ends: frames that are not TCP, which keep a capture's clock
// going after a scenario's last TCP packet (the impaired recordings).
func heartbeat(addr string, every time.Duration) {
	u, err := net.Dial("udp", addr)
	if err != nil {
		die("heartbeat: %v", err)
	}
	for range time.Tick(every) {
		_, _ = u.Write([]byte("flowtrack heartbeat"))
	}
}
