package flows

import "math/bits"

// connTable is a shard's table of full connections: an open-addressing
// hash table (Robin Hood hashing with linear probing, like halfTable) whose
// 16-byte slots hold a connection and its key's 64-bit hash, with each
// slot's distance from its home in a byte beside it. The key itself is
// only in the conn: a lookup compares hashes, then the key of the
// connection whose hash matches, a cache line the update reads anyway.
//
// A Go map[Key]*conn keeps a copy of the 44-byte key in 56-byte slots and
// doubles when it grows: 64 to 128 bytes per connection, and a cache miss
// on the slot's key before the one on the conn. This table takes 19 to 24
// bytes per connection (it grows by a quarter and stays 70% to 87.5%
// full), and a million connections' slots fit in 20 MB. Deletion shifts
// the following entries back (no tombstones), so churn leaves no dead room.
type connTable struct {
	slots []connSlot
	dist  []uint8 // per slot: 0 if free, else 1 + its distance from its home
	n     int
}

type connSlot struct {
	hash uint64
	c    *conn
}

const connMinSlots = 16

func (t *connTable) len() int { return t.n }

// home returns the slot where a key with this hash belongs (see
// halfTable.home).
func (t *connTable) home(hash uint64) int {
	hi, _ := bits.Mul64(hash, uint64(len(t.slots)))
	return int(hi)
}

// find returns the slot holding the connection with key k, or -1.
func (t *connTable) find(k *Key, hash uint64) int {
	if t.n == 0 {
		return -1
	}
	i := t.home(hash)
	for d := uint8(1); ; d++ {
		sd := t.dist[i]
		if sd < d { // free, or richer than k would be: k is not here
			return -1
		}
		if sd == d && t.slots[i].hash == hash && t.slots[i].c.key == *k {
			return i
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// get returns the connection with key k, or nil.
func (t *connTable) get(k *Key, hash uint64) *conn {
	if i := t.find(k, hash); i >= 0 {
		return t.slots[i].c
	}
	return nil
}

// set makes c the connection of its key, in place of any other.
func (t *connTable) set(c *conn, hash uint64) {
	if i := t.find(&c.key, hash); i >= 0 {
		t.slots[i].c = c
		return
	}
	if (t.n+1)*8 > len(t.slots)*7 {
		t.resize(len(t.slots) + len(t.slots)/4)
	}
	for !t.insert(connSlot{hash, c}, t.home(hash)) {
		t.resize(len(t.slots) + len(t.slots)/4)
	}
}

// insert puts s, whose key is absent, in its place from slot i (see
// halfTable.insert). It reports false, changing nothing, if a run would
// grow too long.
func (t *connTable) insert(s connSlot, i int) bool {
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

// del removes the connection with key k, if there.
func (t *connTable) del(k *Key, hash uint64) {
	if i := t.find(k, hash); i >= 0 {
		t.delAt(i)
	}
}

// delAt empties slot i and shifts the entries after it one slot back
// towards their homes.
func (t *connTable) delAt(i int) {
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
	t.slots[i], t.dist[i] = connSlot{}, 0
	t.n--
	if len(t.slots) > connMinSlots && t.n*4 < len(t.slots) {
		t.resize(t.n * 10 / 7)
	}
}

// resize moves every entry to a table of size slots (at least n+1). The
// stored hashes place them: no connection is read.
func (t *connTable) resize(size int) {
	size = max(size, connMinSlots, t.n+1)
	for {
		old, oldDist, n := t.slots, t.dist, t.n
		t.slots, t.dist, t.n = make([]connSlot, size), make([]uint8, size), 0
		ok := true
		for i := range old {
			if oldDist[i] != 0 && !t.insert(old[i], t.home(old[i].hash)) {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		t.slots, t.dist, t.n = old, oldDist, n
		size += size / 4
	}
}

// each calls fn for every connection. fn must not change the table.
func (t *connTable) each(fn func(c *conn)) {
	if t.n == 0 {
		return
	}
	for i := range t.slots {
		if t.dist[i] != 0 {
			fn(t.slots[i].c)
		}
	}
}
