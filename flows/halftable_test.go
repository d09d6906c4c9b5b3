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
