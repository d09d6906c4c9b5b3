package flows

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// slab holds a table's full connections, each at a 32-bit index that
// never changes while it is in use: the shards' index slots and eviction
// lists refer to connections by index, so that a conn holds no pointer
// and the garbage collector never scans one.
//
// Its memory comes in chunks that double in size, and chunks are never
// moved, so a *conn stays valid until the connection is released. Small
// chunks are on the Go heap; large ones are mapped outside it with huge
// pages asked for (slab_linux.go): the heap's growth target (twice the
// live heap by default) does not double their cost, and a table of a
// million connections takes a few hundred TLB entries instead of a
// hundred thousand.
//
// The shards share one slab: the kernel backs a huge page whole at its
// first touch, so a slab per shard left one partly used huge page in
// each (128 MB of 64 shards). A lock guards handing connections out and
// taking them back, once per connection; reading and writing a
// connection takes none (only its shard's lock), as chunks never move.
//
// The eviction lists' links (evict.go), which only a table with a bound
// on its connections keeps, are beside the conns, at the same index.
//
// Index 0 is never handed out: it means "none" in the eviction lists.
type slab struct {
	// made is the number of chunks made: chunks below it are read
	// without the lock (indexOf), as they never change until unmap.
	made      atomic.Int32
	mu        sync.Mutex // guards the following but chunks' contents
	chunks    [slabChunks][]conn
	links     [slabChunks][]links // beside chunks, if withLinks
	freeLinks [slabChunks]func()  // for the links outside the Go heap
	withLinks bool
	next      uint32 // the lowest index never handed out
	// free is the first released index, 0 if none; the rest follow,
	// each linked through the id of the one before (unused while free).
	free   uint32
	onMap  uint32 // the chunks mapped outside the Go heap, a bit each
	live   int    // connections in use
	warm   uint64 // keeps alloc's load ahead from being optimised away
	mapped int    // bytes mapped outside the Go heap
}

const (
	slabFirst  = 32 // connections in the first chunk; chunk i holds slabFirst<<i
	slabChunks = 27 // enough for 2^32 connections
	// slabMapAt is the size from which a chunk is mapped outside the
	// heap: a huge page is 2 MiB, and a table of a few connections
	// should not take one per shard.
	slabMapAt = 1 << 20
)

// hugePage is the size of a transparent huge page on x86-64 and arm64
// (with 4 KiB base pages).
const hugePage = 2 << 20

// mappedSize returns the bytes mapHuge maps for n values of T: whole huge
// pages.
func mappedSize[T any](n int) int {
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	return (size + hugePage - 1) / hugePage * hugePage
}

// links are a connection's neighbours on its shard's eviction list, by
// slab index (0: none).
type links struct{ prev, next uint32 }

// newSlab returns an empty slab, keeping eviction links if withLinks.
func newSlab(withLinks bool) *slab { return &slab{withLinks: withLinks} }

// link returns the eviction links of the connection at index i, which is
// in use, of a slab withLinks.
func (s *slab) link(i uint32) *links {
	k, o := chunkOf(i)
	return &s.links[k][o]
}

// chunkOf returns the chunk and the position in it of index i.
func chunkOf(i uint32) (int, uint32) {
	k := bits.Len32(i/slabFirst+1) - 1
	return k, i - slabFirst*(1<<k-1)
}

// indexOf returns the index of c, which is in use.
//
// It looks for c's chunk from the last one made: chunks double, so that
// most connections are in the last two. The chunks below made are read
// without the lock, like c's own.
func (s *slab) indexOf(c *conn) uint32 {
	const size = unsafe.Sizeof(conn{})
	p := uintptr(unsafe.Pointer(c))
	for k := int(s.made.Load()) - 1; k >= 0; k-- {
		ch := s.chunks[k]
		if base := uintptr(unsafe.Pointer(unsafe.SliceData(ch))); p >= base && p < base+uintptr(len(ch))*size {
			return slabFirst*(1<<k-1) + uint32((p-base)/size)
		}
	}
	panic("flows: a conn outside its slab")
}

// at returns the connection at index i, which is in use.
func (s *slab) at(i uint32) *conn {
	k, o := chunkOf(i)
	return &s.chunks[k][o]
}

// alloc returns a zeroed connection.
func (s *slab) alloc() *conn {
	s.mu.Lock()
	c := s.take()
	s.mu.Unlock()
	return c
}

// take is alloc's work, under s.mu.
func (s *slab) take() *conn {
	s.live++
	if i := s.free; i != 0 {
		c := s.at(i)
		s.free = c.id
		c.id = 0
		if s.free != 0 {
			// The next one to hand out: a released connection is
			// anywhere in the slab, and reading its link now
			// overlaps the miss with the work before the next alloc.
			s.warm += uint64(s.at(s.free).id)
		}
		return c
	}
	if s.next == 0 {
		s.next = 1
	}
	i := s.next
	k, o := chunkOf(i)
	if s.chunks[k] == nil {
		s.grow(k)
		s.made.Store(int32(k + 1))
	}
	s.next++
	c := &s.chunks[k][o]
	// A write first: the caller reads the entry before it writes it
	// (what it held goes back, halfOpen.conn), and a read of a fresh
	// huge page maps the shared zero page, which the first write then
	// replaces: two faults instead of one.
	c.id = 0
	return c
}

// grow makes chunk k.
func (s *slab) grow(k int) {
	n := slabFirst << k
	size := n * int(unsafe.Sizeof(conn{}))
	if size < slabMapAt {
		s.chunks[k] = make([]conn, n)
		if s.withLinks {
			s.links[k] = make([]links, n)
		}
		return
	}
	if s.withLinks {
		s.growLinks(k, n)
	}
	var mapped bool
	if s.chunks[k], mapped = mapHuge[conn](n); mapped {
		s.onMap |= 1 << k
		s.mapped += size
	}
}

// growLinks makes the links of chunk k, of n connections, outside the
// heap, for the same reason as the chunk: on the heap, the collector's
// goal would let them take twice their size. Where they fill a huge page,
// they are on huge pages too: a packet's connection has its links read
// beside it (touchConn), and on 4 KiB pages that read missed the TLB as
// often as not in a table of a million connections.
func (s *slab) growLinks(k, n int) {
	size := n * int(unsafe.Sizeof(links{}))
	if size < hugePage {
		s.links[k], s.freeLinks[k] = offHeap[links](n)
		s.mapped += size
		return
	}
	l, mapped := mapHuge[links](n)
	s.links[k] = l
	if mapped {
		s.freeLinks[k] = func() { unmapHuge(l) }
		s.mapped += size
	}
}

// release takes c back, zeroed, for a connection to come. Nothing may
// use c after.
func (s *slab) release(c *conn) {
	i := s.indexOf(c)
	*c = conn{}
	s.mu.Lock()
	c.id = s.free
	s.free = i
	s.live--
	s.mu.Unlock()
}

// span returns the number of indices handed out so far (in use or not).
func (s *slab) span() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.next)
}

// appendRefs appends a flush reference to each connection whose index is
// set in live (a bit each) to refs, in the slab's order: reading each
// connection's start walks the slab from its start instead of jumping
// about it, as the shards' indexes (in the order of their keys' hashes)
// would have it.
func (s *slab) appendRefs(refs []fullRef, live []uint64) []fullRef {
	for w, word := range live {
		for word != 0 {
			i := uint32(w*64 + bits.TrailingZeros64(word))
			word &= word - 1
			refs = append(refs, newFullRef(s.at(i), i))
		}
	}
	return refs
}

// bytesMapped returns the bytes mapped outside the Go heap.
func (s *slab) bytesMapped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mapped
}

// unmap gives the chunks outside the heap back to the system. Nothing may
// use the slab after.
func (s *slab) unmap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.chunks {
		if s.onMap&(1<<k) != 0 {
			unmapHuge(s.chunks[k])
		}
		if s.freeLinks[k] != nil {
			s.freeLinks[k]()
		}
		s.chunks[k], s.links[k], s.freeLinks[k] = nil, nil, nil
	}
	s.made.Store(0)
	s.onMap, s.mapped = 0, 0
}
