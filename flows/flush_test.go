package flows

import (
	"math/rand/v2"
	"testing"
	"time"
)

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

// TestFlushOrderFull flushes an unbounded table of full connections whose
// start times tie often and whose low 32 bits wrap (a start is sorted by
// its two halves, ties by the connection's ID in the slab), on one worker
// and on several, and checks that the records come by start time, then
// ID, each once.
func TestFlushOrderFull(t *testing.T) {
	for _, shards := range []int{1, 4} {
		tab := NewTable(Config{Shards: shards})
		rng := rand.New(rand.NewPCG(9, 10))
		ts := int64(-1) << 33 // before 1970: the high half is negative
		const n = 5000
		for i := range n {
			var p Packet
			c4 := [4]byte{10, 0, byte(i >> 8), byte(i)}
			s4 := [4]byte{10, 1, 0, 1}
			p.Tuple.SetV4(c4[:], s4[:])
			p.Tuple.SrcPort, p.Tuple.DstPort = uint16(1024+rng.IntN(200)), 80
			p.Flags, p.PayloadLen, p.Seq, p.WScale = ACK, 10, rng.Uint32(), -1
			if rng.IntN(3) == 0 {
				ts += rng.Int64N(1 << 31) // else the same time as the last
			}
			p.TS, p.FrameLen = ts, 64
			tab.Apply(&p)
		}
		recs := tab.Flush()
		if len(recs) != n {
			t.Fatalf("%d shards: flushed %d records, want %d", shards, len(recs), n)
		}
		seen := map[uint64]bool{}
		for i, r := range recs {
			if seen[r.ID] {
				t.Fatalf("connection %d flushed twice", r.ID)
			}
			seen[r.ID] = true
			if i > 0 {
				p := recs[i-1]
				if c := p.FirstSeen.Compare(r.FirstSeen); c > 0 || c == 0 && p.ID > r.ID {
					t.Fatalf("%d shards: record %d (%v, %d) after (%v, %d)", shards, i, r.FirstSeen, r.ID, p.FirstSeen, p.ID)
				}
			}
		}
	}
}
