package flows

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/internal/radix"
)

// TestSortByStart compares the flush's sort with a comparison sort, on
// start times with many ties, negative ones, and spans of a few bytes or
// all eight.
func TestSortByStart(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var tmp []radix.Item
	for _, span := range []int64{1, 3, 1 << 20, 1 << 62} {
		for _, n := range []int{0, 1, 2, 100, 5000} {
			first := make([]int64, n)
			ids := make([]uint64, n)
			items := make([]radix.Item, n)
			for i := range items {
				first[i], ids[i] = rng.Int64N(span)-span/2, rng.Uint64()
				items[i] = radix.Item{K: startKey(first[i]), I: uint32(i)}
			}
			want := make([]int, n)
			for i := range want {
				want[i] = i
			}
			slices.SortFunc(want, func(x, y int) int {
				if c := cmp.Compare(first[x], first[y]); c != 0 {
					return c
				}
				return cmp.Compare(ids[x], ids[y])
			})
			var got []radix.Item
			got, tmp = sortByStart(items, tmp, func(i uint32) uint64 { return ids[i] })
			for i, w := range want {
				if g := int(got[i].I); g != w {
					t.Fatalf("span %d, n %d: position %d holds (%d, %d), want (%d, %d)", span, n, i, first[g], ids[g], first[w], ids[w])
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
