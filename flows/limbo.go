package flows

// An evicted half-open connection is not forgotten at once. It waits in
// its shard's limbo until newer evictions push it out (or until its
// handshake would have timed out anyway); only then does its record go to
// OnRetire. If a packet of its 4-tuple arrives meanwhile, the connection
// comes back into the table whole.
//
// This is for the real client whose SYN arrives during a SYN flood: a full
// table keeps a half-open connection only as long as the flood takes to
// bring in the bound's worth of new ones (0.2 s at 500,000 SYNs/s with
// --max-conns 100000), and a handshake over a slow path takes longer.
// Without limbo its SYN would be evicted and the rest of the connection
// picked up mid-stream at the SYN-ACK: one connection split into two
// records. Limbo holds twice as many connections as the table's bound (up
// to limboMax), so it triples that time, for 88 bytes per entry: about
// 18 MB for a bound of 100,000.
//
// Limbo is a set-associative cache: a key's hash picks a set of up to
// limboWays slots, and a set replaces its entries first in, first out. A
// miss, which is what every SYN of a flood costs, reads one set's tags.

// limboMax bounds the connections in limbo across the table. A small
// table's limbo holds twice as many as the table, a large one's up to this
// many: with a bound of 2,000,000 a flood of 500,000 SYNs/s takes 4 s to
// push a half-open connection out of the table, so that more time in limbo
// would help no real handshake, and would cost 350 MB.
const limboMax = 1 << 18

// limboWays is the number of slots per set. With 16, an entry outlives
// at least half the average time one stays in limbo with a probability
// of more than 99%.
const limboWays = 16

// limbo is a shard's set of evicted half-open connections. Its memory is
// taken at the first eviction, outside the Go heap (offheap_unix.go).
type limbo struct {
	tags  []uint32 // per slot: bits of the key's hash, 0 if the slot is free
	slots []halfSlot
	next  []uint8 // per set: the slot its next entry takes
	ways  int
	size  int // slots wanted
	n     int // entries held
	free  func()
}

func newLimbo(size int) limbo { return limbo{size: size} }

// alloc takes limbo's memory.
func (l *limbo) alloc() {
	l.ways = limboWays
	if l.size <= 4*limboWays {
		l.ways = l.size // one set: exactly first in, first out
	}
	sets := (l.size + l.ways - 1) / l.ways
	l.tags = make([]uint32, sets*l.ways)
	l.slots, l.free = allocEntries(sets * l.ways)
	l.next = make([]uint8, sets)
}

// release gives limbo's memory back, leaving it empty. The caller must
// hold no reference into its slots.
func (l *limbo) release() {
	if l.free != nil {
		l.free()
	}
	*l = limbo{size: l.size}
}

// set returns the first slot of hash's set, and hash's tag. The shard was
// picked by the hash's low bits; the set and the tag use the others.
func (l *limbo) set(hash uint64) (int, uint32) {
	return int((hash>>16)%uint64(len(l.next))) * l.ways, uint32(hash>>32) | 1
}

// put adds an evicted connection. If its set is full, the set's oldest
// entry makes room and is returned, to be retired.
func (l *limbo) put(k *Key, hash uint64, h *halfOpen) (halfSlot, bool) {
	if l.size == 0 {
		return halfSlot{key: *k, h: *h}, true
	}
	if l.ways == 0 {
		l.alloc()
	}
	first, tag := l.set(hash)
	s := first / l.ways
	i := first + int(l.next[s])
	l.next[s] = uint8((int(l.next[s]) + 1) % l.ways)
	old, full := l.slots[i], l.tags[i] != 0
	if !full {
		l.n++
	}
	l.tags[i], l.slots[i] = tag, halfSlot{key: *k, h: *h}
	return old, full
}

// take removes and returns the connection with key k, if it is in limbo.
func (l *limbo) take(k *Key, hash uint64) (halfOpen, bool) {
	if l.n == 0 {
		return halfOpen{}, false
	}
	first, tag := l.set(hash)
	for i := first; i < first+l.ways; i++ {
		if l.tags[i] == tag && l.slots[i].key == *k {
			h := l.slots[i].h
			l.tags[i], l.slots[i] = 0, halfSlot{}
			l.n--
			return h, true
		}
	}
	return halfOpen{}, false
}

// each calls fn for every connection in limbo and removes those for which
// fn returns true.
func (l *limbo) each(fn func(e *halfSlot) bool) {
	if l.n == 0 {
		return
	}
	for i := range l.slots {
		if l.tags[i] != 0 && fn(&l.slots[i]) {
			l.tags[i], l.slots[i] = 0, halfSlot{}
			l.n--
		}
	}
}
