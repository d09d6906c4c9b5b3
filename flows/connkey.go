package flows

import (
	"encoding/binary"
	"sync"
)

// connKey is a conn's Key, in 16 bytes instead of 44: an IPv4 address in
// place (as a Tuple keeps it, IPv4-mapped, with V6 false), any other as
// its index in the table's address pool (addrPool), where the many
// connections of one host share one copy. The Key of a record is rebuilt
// from it (conn.fullKey); a lookup compares it with a packet's Key in
// place (is).
type connKey struct {
	addr [2]uint32 // an IPv4 address, big-endian, or a pooled address's index
	port [2]uint16
	tags uint32 // VLAN tags and kind: see ckOuter and after
}

// Layout of connKey.tags.
const (
	ckInnerShift = 12      // the outer VLAN tag is the low 12 bits, the inner the next 12
	ckNShift     = 24      // then the number of tags, 2 bits
	ckV6         = 1 << 26 // Key.V6
	ckPooled     = 1 << 27 // addr holds pool indices
)

// noTags is no key's tags (tagsOf never sets the high bits).
const noTags = ^uint32(0)

// v4mappedPrefix is the first 12 bytes of an IPv4-mapped IPv6 address.
var v4mappedPrefix = [12]byte{10: 0xff, 11: 0xff}

// tagsOf returns k's VLAN tags and kind as connKey.tags holds them.
func tagsOf(k *Key) uint32 {
	t := uint32(k.VLAN.Outer&0xfff) | uint32(k.VLAN.Inner&0xfff)<<ckInnerShift | uint32(k.VLAN.N&3)<<ckNShift
	if k.V6 {
		t |= ckV6
	}
	if k.V6 || [12]byte(k.Addr[0][:12]) != v4mappedPrefix || [12]byte(k.Addr[1][:12]) != v4mappedPrefix {
		t |= ckPooled
	}
	return t
}

// is reports whether ck is the compact form of k, whose tags (tagsOf)
// are given: a lookup computes them once for all the keys it compares.
// pool holds ck's addresses if pooled.
func (ck *connKey) is(k *Key, tags uint32, pool *addrPool) bool {
	if ck.port != k.Port || ck.tags != tags {
		return false
	}
	if ck.tags&ckPooled == 0 {
		return ck.addr[0] == binary.BigEndian.Uint32(k.Addr[0][12:]) && ck.addr[1] == binary.BigEndian.Uint32(k.Addr[1][12:])
	}
	return *pool.at(ck.addr[0]) == k.Addr[0] && *pool.at(ck.addr[1]) == k.Addr[1]
}

// full returns the Key that ck is the compact form of.
func (ck *connKey) full(pool *addrPool) Key {
	k := Key{Port: ck.port, V6: ck.tags&ckV6 != 0}
	k.VLAN = VLAN{Outer: uint16(ck.tags & 0xfff), Inner: uint16(ck.tags >> ckInnerShift & 0xfff), N: uint8(ck.tags >> ckNShift & 3)}
	for i, a := range ck.addr {
		if ck.tags&ckPooled != 0 {
			k.Addr[i] = *pool.at(a)
		} else {
			k.Addr[i] = v4mapped(binary.BigEndian.AppendUint32(nil, a))
		}
	}
	return k
}

// compact returns k's compact form, adding its addresses to pool if they
// are not IPv4 (drop gives them back).
func compact(k *Key, pool *addrPool) connKey {
	ck := connKey{port: k.Port, tags: tagsOf(k)}
	for i := range ck.addr {
		if ck.tags&ckPooled != 0 {
			ck.addr[i] = pool.intern(&k.Addr[i])
		} else {
			ck.addr[i] = binary.BigEndian.Uint32(k.Addr[i][12:])
		}
	}
	return ck
}

// drop gives ck's pooled addresses back to pool, and clears ck.
func (ck *connKey) drop(pool *addrPool) {
	if ck.tags&ckPooled != 0 {
		pool.release(ck.addr[0])
		pool.release(ck.addr[1])
	}
	*ck = connKey{}
}

// addrPool holds the addresses of a table's connections' keys that are
// not IPv4, once each however many connections share one, counting the
// keys that hold it: a 32-bit index stands for an address in a connKey.
//
// Like the cold store, it grows in chunks that double and never move, so
// that an address is read without a lock; the lock guards only adding
// and taking back, once per connection.
type addrPool struct {
	mu     sync.Mutex
	chunks [slabChunks][]pooled
	next   uint32 // the lowest index never handed out
	free   []uint32
	index  map[[16]byte]uint32
}

// pooled is one address of the pool and the count of keys that hold it.
type pooled struct {
	addr [16]byte
	refs uint32
}

// at returns the address at index i, which a key holds.
func (p *addrPool) at(i uint32) *[16]byte {
	k, o := chunkOf(i)
	return &p.chunks[k][o].addr
}

// intern returns the index of address a, adding it if no key holds it.
func (p *addrPool) intern(a *[16]byte) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i, ok := p.index[*a]; ok {
		k, o := chunkOf(i)
		p.chunks[k][o].refs++
		return i
	}
	var i uint32
	if n := len(p.free); n > 0 {
		i, p.free = p.free[n-1], p.free[:n-1]
	} else {
		i = p.next
		p.next++
		if k, _ := chunkOf(i); p.chunks[k] == nil {
			p.chunks[k] = make([]pooled, slabFirst<<k)
		}
	}
	if p.index == nil {
		p.index = map[[16]byte]uint32{}
	}
	p.index[*a] = i
	k, o := chunkOf(i)
	p.chunks[k][o] = pooled{addr: *a, refs: 1}
	return i
}

// release lets go of the address at index i for one key.
func (p *addrPool) release(i uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, o := chunkOf(i)
	e := &p.chunks[k][o]
	if e.refs--; e.refs == 0 {
		delete(p.index, e.addr)
		p.free = append(p.free, i)
	}
}

// len returns the number of addresses held.
func (p *addrPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.index)
}

// reset takes back every address, once no key holds one.
func (p *addrPool) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.chunks {
		clear(p.chunks[k])
	}
	p.next, p.free = 0, p.free[:0]
	clear(p.index)
}

// fullKey returns c's Key; cs holds its pooled addresses.
func (c *conn) fullKey(cs *coldStore) Key { return c.key.full(&cs.addrs) }
