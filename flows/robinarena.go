package flows

import (
	"sync"
	"unsafe"
)

// robinArena holds the connection indexes of a table's shards once they
// are large, so that their slots share huge pages. A shard's index takes
// a hundredth of a megabyte per thousand connections: each on pages of its
// own, a table of a million connections had 64 indexes of 4 KiB pages,
// thousands of pages, and nearly every lookup of one missed the TLB; a
// huge page for each index would have cost the 64 of them 2 MiB of memory
// each, mostly unused. The arena is one mapping, asked of the kernel in
// huge pages, in rows of one chunk (robinChunk slots) from each shard's
// index, in shard order: shard i's index is the column of the i-th chunks
// of the rows, its slot j in the (j/robinChunk)-th row. The shards grow
// in step, so that the rows they use are mostly full, and the pages the
// rows take are mostly used: a table of a million connections has its
// index in a few huge pages.
//
// An index goes in when it is large enough (from) that the shards'
// indexes together fill a few huge pages (robinArenaAt): a small table
// pays nothing for the pages of rows it does not fill.
type robinArena struct {
	from  int // bytes of slots from which an index goes in
	chunk int // bytes of a chunk
	row   int // bytes of a row

	mu    sync.Mutex // guards the following
	mem   []byte     // mapped on first use (nil: not yet, or it failed)
	tried bool       // mapping was tried
	users int        // indexes in it
	// written holds, for each column left, how many of its bytes were
	// written, to zero before it is used again.
	written []int
}

// robinArenaAt is how many bytes of slots a table's shards' indexes hold
// together, at least, when they go in their arena.
const robinArenaAt = 4 << 20

// robinColumnRoom is how many bytes a column of an arena holds: an index
// that grows past them moves out (robinRoomMax, as for an index of its
// own).
const robinColumnRoom = robinRoomMax

// newRobinArena returns an arena for the indexes of this many shards, of
// slots of slotSize bytes, or nil where there are none.
func newRobinArena(shards, slotSize int) *robinArena {
	if !arenas || unsafe.Sizeof(uintptr(0)) < 8 {
		return nil
	}
	chunk := robinChunk * slotSize
	return &robinArena{
		from:    max(robinArenaAt/shards, robinMapAt),
		chunk:   chunk,
		row:     shards * chunk,
		written: make([]int, shards),
	}
}

// column returns where column col starts, the bytes it may hold and the
// bytes from one of its chunks to the next. It holds zero bytes if the
// arena could not be mapped. The column must be left (leave) when done
// with.
func (a *robinArena) column(col int) (base unsafe.Pointer, room, row int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.tried {
		a.tried = true
		a.mem = mapArena(robinColumnRoom / a.chunk * a.row)
	}
	if a.mem == nil {
		return nil, 0, 0
	}
	for off := 0; off < a.written[col]; off += a.chunk {
		k := off / a.chunk
		clear(a.mem[k*a.row+col*a.chunk:][:min(a.chunk, a.written[col]-off)])
	}
	a.written[col] = 0
	a.users++
	return unsafe.Pointer(&a.mem[col*a.chunk]), robinColumnRoom, a.row
}

// leave gives column col back, of which n bytes were written. Once no
// index is left in it, the arena's pages go back to the system.
func (a *robinArena) leave(col, n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.written[col] = max(a.written[col], n)
	if a.users--; a.users > 0 {
		return
	}
	rows := 0
	for i, w := range a.written {
		rows = max(rows, (w+a.chunk-1)/a.chunk)
		a.written[i] = 0
	}
	// The huge pages whole: the kernel backed each with memory whole.
	dropArena(a.mem[:min(len(a.mem), (rows*a.row+hugePage-1)/hugePage*hugePage)])
}

// bytesMapped returns the bytes of the arena in memory, for columns
// holding up to n bytes: the rows they reach, in whole huge pages.
func (a *robinArena) bytesMapped(n int) int {
	rows := (n + a.chunk - 1) / a.chunk
	return (rows*a.row + hugePage - 1) / hugePage * hugePage
}

// unmap unmaps the arena. Nothing may use it after.
func (a *robinArena) unmap() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mem != nil {
		unmapArena(a.mem)
		a.mem = nil
	}
}
