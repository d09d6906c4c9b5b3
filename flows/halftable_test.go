package flows

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestHalfTableMatchesMap runs random adds, updates and deletions on a
// halfTable and on a Go map side by side, at sizes that make it grow,
// shrink and wrap its probe runs around the end, and checks that they
// always hold the same entries.
func TestHalfTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ht halfTable
	ref := map[Key]halfOpen{}
	keyOf := func(i int) Key {
		var k Key
		binary.BigEndian.PutUint32(k.Addr[0][12:], uint32(i))
		k.Port[0], k.Port[1] = uint16(i>>16), 80
		return k
	}
	check := func(step int) {
		if ht.len() != len(ref) {
			t.Fatalf("step %d: %d entries, want %d", step, ht.len(), len(ref))
		}
		n := 0
		ht.each(func(s *halfSlot) {
			n++
			if w, ok := ref[s.key]; !ok || w != s.h {
				t.Fatalf("step %d: %v holds %+v, want %+v (present %v)", step, s.key.Endpoint(0), s.h, w, ok)
			}
		})
		if n != len(ref) {
			t.Fatalf("step %d: walked %d entries, want %d", step, n, len(ref))
		}
		if len(ht.slots) > 0 && (ht.n*8 > len(ht.slots)*7 || len(ht.slots) > robinMinSlots && ht.n*4 < len(ht.slots)) {
			t.Fatalf("step %d: %d entries in %d slots", step, ht.n, len(ht.slots))
		}
	}
	for step := 0; step < 200000; step++ {
		// The key space grows, then shrinks: the table does both.
		span := 2000
		if step > 100000 {
			span = 200
		}
		k := keyOf(rng.IntN(span))
		hash := k.hash64()
		switch op := rng.IntN(10); {
		case op < 5 && step <= 100000 || op < 2:
			h := halfOpen{pkts: uint16(1 + rng.IntN(5)), isn: rng.Uint32(), last: mk64(int64(step))}
			ht.set(&k, hash, h)
			ref[k] = h
		default:
			_, want := ref[k]
			got, ok := ht.get(&k, hash)
			if ok != want || ok && got != ref[k] {
				t.Fatalf("step %d: get %v = %+v %v, want %+v %v", step, k.Endpoint(0), got, ok, ref[k], want)
			}
			ht.del(&k, hash)
			delete(ref, k)
		}
		if step%997 == 0 {
			check(step)
			if i := ht.oldest(evictSample); (i < 0) != (len(ref) == 0) {
				t.Fatalf("step %d: oldest %d with %d entries", step, i, len(ref))
			}
		}
	}
	check(-1)
	for k := range ref {
		ht.del(&k, k.hash64())
	}
	if ht.len() != 0 || len(ht.slots) > robinMinSlots*2 {
		t.Fatalf("emptied: %d entries in %d slots", ht.len(), len(ht.slots))
	}
}

// TestHalfTableUnderFlood runs a SYN flood's churn on a full half table,
// each new entry evicting the one oldest chosen (as Table.evict does), and
// checks that the table keeps robin's load, between 70% and 87.5% full,
// with short probe runs, and that the entries evicted are among the
// oldest. Sampling the next 16 entries after a random slot evicted from
// the sparse stretches of the table, so that its runs grew (6.4 slots
// probed per entry) until inserts failed and the table grew (2,525 slots
// for these 1,563 entries within 5,400 steps, 4,931 later); and its
// choices were on average younger than 19% of the entries.
func TestHalfTableUnderFlood(t *testing.T) {
	const (
		bound = 1563 // a shard's share of --max-conns 100000
		steps = 100 * bound
	)
	var ht halfTable
	rng := rand.New(rand.NewPCG(3, 4))
	var rankSum float64
	ranks := 0
	for step := range steps {
		var k Key
		binary.BigEndian.PutUint32(k.Addr[0][12:], rng.Uint32())
		k.Addr[1][15] = 10
		k.Port[0], k.Port[1] = uint16(rng.Uint32()), 80
		if ht.len() == bound {
			i := ht.oldest(evictSample)
			if step%97 == 0 {
				// Its rank by age: the share of entries older than it.
				older, ts := 0, ht.slots[i].h.lastTS()
				ht.each(func(s *halfSlot) {
					if s.h.lastTS() < ts {
						older++
					}
				})
				rankSum += float64(older) / bound
				ranks++
			}
			ht.delAt(i)
		}
		ht.put(&k, k.hash64(), halfOpen{pkts: 1, last: mk64(int64(step))})
		if ht.len() == bound && (len(ht.slots)*7 > ht.len()*10 || len(ht.slots)*7 < ht.len()*8) {
			t.Fatalf("step %d: %d entries in %d slots, outside 70%% to 87.5%% full", step, ht.len(), len(ht.slots))
		}
	}
	dist := 0
	for i := range ht.slots {
		dist += int(ht.slots[i].dist)
	}
	// About 3 slots probed per entry found at this load; the next-16-entries
	// sample left over 6.
	if mean := float64(dist) / float64(ht.len()); mean > 4 {
		t.Errorf("%.1f slots probed per entry found, want at most 4", mean)
	}
	// The oldest of 16 entries drawn independently would be older than all
	// but 1/17 of them (6%); neighbours in a stretch are a little less
	// independent (9% here), the next 16 entries far less (19%).
	if mean := rankSum / float64(ranks); mean > 0.12 {
		t.Errorf("the entries evicted were on average younger than %.0f%% of the entries, want 12%% at most", 100*mean)
	}
}
