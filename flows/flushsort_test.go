package flows

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestSortStarted compares the radix sort with a comparison sort, on start
// times with many ties, negative ones, and spans of a few bytes or all
// eight.
func TestSortStarted(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var tmp []started[*uint64]
	for _, span := range []int64{1, 3, 1 << 20, 1 << 62} {
		for _, n := range []int{0, 1, 2, 100, 5000} {
			a := make([]started[*uint64], n)
			for i := range a {
				id := rng.Uint64()
				a[i] = started[*uint64]{rng.Int64N(span) - span/2, &id}
			}
			want := slices.Clone(a)
			slices.SortFunc(want, func(x, y started[*uint64]) int {
				if c := cmp.Compare(x.first, y.first); c != 0 {
					return c
				}
				return cmp.Compare(*x.p, *y.p)
			})
			var got []started[*uint64]
			got, tmp = sortStarted(a, tmp, func(p *uint64) uint64 { return *p })
			for i := range want {
				if got[i].first != want[i].first || got[i].p != want[i].p {
					t.Fatalf("span %d, n %d: position %d holds (%d, %d), want (%d, %d)", span, n, i, got[i].first, *got[i].p, want[i].first, *want[i].p)
				}
			}
		}
	}
}

// TestFlushOrder flushes a bounded table with full, half-open and evicted
// (limbo) connections whose start times tie often, and checks that the
// records come by start time, then ID, each once.
func TestFlushOrder(t *testing.T) {
	tab := NewTable(Config{Shards: 2, MaxConns: 40})
	rng := rand.New(rand.NewPCG(7, 8))
	ts := time.Unix(1e9, 0).UnixNano()
	for i := range 3000 {
		var p Packet
		c4 := [4]byte{10, 0, byte(i >> 8), byte(i)}
		s4 := [4]byte{10, 1, 0, 1}
		p.Tuple.SetV4(c4[:], s4[:])
		p.Tuple.SrcPort, p.Tuple.DstPort = uint16(1024+rng.IntN(200)), 80
		p.Flags, p.Seq, p.WScale = SYN, rng.Uint32(), -1
		if rng.IntN(3) == 0 {
			p.Flags, p.PayloadLen = ACK, 10 // a full connection, picked up mid-stream
		}
		if rng.IntN(4) == 0 {
			ts += int64(time.Microsecond) // else the same time as the last
		}
		p.TS, p.FrameLen = ts, 64
		tab.Apply(&p)
	}
	if tab.Evicted() == 0 {
		t.Fatal("no eviction: limbo is not exercised")
	}
	recs := tab.Flush()
	seen := map[uint64]bool{}
	kinds := map[bool]int{}
	for i, r := range recs {
		if seen[r.ID] {
			t.Fatalf("connection %d flushed twice", r.ID)
		}
		seen[r.ID] = true
		kinds[r.End == EndEvicted]++
		if i > 0 {
			p := recs[i-1]
			if c := p.FirstSeen.Compare(r.FirstSeen); c > 0 || c == 0 && p.ID > r.ID {
				t.Fatalf("record %d (%v, %d) after (%v, %d)", i, r.FirstSeen, r.ID, p.FirstSeen, p.ID)
			}
		}
	}
	if kinds[true] == 0 || kinds[false] == 0 {
		t.Fatalf("flushed %d evicted and %d tracked: want both", kinds[true], kinds[false])
	}
}
