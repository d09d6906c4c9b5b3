package flows

import (
	"cmp"
	"container/heap"
	"maps"
	"runtime"
	"slices"
	"sync"
	"unsafe"
)

// Flush retires every connection left, expiring timers by the newest packet
// time first, and returns their records in the order they started. It is
// what a replay calls at the end of its file.
func (t *Table) Flush() []Record {
	recs := make([]Record, 0, t.Len())
	t.FlushEach(func(batch []Record) { recs = append(recs, batch...) })
	return recs
}

// FlushEach is Flush handing the records to fn in batches, in the order
// the connections started, without holding them all at once (a Record is
// several times the size of the connection it copies). fn must not keep
// the slice.
func (t *Table) FlushEach(fn func([]Record)) {
	f := flusher{t: t, now: t.now.Load(), seen: t.seen.Load(), workers: max(1, runtime.GOMAXPROCS(0))}
	f.take()
	f.pages = newFlushPages(f.slab, f.refs)
	f.sort()
	f.emit(fn)
	clear(f.runs) // no reference into limbo's or a slab's memory is left
	f.refs = nil
	if f.freeRefs != nil {
		f.freeRefs()
	}
	for i := range f.limbos {
		f.limbos[i].release()
	}
	for i := range f.halves {
		f.halves[i].giveBack()
	}
	if f.slab != nil {
		f.slab.unmap()
	}
	t.cfg.logs.reset()
	t.cfg.cold.reset()
}

// flusher is one Flush: it takes every connection out of the table (take),
// sorts them by start (sort), and makes their records on every core,
// handing them on in order (emit).
//
// Half-open connections stay small values, where they are, until their
// turn comes: under a flood they are most of the table, and limbo holds as
// many. The flusher takes the shards' half tables and limbos whole, and
// sorts each one's entries in place, into a run of its own: a reference
// to each, as the full connections have, would add half again to the
// memory of a flood's table at the moment of its flush.
type flusher struct {
	t         *Table
	now, seen int64
	workers   int

	refs     []fullRef           // the full connections, outside the Go heap
	freeRefs func()              // gives refs' memory back
	lives    map[*conn]*zeekLife // with Config.Zeek, the connections' (taken from the shards)
	halves   []halfTable         // taken from the shards; their slots become runs
	limbos   []limbo             // likewise, released at the end
	slab     *slab               // the full connections' memory, likewise
	runs     []flushRun          // sorted runs, consumed from their fronts
	pages    *flushPages         // the slab's pages left to make records of
	n        int                 // connections in the runs
}

// fullRef is a full connection to flush, by its index in the slab, with
// its start time copied beside it: a comparison that followed the index
// would miss the cache twice, and the sort waits on memory enough as it
// is. Only starts that tie look at the connections' IDs. There is one for
// every full connection of the table at once, so it is 12 bytes, not the
// 32 of a flushRef, and they are kept outside the Go heap, where the
// collector's headroom does not double them.
type fullRef struct{ lo, hi, i uint32 }

func newFullRef(c *conn, i uint32) fullRef {
	return fullRef{lo: uint32(c.first), hi: uint32(uint64(c.first) >> 32), i: i}
}

func (r fullRef) first() int64 { return int64(uint64(r.hi)<<32 | uint64(r.lo)) }

// fullByStart orders references into sl by start time, then ID.
func fullByStart(sl *slab, cs *coldStore) func(a, b fullRef) int {
	return func(a, b fullRef) int {
		if c := cmp.Compare(a.first(), b.first()); c != 0 {
			return c
		}
		return cmp.Compare(sl.at(a.i).ident(cs), sl.at(b.i).ident(cs))
	}
}

// flushRef is a connection to flush, on its way to its record: the merge
// has put it in its place, so that it need not read the connection (the
// worker making its record does).
type flushRef struct {
	p    unsafe.Pointer // a full connection (*conn), or if half a half-open one (*halfSlot)
	i    uint32         // a full connection's slab index
	end  EndReason
	half bool
}

// conn returns the full connection r refers to, or nil.
func (r *flushRef) conn() *conn {
	if r.half {
		return nil
	}
	return (*conn)(r.p)
}

// flushRun is a sorted stretch of the connections to flush: full ones
// (refs, into slab) or half-open ones (slots), which all end for the
// reason end.
type flushRun struct {
	refs  []fullRef
	slab  *slab
	cold  *coldStore // the slab's connections' cold records
	slots []halfSlot
	end   EndReason
}

// headFirst returns the start of the run's first connection, which it
// sorts by first.
func (r *flushRun) headFirst() int64 {
	if len(r.refs) > 0 {
		return r.refs[0].first()
	}
	return r.slots[0].h.firstTS()
}

// headID returns the ID of the run's first connection, which it sorts by
// when starts tie: only then is a full connection read.
func (r *flushRun) headID() uint64 {
	if len(r.refs) > 0 {
		return r.slab.at(r.refs[0].i).ident(r.cold)
	}
	return r.slots[0].h.ident()
}

// pop takes the run's first connection.
func (r *flushRun) pop() flushRef {
	if len(r.refs) > 0 {
		i := r.refs[0].i
		r.refs = r.refs[1:]
		return flushRef{p: unsafe.Pointer(r.slab.at(i)), i: i, end: EndFlushed}
	}
	e := &r.slots[0]
	r.slots = r.slots[1:]
	return flushRef{p: unsafe.Pointer(e), end: r.end, half: true}
}

func (r *flushRun) len() int { return len(r.refs) + len(r.slots) }

// slotByStart orders half-open connections by start time, then ID.
func slotByStart(a, b halfSlot) int {
	return cmpStart(a.h.firstTS(), a.h.ident(), b.h.firstTS(), b.h.ident())
}

// take empties the table's shards: the full connections into f.refs, the
// half tables and limbos whole into f.halves and f.limbos.
func (f *flusher) take() {
	t := f.t
	n := 0
	t.eachShardLocked(func(sh *shard) { n += sh.m.len() })
	f.refs, f.freeRefs = offHeap[fullRef](n)
	f.refs = f.refs[:0]
	f.slab = t.slab.Load()
	live := make([]uint64, (f.slab.span()+63)/64) // the slab's entries in use, a bit each
	// The shards move to a new slab together; the old one goes once
	// every record is made.
	fresh := newSlab(t.cfg.MaxConns > 0)
	t.slab.Store(fresh)
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.chg.drop()
		clear(sh.chg.freed) // they go with the old slab
		sh.chg.freed = sh.chg.freed[:0]
		sh.chg.over = true // the view must look again
		if t.zk != nil {
			if f.lives == nil {
				f.lives = map[*conn]*zeekLife{}
			}
			maps.Copy(f.lives, t.zk.take(i))
		}
		sh.m.each(func(s *connSlot) {
			w := int(s.i / 64)
			if w >= len(live) {
				live = append(live, make([]uint64, w+1-len(live))...)
			}
			live[w] |= 1 << (s.i % 64)
		})
		sh.m.giveBack() // the index, outside the heap, goes now
		sh.m = connTable{slab: fresh, cold: f.t.cfg.cold, gen: sh.m.gen + 1}
		// The eviction lists link connections of the old slab, which
		// leaves with them: no need to unlink them one by one.
		sh.lists = [2]list{}
		if sh.half.len() > 0 {
			f.halves = append(f.halves, sh.half)
			f.n += sh.half.len()
			sh.half = halfTable{}
		}
		if sh.limbo.n > 0 {
			f.limbos = append(f.limbos, sh.limbo)
			f.n += sh.limbo.n
			sh.limbo = newLimbo(sh.limbo.size)
		}
		sh.mu.Unlock()
	}
	f.refs = f.slab.appendRefs(f.refs, live)
	f.n += len(f.refs)
	t.retired.Add(uint64(f.n))
}

// sort makes the sorted runs, on every core: the full connections in
// pieces, one per core, and each half table's and limbo's entries, moved
// to the front of its slots and sorted there.
func (f *flusher) sort() {
	for _, p := range pieces(f.refs, f.workers) {
		f.runs = append(f.runs, flushRun{refs: p, slab: f.slab, cold: f.t.cfg.cold})
	}
	// The connections are out of the table: no lock guards them now.
	for i := range f.halves {
		h := &f.halves[i]
		f.runs = append(f.runs, flushRun{slots: usedSlots(h.slots, func(j int) bool { return h.slots[j].dist != 0 }), end: EndFlushed})
	}
	for i := range f.limbos {
		l := &f.limbos[i]
		f.runs = append(f.runs, flushRun{slots: usedSlots(l.slots, func(j int) bool { return l.tags[j] != 0 }), end: EndEvicted})
	}
	jobs := make(chan *flushRun)
	var wg sync.WaitGroup
	for range f.workers {
		wg.Go(func() {
			for r := range jobs {
				if len(r.refs) > 0 {
					sortRefs(r.refs, fullByStart(r.slab, r.cold))
				}
				slices.SortFunc(r.slots, slotByStart)
			}
		})
	}
	for i := range f.runs {
		jobs <- &f.runs[i]
	}
	close(jobs)
	wg.Wait()
}

// usedSlots moves the slots for which used is true to the front of s, in
// order, and returns them.
func usedSlots(s []halfSlot, used func(int) bool) []halfSlot {
	n := 0
	for j := range s {
		if used(j) {
			s[n] = s[j]
			n++
		}
	}
	return s[:n]
}

// pieces splits s into at most n pieces of about equal length.
func pieces[T any](s []T, n int) [][]T {
	ps := make([][]T, 0, n)
	for k := range n {
		if p := s[len(s)*k/n : len(s)*(k+1)/n]; len(p) > 0 {
			ps = append(ps, p)
		}
	}
	return ps
}

// flushChunk is a stretch of the flush order and, once made, its records.
type flushChunk struct {
	refs []flushRef
	recs []Record
	done chan struct{} // receives when recs are made
	warm uint64        // keeps makeRecords' loads ahead from being optimised away
}

// flushChunkLen is the connections in a chunk of the flush order: enough
// to spread the work over the cores, few enough that the chunks in flight
// (3 per core) add little to the memory of a table at its largest.
const flushChunkLen = 128

// emit makes the records on every core, a chunk of the order on each, and
// hands them to fn in order: making one misses the cache on its
// connection, and a half-open one is replayed through the state machine
// first.
func (f *flusher) emit(fn func([]Record)) {
	jobs := make(chan *flushChunk, f.workers)
	order := make(chan *flushChunk, 2*f.workers)
	free := make(chan *flushChunk, 3*f.workers+1)
	for range cap(free) {
		// A chunk's slices are made when it is first used: a small table's
		// flush uses one or two, and the records' (flushChunkLen of them,
		// with pointers) would otherwise be scanned by every collection,
		// untouched pages faulted in.
		free <- &flushChunk{done: make(chan struct{}, 1)}
	}
	var wg sync.WaitGroup
	for range f.workers {
		wg.Go(func() { f.makeRecords(jobs) })
	}
	go f.merge(free, jobs, order)
	for ch := range order {
		<-ch.done
		fn(ch.recs)
		clear(ch.refs)
		clear(ch.recs) // let go of transition logs
		ch.refs, ch.recs = ch.refs[:0], ch.recs[:0]
		free <- ch
	}
	wg.Wait()
}

// makeRecords makes the records of the chunks it is handed.
func (f *flusher) makeRecords(jobs <-chan *flushChunk) {
	var scratch conn
	cfg := &f.t.cfg
	for ch := range jobs {
		if ch.recs == nil {
			ch.recs = make([]Record, 0, flushChunkLen)
		}
		var warm uint64
		for i := range ch.refs {
			if j := i + flushAhead; j < len(ch.refs) && !ch.refs[j].half {
				// Load a connection to come: its misses overlap
				// with the work on this one.
				warm += prefetchConn((*conn)(ch.refs[j].p))
			}
			r := &ch.refs[i]
			c := r.conn()
			if c == nil {
				e := (*halfSlot)(r.p)
				c = e.h.conn(e.key, cfg, &scratch)
			}
			c.expireTimers(f.now, f.seen, cfg)
			// Filled in place: a Record made on the stack and copied
			// in is a visible cost of a large flush.
			ch.recs = ch.recs[:len(ch.recs)+1]
			rec := &ch.recs[len(ch.recs)-1]
			c.fill(rec, r.end, cfg, true)
			if zl := f.lives[c]; zl != nil && !r.half {
				rec.zx = zl.extra(c)
			}
			if !r.half {
				f.pages.done(r.i)
			}
		}
		ch.warm = warm
		ch.done <- struct{}{}
	}
}

// flushAhead is how many connections ahead of the one made into a record
// makeRecords loads.
const flushAhead = 4

// merge takes the sorted runs' connections in order, a chunk at a time
// from free, and hands each chunk both to be made (jobs) and to be handed
// on in order (order). The runs wait in a heap by their first connection:
// a flood's table makes over a hundred.
func (f *flusher) merge(free <-chan *flushChunk, jobs, order chan<- *flushChunk) {
	defer close(jobs)
	defer close(order)
	var ch *flushChunk
	take := func() {
		if ch = <-free; ch.refs == nil {
			ch.refs = make([]flushRef, 0, flushChunkLen)
		}
	}
	take()
	send := func() {
		jobs <- ch
		order <- ch
		take()
	}
	h := runHeap{runs: f.runs}
	for i := range f.runs {
		if f.runs[i].len() > 0 {
			h.at = append(h.at, i)
		}
	}
	heap.Init(&h)
	for h.Len() > 0 {
		r := &f.runs[h.at[0]]
		ch.refs = append(ch.refs, r.pop())
		if r.len() == 0 {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
		if len(ch.refs) == flushChunkLen {
			send()
		}
	}
	if len(ch.refs) > 0 {
		send()
	}
}

// runHeap orders the runs that are not empty by their first connection.
type runHeap struct {
	runs []flushRun
	at   []int // indices in runs
}

func (h *runHeap) Len() int { return len(h.at) }
func (h *runHeap) Less(i, j int) bool {
	a, b := &h.runs[h.at[i]], &h.runs[h.at[j]]
	if f1, f2 := a.headFirst(), b.headFirst(); f1 != f2 {
		return f1 < f2
	}
	return a.headID() < b.headID()
}
func (h *runHeap) Swap(i, j int) { h.at[i], h.at[j] = h.at[j], h.at[i] }
func (h *runHeap) Push(x any)    { h.at = append(h.at, x.(int)) }
func (h *runHeap) Pop() any {
	x := h.at[len(h.at)-1]
	h.at = h.at[:len(h.at)-1]
	return x
}
