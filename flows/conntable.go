package flows

// connTable is a shard's table of full connections (robin.go), whose
// 16-byte slots hold a connection and its key's 64-bit hash. The key itself
// is only in the conn: a lookup compares hashes, then the key of the
// connection whose hash matches, a cache line the update reads anyway.
//
// A Go map[Key]*conn keeps a copy of the 44-byte key in 56-byte slots and
// doubles when it grows: 64 to 128 bytes per connection, and a cache miss
// on the slot's key before the one on the conn. This table takes 19 to 24
// bytes per connection, and a million connections' slots fit in 20 MB.
type connTable struct {
	robin[connSlot, *connSlot]
}

type connSlot struct {
	hash uint64
	c    *conn
}

func (s *connSlot) keyHash() uint64 { return s.hash }

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
	t.add(connSlot{hash, c}, hash)
}

// del removes the connection with key k, if there.
func (t *connTable) del(k *Key, hash uint64) {
	if i := t.find(k, hash); i >= 0 {
		t.delAt(i)
	}
}

// eachConn calls fn for every connection. fn must not change the table.
func (t *connTable) eachConn(fn func(c *conn)) {
	t.each(func(s *connSlot) { fn(s.c) })
}

// touchSlot loads the slot where a key of this hash would be found first,
// for Lanes.applyBatch, and returns something of it.
func (t *connTable) touchSlot(hash uint64) uint64 {
	if len(t.slots) == 0 {
		return 0
	}
	i := t.home(hash)
	return uint64(t.dist[i]) + t.slots[i].hash
}

// touchConn loads the connection of this hash (the first near its home,
// which touchSlot loaded), and returns something of it. It reads fields
// that only packets change, never timers: it takes no lock, and a view's
// snapshot may expire a connection's timers (its states) meanwhile.
func (t *connTable) touchConn(hash uint64) uint64 {
	if len(t.slots) == 0 {
		return 0
	}
	i := t.home(hash)
	for d := uint8(1); d <= 8; d++ {
		if t.dist[i] < d {
			return 0
		}
		if s := &t.slots[i]; s.hash == hash {
			c := s.c
			return uint64(c.key.Port[0]) + uint64(c.ep[0].isn) + uint64(c.ep[1].isn) + uint64(c.zeek.bits)
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
	return 0
}
