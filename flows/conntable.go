package flows

import "unsafe"

// connTable is a shard's table of full connections: the connections, in
// the table's slab (slab.go), and an index of them (robin.go) whose 8-byte slots hold a
// connection's slab index, the high 24 bits of its key's hash and robin's
// distance byte. The key
// itself is only in the conn, on the cache line that the update reads
// anyway: a lookup compares hash bits, then the key of the connection
// whose bits match.
//
// A Go map[Key]*conn keeps a copy of the 44-byte key in 56-byte slots and
// doubles when it grows: 64 to 128 bytes per connection, and a cache miss
// on the slot's key before the one on the conn. This index takes 9 to 11
// bytes per connection (a slot at robin's load), and a million
// connections' slots fit in 11 MB.
type connTable struct {
	robin[connSlot, *connSlot]
	slab *slab      // shared by the shards
	cold *coldStore // the table's, whose address pool holds keys' IPv6 addresses
	// gen counts the connections taken out of the index or replaced in it
	// (set), and the indexes replaced (Flush): a lane's recent lookups
	// (lastConn) hold while it is unchanged.
	gen uint64
}

// delAt takes slot i's connection out of the index.
func (t *connTable) delAt(i int) {
	t.gen++
	t.robin.delAt(i)
}

// connSlot is a slot of the index. Its tag is the high 24 bits of its
// key's hash (tagLo the low 8 of those), leaving the slot's first byte to
// robin's distance: a lookup compares the tag for 1 key in 16 million
// that it need not, against a second cache line and page per probe for a
// distance kept apart.
type connSlot struct {
	dist  uint8 // robin's (distOf): first
	tagLo uint8
	tagHi uint16
	i     uint32 // its index in the slab
}

// The distance must be a connSlot's and a halfSlot's first byte (distOf).
var _ = [1]int{}[unsafe.Offsetof(connSlot{}.dist)+unsafe.Offsetof(halfSlot{}.dist)]

// connTag returns a slot's tag for a key of this hash.
func connTag(hash uint64) (lo uint8, hi uint16) { return uint8(hash >> 40), uint16(hash >> 48) }

// newConnSlot returns the slot of connection i, whose key has this hash.
func newConnSlot(hash uint64, i uint32) connSlot {
	lo, hi := connTag(hash)
	return connSlot{tagLo: lo, tagHi: hi, i: i}
}

// keyHash returns the slot's key's hash as the index places it: the high
// bits (home takes those), the low ones zero.
func (s *connSlot) keyHash() uint64 { return (uint64(s.tagHi)<<8 | uint64(s.tagLo)) << 40 }

// placed returns hash as the index places it (connSlot.keyHash).
func placed(hash uint64) uint64 { return hash &^ (1<<40 - 1) }

// find returns the slot holding the connection with key k, or -1.
func (t *connTable) find(k *Key, hash uint64) int {
	if t.n == 0 {
		return -1
	}
	lo, hi := connTag(hash)
	tags := noTags // k's, once a slot's hash bits match
	i := t.home(placed(hash))
	for d := uint8(1); ; d++ {
		s := &t.slots[i]
		if s.dist < d { // free, or richer than k would be: k is not here
			return -1
		}
		if s.dist == d && s.tagLo == lo && s.tagHi == hi {
			if tags == noTags {
				tags = tagsOf(k)
			}
			if t.slab.at(s.i).key.is(k, tags, &t.cold.addrs) {
				return i
			}
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// get returns the connection with key k, or nil.
func (t *connTable) get(k *Key, hash uint64) *conn {
	if i := t.find(k, hash); i >= 0 {
		return t.slab.at(t.slots[i].i)
	}
	return nil
}

// alloc returns a zeroed connection of the table's slab, not yet in the
// index (set puts it there).
func (t *connTable) alloc() *conn { return t.slab.alloc() }

// release gives c, out of the index, back to the slab.
func (t *connTable) release(c *conn) { t.slab.release(c) }

// set makes c, of the table's slab, the connection of its key k, in
// place of any other (which the caller releases).
func (t *connTable) set(c *conn, k *Key, hash uint64) {
	if i := t.find(k, hash); i >= 0 {
		t.gen++ // k's connection is another now
		t.slots[i].i = t.slab.indexOf(c)
		return
	}
	t.add(newConnSlot(hash, t.slab.indexOf(c)), placed(hash))
}

// put adds c, of the table's slab, whose key (of this hash) the index
// does not hold.
func (t *connTable) put(c *conn, hash uint64) {
	t.add(newConnSlot(hash, t.slab.indexOf(c)), placed(hash))
}

// del removes the connection with key k from the index, if there.
func (t *connTable) del(k *Key, hash uint64) {
	if i := t.find(k, hash); i >= 0 {
		t.delAt(i)
	}
}

// hashOf returns the hash of c's key.
func (t *connTable) hashOf(c *conn) uint64 {
	k := c.key.full(&t.cold.addrs)
	return k.hash64()
}

// delConn removes c, which is in the index, from it.
func (t *connTable) delConn(c *conn) {
	self := t.slab.indexOf(c)
	for i := t.home(placed(t.hashOf(c))); ; {
		if t.slots[i].dist == 0 {
			return
		}
		if t.slots[i].i == self {
			t.delAt(i)
			return
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// eachConn calls fn for every connection. fn must not change the table.
func (t *connTable) eachConn(fn func(c *conn)) {
	t.each(func(s *connSlot) { fn(t.slab.at(s.i)) })
}

// touchSlot brings the slot where a key of this hash would be found
// first into the caches (prefetch), for Lanes.applyBatch, and returns
// something of it.
func (t *connTable) touchSlot(hash uint64) uint64 {
	if len(t.slots) == 0 {
		return 0
	}
	i := t.home(placed(hash))
	return prefetch(unsafe.Pointer(&t.slots[i]), unsafe.Sizeof(t.slots[i]))
}

// touchConn brings the connection of this hash (the first near its home,
// whose slot touchSlot brought in) and its eviction links into the caches
// (prefetchConn), and returns something not 0 if it found one. It reads
// no field of the connection that timers write: it takes no lock, and a
// view's snapshot may expire a connection's timers (its states)
// meanwhile.
func (t *connTable) touchConn(hash uint64) uint64 {
	if len(t.slots) == 0 {
		return 0
	}
	i := t.home(placed(hash))
	lo, hi := connTag(hash)
	for d := uint8(1); d <= 8; d++ {
		s := &t.slots[i]
		if s.dist < d {
			return 0
		}
		if s.tagLo == lo && s.tagHi == hi {
			v := uint64(s.i) + prefetchConn(t.slab.at(s.i))
			if t.slab.withLinks {
				// Its eviction links: a packet that ends it moves it
				// to the other list (shard.retrack), and only the
				// connection tells which packet does.
				v += prefetch(unsafe.Pointer(t.slab.link(s.i)), unsafe.Sizeof(links{}))
			}
			return v
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
	return 0
}
