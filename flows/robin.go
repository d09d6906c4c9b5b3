package flows

import (
	"math/bits"
	"sync"
	"unsafe"
)

// robin is the core of the shards' hash tables (halfTable, connTable): open
// addressing with Robin Hood hashing and linear probing, over slots of type
// S, with each slot's distance from its key's home in the slot's first
// byte (distOf): a probe reads one cache line of one page, where a
// separate array of distance bytes made it two of two pages, each a miss
// of the TLB as often as not in a large table.
//
// A Go map doubles when it grows, so that its memory per entry swings by
// a factor of two with the number of entries; robin grows by a quarter at
// a time and is kept between 70% and 87.5% full. Robin Hood hashing keeps
// probe runs short at that load: a lookup stops as soon as it meets an
// entry closer to its home than the key sought would be, and mostly reads
// the distance bytes only. Deletion shifts the following entries back (no
// tombstones), so that churn — an eviction for every new connection under
// a flood — leaves no dead room behind, and the table shrinks when it
// empties. Each table looks its keys up itself (find), the hot path: a
// shared generic find, comparing keys through a method of the slot, made
// Apply allocate the key (docs/performance-notes-flows.md).
//
// A large table's slots are outside the Go heap (robinMapAt), where the
// heap's growth target (twice the live heap) does not double them and
// where they go back to the system as soon as the table lets go of them:
// when it shrinks (the pages past its new end), when it moves, and when
// a flush takes a shard's connections (giveBack). It grows in place (resize).
// S must hold no pointer, and its first byte must be a uint8 field for
// the distance (distOf), 0 in a zero S.
type robin[S any, P slotOf[S]] struct {
	slots []S
	n     int
	free  func() // gives slots back, if outside the heap
}

// distOf returns the distance byte of slot s, its first: 0 if the slot is
// free, else 1 + its entry's distance from its home. The slot types say
// so with a field of their own (connSlot.dist, halfSlot.dist), which the
// tables' finds read directly; robin, generic, reads it here, where a
// method of the slot would be an indirect call for every probe.
func distOf[S any](s *S) *uint8 { return (*uint8)(unsafe.Pointer(s)) }

// dist returns the distance of slot i (distOf).
func (t *robin[S, P]) dist(i int) uint8 { return *distOf(&t.slots[i]) }

// slotOf is what robin needs of a slot: its key's hash, to move it when
// the table is resized.
type slotOf[S any] interface {
	*S
	keyHash() uint64
}

const (
	// robinMapAt is the size of slots from which a table is outside the
	// heap: a mapping is whole pages, and costs a system call.
	robinMapAt    = 4 << 10
	robinMinSlots = 16
	robinMaxDist  = 250 // an entry further from its home makes the table grow
)

func (t *robin[S, P]) len() int { return t.n }

// home returns the slot where a key with this hash belongs: its hash scaled
// to the table's size (Lemire's fast range), which takes the hash's high
// bits; the shard was picked by its low ones.
func (t *robin[S, P]) home(hash uint64) int {
	hi, _ := bits.Mul64(hash, uint64(len(t.slots)))
	return int(hi)
}

// add stores s, whose key (of this hash) is absent.
func (t *robin[S, P]) add(s S, hash uint64) {
	if (t.n+1)*8 > len(t.slots)*7 {
		t.resize(len(t.slots) + len(t.slots)/4)
	}
	for !t.insert(s, t.home(hash)) {
		t.resize(len(t.slots) + len(t.slots)/4)
	}
}

// insert puts s, whose key is absent, in its place from slot i, taking the
// place of any entry nearer its home than s would be (which then moves on).
// It reports false, changing nothing, if an entry would end up too far
// from its home.
func (t *robin[S, P]) insert(s S, i int) bool {
	// Find the free slot first, so that a failure changes nothing. A
	// run keeps its entries in the order of their homes, and an insert
	// shifts those after the new one's place by one slot: no distance
	// grows past the run's largest plus one. The run's length does not
	// matter (bounding it too made a table under a flood grow to twice
	// its entries' room, on the rare long run that linear probing makes
	// at 80% load).
	far := 0
	for j := i; t.dist(j) != 0; {
		far = max(far, int(t.dist(j)))
		if far >= robinMaxDist {
			return false
		}
		if j++; j == len(t.slots) {
			j = 0
		}
	}
	d := distOf(&s) // s's distance, as it moves on
	*d = 1
	for {
		p := &t.slots[i]
		sd := *distOf(p)
		if sd == 0 {
			*p = s
			t.n++
			return true
		}
		if sd < *d {
			s, *p = *p, s
		}
		*d++
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// delAt empties slot i and shifts the entries after it one slot back
// towards their homes.
func (t *robin[S, P]) delAt(i int) {
	var zero S
	for {
		j := i + 1
		if j == len(t.slots) {
			j = 0
		}
		if t.dist(j) <= 1 { // free, or at its home
			break
		}
		t.slots[i] = t.slots[j]
		*distOf(&t.slots[i])--
		i = j
	}
	t.slots[i] = zero
	t.n--
	if len(t.slots) > robinMinSlots && t.n*4 < len(t.slots) {
		t.resize(t.n * 10 / 7)
	}
}

// resize moves every entry to a table of size slots (at least n+1).
//
// A table outside the heap has room to grow in place (robinRoom): its
// entries are copied aside and put back into the same mapping, made
// larger. That costs no system call, and only the pages added are new: a
// new mapping for each step of a quarter, and unmapping the old one,
// made a table fault in five times its final size and flush the TLB of
// every core at each step.
func (t *robin[S, P]) resize(size int) {
	size = max(size, robinMinSlots, t.n+1)
	if t.free == nil || size > cap(t.slots) {
		t.move(size)
		return
	}
	es, done := robinScratch[S](t.n)
	defer done()
	k := 0
	for i := range t.slots {
		if t.dist(i) != 0 {
			es[k] = t.slots[i]
			k++
		}
	}
	hi := len(t.slots) // the slots written so far
	for ; size <= cap(t.slots); size += size / 4 {
		clear(t.slots[:hi])
		hi = max(hi, size)
		t.slots, t.n = t.slots[:size], 0
		if t.insertAll(es) {
			dropTail(t.slots[size:hi])
			return
		}
	}
	t.free()
	for {
		t.slots, t.free = robinSlots[S](size)
		t.n = 0
		if t.insertAll(es) {
			return
		}
		t.free()
		size += size / 4
	}
}

// insertAll inserts es, which are absent, into an empty table, reporting
// false if one ended too far from its home.
func (t *robin[S, P]) insertAll(es []S) bool {
	for i := range es {
		if !t.insert(es[i], t.home(P(&es[i]).keyHash())) {
			return false
		}
	}
	return true
}

// move moves every entry to a new table of size slots (at least n+1),
// larger if they do not fit.
func (t *robin[S, P]) move(size int) {
	for {
		old, n, oldFree := t.slots, t.n, t.free
		t.slots, t.free = robinSlots[S](size)
		t.n = 0
		ok := true
		for i := range old {
			if *distOf(&old[i]) != 0 && !t.insert(old[i], t.home(P(&old[i]).keyHash())) {
				ok = false
				break
			}
		}
		if ok {
			if oldFree != nil {
				oldFree()
			}
			return
		}
		if t.free != nil {
			t.free()
		}
		t.slots, t.n, t.free = old, n, oldFree // start again from the old table, larger
		size += size / 4
	}
}

// robinRoom is how many times its size a table outside the heap reserves
// of address space, to grow into in place (at most robinRoomMax bytes of
// slots, or its size if larger): from robinMapAt, a table of 8-byte slots
// grows to 128 k entries before it must move.
const (
	robinRoom    = 256
	robinRoomMax = 64 << 20
)

// robinSlots returns size free slots, outside the heap if they are large,
// with what gives them back (nil if on the heap).
func robinSlots[S any](size int) ([]S, func()) {
	var zero S
	if size*int(unsafe.Sizeof(zero)) < robinMapAt {
		return make([]S, size), nil
	}
	room := max(size, min(size*robinRoom, robinRoomMax/int(unsafe.Sizeof(zero))))
	return offHeapRoom[S](size, room)
}

// scratch is where resize puts a table's entries aside. One is kept, up
// to scratchKeep bytes, for the next resize: the shards grow in step, and
// a buffer each time would be garbage to collect.
var scratch struct {
	sync.Mutex
	buf []uint64
}

const scratchKeep = 1 << 20

// robinScratch returns room for n values of S, which holds no pointer,
// and what to call when done with it.
func robinScratch[S any](n int) ([]S, func()) {
	var zero S
	words := (n*int(unsafe.Sizeof(zero)) + 7) / 8
	if words == 0 {
		return nil, func() {}
	}
	if words*8 > scratchKeep || !scratch.TryLock() {
		return make([]S, n), func() {}
	}
	if cap(scratch.buf) < words {
		scratch.buf = make([]uint64, min(max(words, 2*cap(scratch.buf)), scratchKeep/8))
	}
	return unsafe.Slice((*S)(unsafe.Pointer(unsafe.SliceData(scratch.buf))), n), scratch.Unlock
}

// bytesMapped returns the bytes of the table outside the heap.
func (t *robin[S, P]) bytesMapped() int {
	if t.free == nil {
		return 0
	}
	var zero S
	return len(t.slots) * int(unsafe.Sizeof(zero))
}

// giveBack empties the table, giving its slots back to the system at once
// if they are outside the heap. Nothing may use what it held after.
func (t *robin[S, P]) giveBack() {
	if t.free != nil {
		t.free()
	}
	t.slots, t.n, t.free = nil, 0, nil
}

// each calls fn for every entry. fn must not change the table.
func (t *robin[S, P]) each(fn func(*S)) {
	if t.n == 0 {
		return
	}
	for i := range t.slots {
		if t.dist(i) != 0 {
			fn(&t.slots[i])
		}
	}
}
