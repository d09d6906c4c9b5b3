package sockets

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// TestStart runs the background refresher: lookups never wait for it, and
// it ends soon after its context.
func TestStart(t *testing.T) {
	p := connect(t, "tcp4", "127.0.0.1:0", "127.0.0.1")
	r := New()
	if _, ok := r.Lookup(p.c, p.s); ok {
		t.Fatal("found before any refresh")
	}
	r.Wait() // not started: returns at once
	ctx, cancel := context.WithCancel(context.Background())
	r.Start(ctx, 10*time.Millisecond)
	r.Start(ctx, time.Hour) // no second goroutine
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r.Lookup(p.c, p.s)
				r.Nudge()
				r.Stats()
				r.Warnings()
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().Refreshes < 3 {
		if time.Now().After(deadline) {
			t.Fatal("fewer than 3 refreshes in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if o, ok := r.Lookup(p.c, p.s); !ok || o.Seen.IsZero() {
		t.Errorf("%v %+v", ok, o)
	}
	cancel()
	done := make(chan struct{})
	go func() { r.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the refresher did not stop within 5 s of its context")
	}
}

// TestLookupAllocs: lookups, made per connection per frame, allocate
// nothing.
func TestLookupAllocs(t *testing.T) {
	p := connect(t, "tcp4", "127.0.0.1:0", "127.0.0.1")
	r := New()
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	miss := netip.MustParseAddrPort("192.0.2.1:1")
	if n := testing.AllocsPerRun(100, func() {
		r.Lookup(p.c, p.s)
		r.Lookup(miss, miss)
	}); n != 0 {
		t.Errorf("%v allocations per lookup", n)
	}
}

// TestGoneBounded checks that departed sockets are forgotten after Linger
// and that the memory of them is bounded.
func TestGoneBounded(t *testing.T) {
	r := New()
	now := time.Now()
	old := &table{socks: map[sockKey]Owner{}, when: now}
	for i := range MaxGone + 10 {
		var k sockKey
		k.lport, k.rport = uint16(i), uint16(i>>16)
		old.socks[k] = Owner{PID: 1}
	}
	r.cur.Store(old)
	if err := r.Refresh(); err != nil { // none of those sockets exists
		t.Fatal(err)
	}
	r.mu.RLock()
	n, q := len(r.gone), len(r.goneQ)
	r.mu.RUnlock()
	if n > MaxGone || q > MaxGone {
		t.Errorf("%d gone sockets remembered (%d queued), want at most %d", n, q, MaxGone)
	}
	var k sockKey
	i := MaxGone + 5 // among the newest: still remembered
	k.lport, k.rport = uint16(i), uint16(i>>16)
	if o, ok := r.lookup(k); !ok || !o.Gone || o.PID != 1 {
		t.Errorf("%v %+v", ok, o)
	}
	r.mu.Lock() // age them past Linger
	for i := range r.goneQ {
		r.goneQ[i].at = r.goneQ[i].at.Add(-2 * Linger)
		o := r.gone[r.goneQ[i].key]
		o.Seen = r.goneQ[i].at
		r.gone[r.goneQ[i].key] = o
	}
	r.mu.Unlock()
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	left := 0
	r.mu.RLock()
	for k := range old.socks {
		if _, ok := r.gone[k]; ok {
			left++
		}
	}
	r.mu.RUnlock()
	if left != 0 {
		t.Errorf("%d gone sockets remembered after Linger", left)
	}
}

// TestNewSockets checks that sockets opened after a refresh, by this
// process (which already holds sockets) and by a new child process, are
// credited to their processes by the next refresh, which reads only the
// descriptors it needs to, and that refreshes that read none keep them.
func TestNewSockets(t *testing.T) {
	old := connect(t, "tcp4", "127.0.0.1:0", "127.0.0.1")
	r := New()
	await(t, r, old.c, old.s, flows.StateEstablished)
	if st := r.Stats(); st.Scan != "full" {
		t.Errorf("first refresh: scan %q, want full", st.Scan)
	}
	p := connect(t, "tcp4", "127.0.0.1:0", "127.0.0.1")
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Scan == "" {
		t.Errorf("scan %q after new sockets", st.Scan)
	}
	o, ok := r.Lookup(p.c, p.s)
	if !ok {
		t.Fatal("new socket not found")
	}
	checkOwner(t, "new socket", o, os.Getpid(), ourComm(), ViaFD)

	pid, c, s := startPair(t)
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	o, ok = r.Lookup(c, s)
	if !ok {
		t.Fatal("child's socket not found")
	}
	checkOwner(t, "child's socket", o, pid, ourComm(), ViaFD)
	for range fullScanEvery + 2 {
		if err := r.Refresh(); err != nil {
			t.Fatal(err)
		}
		o, _ := r.Lookup(c, s)
		checkOwner(t, fmt.Sprintf("child's socket, scan %q", r.Stats().Scan), o, pid, ourComm(), ViaFD)
	}
}
