package flows

import "unsafe"

// halfTable is a shard's table of half-open connections (robin.go),
// holding each key, its halfOpen and robin's distance byte in one 88-byte
// slot. At robin's load, between 70% and 87.5% full, that is 101 to 126
// bytes per half-open connection (TestHalfOpenBytes
// derives the figures from the slot's size); a Go map doubles, and would
// swing by a factor of two. BenchmarkMemoryPerConn measures the heap.
type halfTable struct {
	robin[halfSlot, *halfSlot]
	rng uint64 // xorshift state, for sampling
}

// halfSlot is a half-open connection and its key: a slot of the half
// table, and of limbo.
type halfSlot struct {
	dist uint8 // robin's (distOf): first; 0 in limbo
	key  Key
	h    halfOpen
}

func (s *halfSlot) keyHash() uint64 { return s.key.hash64() }

// find returns the slot holding k, or -1.
func (t *halfTable) find(k *Key, hash uint64) int {
	if t.n == 0 {
		return -1
	}
	i := t.home(hash)
	for d := uint8(1); ; d++ {
		s := &t.slots[i]
		if s.dist < d { // free, or richer than k would be: k is not here
			return -1
		}
		if s.dist == d && s.key == *k {
			return i
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// get returns the half-open connection with key k.
func (t *halfTable) get(k *Key, hash uint64) (halfOpen, bool) {
	if i := t.find(k, hash); i >= 0 {
		return t.slots[i].h, true
	}
	return halfOpen{}, false
}

// set stores h under k, adding it if k is not there.
func (t *halfTable) set(k *Key, hash uint64, h halfOpen) {
	if i := t.find(k, hash); i >= 0 {
		t.slots[i].h = h
		return
	}
	t.put(k, hash, h)
}

// put stores h under k, known to be absent.
func (t *halfTable) put(k *Key, hash uint64, h halfOpen) { t.add(halfSlot{key: *k, h: h}, hash) }

// del removes k, if there.
func (t *halfTable) del(k *Key, hash uint64) {
	if i := t.find(k, hash); i >= 0 {
		t.delAt(i)
	}
}

// oldest returns the slot of the entry whose latest SYN is the oldest of
// about n entries taken at random; -1 if the table is empty. Where an
// entry sits depends on its key's hash only, not on its age, so the
// entries found are a fair sample (as Redis approximates LRU).
//
// The sample must be one of entries, not of places in the table: under a
// flood every new entry evicts one, and evictions must thin each stretch
// of the table as much as entries crowd it, or the probe runs grow. The
// next n entries after a random slot sampled an entry after free slots
// more often than one inside a run, so that runs only grew, and with them
// every lookup (a miss for each SYN of a flood); the n slots after a
// random one sampled every slot alike, which left the runs to wander. So oldest takes the entries of a random
// stretch of as many slots as hold n entries at the table's load, and
// keeps the stretch with a probability of its share of entries, else
// tries another: each entry is then as likely as any other to be
// compared, and the stretch is read in order.
func (t *halfTable) oldest(n int) int {
	if t.n == 0 {
		return -1
	}
	span := min(len(t.slots), (n*len(t.slots)+t.n-1)/t.n)
	for {
		r := t.random()
		i := t.home(r)
		best, m := -1, 0
		for range span {
			if t.slots[i].dist != 0 {
				m++
				if best < 0 || t.slots[i].h.lastTS() < t.slots[best].h.lastTS() {
					best = i
				}
			}
			if i++; i == len(t.slots) {
				i = 0
			}
		}
		// Keep it with probability m/span, from the bits home did not use.
		if best >= 0 && uint64(uint32(r))*uint64(span) < uint64(m)<<32 {
			return best
		}
	}
}

// random returns the next number of the table's xorshift generator.
func (t *halfTable) random() uint64 {
	t.rng ^= t.rng << 13
	t.rng ^= t.rng >> 7
	t.rng ^= t.rng << 17
	if t.rng == 0 {
		t.rng = 0x9e3779b97f4a7c15
	}
	return t.rng
}

// touchSlot brings the slot where a key of this hash would be found
// first into the caches (prefetch), for Lanes.applyBatch, and returns
// something of it. An 88-byte slot straddles two cache lines as often as
// not, and a lookup compares the whole key.
func (t *halfTable) touchSlot(hash uint64) uint64 {
	if len(t.slots) == 0 {
		return 0
	}
	i := t.home(hash)
	return prefetch(unsafe.Pointer(&t.slots[i]), unsafe.Sizeof(t.slots[i]))
}
