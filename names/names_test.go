package names

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls until cond holds or a second passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("timed out")
}

func TestNameArrivesInBackground(t *testing.T) {
	r := New(0, 0, 0)
	release := make(chan struct{})
	var calls atomic.Int32
	r.lookup = func(ctx context.Context, addr string) ([]string, error) {
		calls.Add(1)
		<-release
		return []string{"host.example."}, nil
	}
	a := netip.MustParseAddr("192.0.2.1")
	start := time.Now()
	if n, ok := r.Name(a); ok || n != "" {
		t.Fatalf("first ask: %q %v, want unknown", n, ok)
	}
	if _, ok := r.Name(a); ok || calls.Load() > 1 {
		t.Fatal("a second ask while pending must not start another lookup")
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Fatal("Name blocked")
	}
	v := r.Version()
	close(release)
	waitFor(t, func() bool { return r.Version() != v })
	if n, ok := r.Name(a); !ok || n != "host.example" {
		t.Fatalf("after the answer: %q %v", n, ok)
	}
	if got := r.Format(netip.AddrPortFrom(a, 443)); got != "host.example:443" {
		t.Fatalf("Format: %q", got)
	}
}

func TestBounds(t *testing.T) {
	r := New(2, 1, time.Second)
	block := make(chan struct{})
	r.lookup = func(ctx context.Context, addr string) ([]string, error) {
		<-block
		return nil, context.DeadlineExceeded
	}
	r.Name(netip.MustParseAddr("192.0.2.1"))
	r.Name(netip.MustParseAddr("192.0.2.2")) // no free slot: not started
	r.mu.Lock()
	pending := len(r.pending)
	r.mu.Unlock()
	if pending != 1 {
		t.Fatalf("%d lookups in flight, want the bound, 1", pending)
	}
	close(block)
	for i := 3; i < 10; i++ {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		waitFor(t, func() bool { r.Name(a); _, ok := r.cacheGet(a); return ok })
	}
	r.mu.Lock()
	n := len(r.cache)
	r.mu.Unlock()
	if n > 2 {
		t.Fatalf("cache holds %d names, bound 2", n)
	}
}

func (r *Resolver) cacheGet(a netip.Addr) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.cache[a]
	return n, ok
}

// TestLoopbackName asks the system resolver for 127.0.0.1: it must answer
// with the first name /etc/hosts gives that address (read here on its
// own), as both Go's resolver and the C library's do.
func TestLoopbackName(t *testing.T) {
	want := hostsName(t, "127.0.0.1")
	r := New(0, 0, time.Second)
	a := netip.MustParseAddr("127.0.0.1")
	r.Name(a)
	waitFor(t, func() bool { _, ok := r.cacheGet(a); return ok })
	if n, ok := r.Name(a); !ok || n != want {
		t.Errorf("127.0.0.1 is %q (known %v); /etc/hosts names it %q", n, ok, want)
	}
}

// hostsName returns the first name /etc/hosts gives addr.
func hostsName(t *testing.T, addr string) string {
	t.Helper()
	data, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatalf("the system resolver's truth for this test: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if f := strings.Fields(line); len(f) >= 2 && f[0] == addr {
			return f[1]
		}
	}
	t.Fatalf("/etc/hosts names no %s: every Linux system names its loopback address there", addr)
	return ""
}
