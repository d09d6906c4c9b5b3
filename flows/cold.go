package flows

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// coldStore holds the cold records (coldRec) of a table's connections
// that have some: a conn refers to its record by a 32-bit index (conn.cold,
// 0 for none), so that a connection whose packets show no trouble spends
// 4 bytes on it instead of 64.
//
// Records come in chunks that double in size and never move, so that a
// lane reads and writes its connections' records without a lock; the lock
// guards only handing records out and taking them back, which trouble
// alone causes.
//
// It also holds the addresses of the connections' keys that are not IPv4
// (connKey), which are let go of with the record.
type coldStore struct {
	addrs  addrPool
	mu     sync.Mutex
	chunks [slabChunks][]coldRec
	unmaps [slabChunks]func() // for the chunks outside the Go heap
	next   uint32             // the lowest index never handed out
	free   []uint32
	mapped int // bytes of the chunks outside the Go heap
	// epoch is the high 32 bits of the IDs of the connections that have
	// no record (connwide.go).
	epoch atomic.Uint32
}

// coldNone is what a connection without a record reads: all zero. It is
// never written.
var coldNone coldRec

// at returns the record at index i, which is in use.
func (s *coldStore) at(i uint32) *coldRec {
	k := bits.Len32(i/slabFirst+1) - 1
	return &s.chunks[k][i-slabFirst*(1<<k-1)]
}

// peek returns c's record to read: coldNone if it has none.
func (s *coldStore) peek(c *conn) *coldRec {
	if c.cold == 0 {
		return &coldNone
	}
	return s.at(c.cold)
}

// get returns c's record to write, giving it one if it has none: a new
// one holds the high bits of c's ID, which are the epoch's while c has
// none.
func (s *coldStore) get(c *conn) *coldRec {
	if c.cold != 0 {
		return s.at(c.cold)
	}
	s.mu.Lock()
	var i uint32
	if n := len(s.free); n > 0 {
		i, s.free = s.free[n-1], s.free[:n-1]
	} else {
		if s.next == 0 {
			s.next = 1
		}
		i = s.next
		s.next++
		if k, _ := chunkOf(i); s.chunks[k] == nil {
			s.grow(k)
		}
	}
	s.mu.Unlock()
	c.cold = i
	r := s.at(i)
	r.idHi = s.epoch.Load()
	return r
}

// grow makes chunk k. Like the slab's, the large ones are outside the Go
// heap: a record holds no pointer, and on the heap the collector's growth
// target would double their cost.
func (s *coldStore) grow(k int) {
	n := slabFirst << k
	if n*int(unsafe.Sizeof(coldRec{})) < slabMapAt {
		s.chunks[k] = make([]coldRec, n)
		return
	}
	s.chunks[k], s.unmaps[k] = offHeap[coldRec](n)
	s.mapped += n * int(unsafe.Sizeof(coldRec{}))
}

// bytesMapped returns the bytes of the chunks outside the Go heap.
func (s *coldStore) bytesMapped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mapped
}

// release takes back c's record, if it has one, and its key's pooled
// addresses, as c leaves the table or its memory starts another
// connection.
func (s *coldStore) release(c *conn) {
	c.key.drop(&s.addrs)
	if c.cold == 0 {
		return
	}
	*s.at(c.cold) = coldRec{}
	s.mu.Lock()
	s.free = append(s.free, c.cold)
	s.mu.Unlock()
	c.cold = 0
}

// reset takes back every record and gives their memory back, once no
// connection is left. The epoch stays: the IDs go on.
func (s *coldStore) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unmap()
	s.next, s.free = 0, s.free[:0]
	s.addrs.reset()
}

// unmap lets go of the chunks, giving those outside the heap back to the
// system. No record may be used after.
func (s *coldStore) unmap() {
	for k := range s.chunks {
		if s.unmaps[k] != nil {
			s.unmaps[k]()
		}
		s.chunks[k], s.unmaps[k] = nil, nil
	}
	s.mapped = 0
}
