package flows

import (
	"sync/atomic"
	"unsafe"
)

// flushPages lets a flush give the slab's memory back as it goes: it
// counts, for each huge page of the slab's chunks outside the heap, the
// connections still to be made into records that lie (even in part) on
// it, and drops the page once the count reaches zero. A flush emits in
// the order connections started, and the slab hands entries out in about
// that order (when handshakes complete), so pages empty one after another
// from the start of the slab, and what the records and the output take
// while the flush runs comes out of memory the connections gave back,
// rather than on top of them.
type flushPages struct {
	sl    *slab
	first [slabChunks]int32 // per chunk outside the heap, its first page's count's place in left; -1 if none
	left  []atomic.Int32
}

// flushDropsPages is whether a flush gives pages back as it goes (a test
// turns it off to compare).
var flushDropsPages = true

// newFlushPages counts the connections refs refers to, in sl, by page.
func newFlushPages(sl *slab, refs []fullRef) *flushPages {
	if !flushDropsPages || sl == nil {
		return nil
	}
	p := &flushPages{sl: sl}
	n := 0
	for k := range sl.chunks {
		p.first[k] = -1
		if sl.onMap&(1<<k) != 0 {
			p.first[k] = int32(n)
			n += mappedSize[conn](len(sl.chunks[k])) / hugePage
		}
	}
	if n == 0 {
		return nil
	}
	p.left = make([]atomic.Int32, n)
	for _, r := range refs {
		if a, b, ok := p.pages(r.i); ok {
			p.left[a].Add(1)
			if b != a {
				p.left[b].Add(1)
			}
		}
	}
	return p
}

// pages returns the places in left of the pages that the connection at
// slab index i lies on (a and b, the same if one), or false if its chunk
// is on the heap.
func (p *flushPages) pages(i uint32) (a, b int, ok bool) {
	k, o := chunkOf(i)
	if p.first[k] < 0 {
		return 0, 0, false
	}
	const size = int(unsafe.Sizeof(conn{}))
	start := int(o) * size
	base := int(p.first[k])
	return base + start/hugePage, base + (start+size-1)/hugePage, true
}

// done says the connection at slab index i is made into its record: the
// pages only it still needed go back to the system. Any goroutine may call
// it.
func (p *flushPages) done(i uint32) {
	if p == nil {
		return
	}
	a, b, ok := p.pages(i)
	if !ok {
		return
	}
	p.release(i, a)
	if b != a {
		p.release(i, b)
	}
}

// release counts one connection off page j, of the chunk of index i, and
// drops the page if it was the last.
func (p *flushPages) release(i uint32, j int) {
	if p.left[j].Add(-1) != 0 {
		return
	}
	k, _ := chunkOf(i)
	ch := p.sl.chunks[k]
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(ch))), mappedSize[conn](len(ch)))
	off := (j - int(p.first[k])) * hugePage
	_ = dontNeed(b[off:min(off+hugePage, len(b))])
}
