package sockets

import (
	"net/netip"
	"testing"
)

// manyConns opens n loopback connections (2n sockets) in this process.
func manyConns(b *testing.B, n int) []pair {
	ps := make([]pair, n)
	for i := range ps {
		ps[i] = connect(b, "tcp4", "127.0.0.1:0", "127.0.0.1")
	}
	return ps
}

// BenchmarkRefresh measures one refresh of a host with a few hundred
// sockets of this process: the process scan, the socket dumps and the
// table build, through netlink and through /proc/net/tcp.
func BenchmarkRefresh(b *testing.B) {
	const conns = 150 // 300 sockets
	manyConns(b, conns)
	for _, bc := range []struct {
		name      string
		noNetlink bool
	}{{"netlink", false}, {"proc", true}} {
		b.Run(bc.name, func(b *testing.B) {
			r := New()
			r.noNetlink = bc.noNetlink
			if err := r.Refresh(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := r.Refresh(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			st := r.Stats()
			if st.Sockets < 2*conns {
				b.Fatalf("%d sockets, want at least %d", st.Sockets, 2*conns)
			}
			b.ReportMetric(float64(st.Sockets), "sockets")
			b.ReportMetric(float64(st.Processes), "procs")
		})
	}
}

// BenchmarkLookup measures lookups, found and not, in a table of a few
// hundred sockets.
func BenchmarkLookup(b *testing.B) {
	ps := manyConns(b, 150)
	r := New()
	if err := r.Refresh(); err != nil {
		b.Fatal(err)
	}
	miss := netip.MustParseAddrPort("192.0.2.1:1")
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p := ps[i%len(ps)]
			if _, ok := r.Lookup(p.c, p.s); !ok {
				b.Fatal("not found")
			}
			i++
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := r.Lookup(miss, miss); ok {
				b.Fatal("found")
			}
		}
	})
}
