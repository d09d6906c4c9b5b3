package flows

import "math/bits"

// halfTable is a shard's table of half-open connections: an open-addressing
// hash table (Robin Hood hashing with linear probing), holding each key
// and its halfOpen in one 84-byte slot, and each slot's distance from its
// key's home in a byte beside it.
//
// It replaces a Go map for the table that a SYN flood fills. A Go map
// doubles when it grows, so that its memory per entry swings between about
// 110 and 220 bytes with the number of entries; this table grows by a
// quarter at a time and is kept between 70% and 87.5% full, which bounds it
// to 97–122 bytes per half-open connection. Robin Hood hashing keeps probe
// runs short at that load: a lookup stops as soon as it meets an entry
// closer to its home than the key sought would be, and mostly reads the
// distance bytes only. Deletion shifts the following entries back (no
// tombstones), so that the churn of a flood — an eviction for every new
// SYN — leaves no dead room behind, and the table shrinks when it empties.
type halfTable struct {
	slots []halfSlot
	dist  []uint8 // per slot: 0 if free, else 1 + its distance from its home
	n     int
	rng   uint64 // xorshift state, for sampling
}

// halfSlot is one slot.
type halfSlot struct {
	key Key
	h   halfOpen
}

const (
	halfMinSlots = 16
	halfMaxDist  = 250 // a longer run makes the table grow
)

func (t *halfTable) len() int { return t.n }

// home returns the slot where a key with this hash belongs: its hash scaled
// to the table's size (Lemire's fast range), which takes the hash's high
// bits; the shard was picked by its low ones.
func (t *halfTable) home(hash uint64) int {
	hi, _ := bits.Mul64(hash, uint64(len(t.slots)))
	return int(hi)
}

// find returns the slot holding k, or -1.
func (t *halfTable) find(k *Key, hash uint64) int {
	if t.n == 0 {
		return -1
	}
	i := t.home(hash)
	for d := uint8(1); ; d++ {
		sd := t.dist[i]
		if sd < d { // free, or richer than k would be: k is not here
			return -1
		}
		if sd == d && t.slots[i].key == *k {
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
	t.add(k, hash, h)
}

// add stores h under k, known to be absent.
func (t *halfTable) add(k *Key, hash uint64, h halfOpen) {
	if (t.n+1)*8 > len(t.slots)*7 {
		t.resize(len(t.slots) + len(t.slots)/4)
	}
	for !t.insert(halfSlot{*k, h}, t.home(hash)) {
		t.resize(len(t.slots) + len(t.slots)/4)
	}
}

// insert puts s, known to be absent, in its place from slot i, taking the
// place of any entry nearer its home than s would be (which then moves on).
// It reports false, changing nothing, if a run would grow too long.
func (t *halfTable) insert(s halfSlot, i int) bool {
	// Find the free slot first, so that a failure changes nothing: no
	// entry of the run moves further than the run is long.
	run, far := 0, 0
	for j := i; t.dist[j] != 0; {
		run++
		far = max(far, int(t.dist[j]))
		if far+run > halfMaxDist {
			return false
		}
		if j++; j == len(t.slots) {
			j = 0
		}
	}
	d := uint8(1)
	for {
		sd := t.dist[i]
		if sd == 0 {
			t.slots[i], t.dist[i] = s, d
			t.n++
			return true
		}
		if sd < d {
			s, t.slots[i] = t.slots[i], s
			d, t.dist[i] = sd, d
		}
		d++
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// del removes k, if there.
func (t *halfTable) del(k *Key, hash uint64) {
	if i := t.find(k, hash); i >= 0 {
		t.delAt(i)
	}
}

// delAt empties slot i and shifts the entries after it one slot back
// towards their homes.
func (t *halfTable) delAt(i int) {
	for {
		j := i + 1
		if j == len(t.slots) {
			j = 0
		}
		if t.dist[j] <= 1 { // free, or at its home
			break
		}
		t.slots[i], t.dist[i] = t.slots[j], t.dist[j]-1
		i = j
	}
	t.slots[i], t.dist[i] = halfSlot{}, 0
	t.n--
	if len(t.slots) > halfMinSlots && t.n*4 < len(t.slots) {
		t.resize(t.n * 10 / 7)
	}
}

// resize moves every entry to a table of size slots (at least n+1).
func (t *halfTable) resize(size int) {
	size = max(size, halfMinSlots, t.n+1)
	for {
		old, oldDist := t.slots, t.dist
		t.slots, t.dist, t.n = make([]halfSlot, size), make([]uint8, size), 0
		ok := true
		for i := range old {
			if oldDist[i] != 0 && !t.insert(old[i], t.home(old[i].key.hash64())) {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		t.slots, t.dist, t.n = old, oldDist, 0 // start again from the old table, larger
		for _, d := range oldDist {
			if d != 0 {
				t.n++
			}
		}
		size += size / 4
	}
}

// each calls fn for every entry. fn must not change the table.
func (t *halfTable) each(fn func(s *halfSlot)) {
	if t.n == 0 {
		return
	}
	for i := range t.slots {
		if t.dist[i] != 0 {
			fn(&t.slots[i])
		}
	}
}

// oldest returns the slot of the entry whose latest SYN is the oldest of
// up to n entries, taken from a random place; -1 if the table is empty.
// Where an entry sits depends on its key's hash only, not on its age, so
// the entries found are a fair sample (as Redis approximates LRU).
func (t *halfTable) oldest(n int) int {
	if t.n == 0 {
		return -1
	}
	t.rng ^= t.rng << 13 // xorshift64
	t.rng ^= t.rng >> 7
	t.rng ^= t.rng << 17
	if t.rng == 0 {
		t.rng = 0x9e3779b97f4a7c15
	}
	best, seen := -1, 0
	i := t.home(t.rng)
	for range t.slots {
		if t.dist[i] != 0 {
			if best < 0 || t.slots[i].h.lastTS() < t.slots[best].h.lastTS() {
				best = i
			}
			if seen++; seen == n {
				break
			}
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
	return best
}
