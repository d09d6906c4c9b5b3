package flows

import (
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
	f.sort()
	f.emit(fn)
	clear(f.refs) // no reference into limbo's or a slab's memory is left
	for i := range f.limbos {
		f.limbos[i].release()
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
// many. The flusher takes the shards' half tables and limbos whole.
type flusher struct {
	t         *Table
	now, seen int64
	workers   int

	refs   []flushRef
	lives  map[*conn]*zeekLife // with Config.Zeek, the connections' (taken from the shards)
	limbos []limbo             // taken from the shards, released at the end
	slab   *slab               // the full connections, likewise
	runs   [][]flushRef        // refs in sorted pieces, each consumed from its front
}

// flushRef is a connection to flush, with what it sorts by copied beside
// it: a comparison that followed the pointer would miss the cache twice,
// and the sort waits on memory enough as it is. It is 32 bytes: there is
// one for every connection of the table at once.
type flushRef struct {
	first int64
	id    uint64
	p     unsafe.Pointer // a full connection (*conn), or if half a half-open one (*halfSlot)
	end   EndReason
	half  bool
}

// conn returns the full connection r refers to, or nil.
func (r *flushRef) conn() *conn {
	if r.half {
		return nil
	}
	return (*conn)(r.p)
}

// byStart orders references by start time, then ID.
func byStart(a, b flushRef) int { return cmpStart(a.first, a.id, b.first, b.id) }

// take empties the table's shards into f.refs.
func (f *flusher) take() {
	t := f.t
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += sh.m.len() + sh.half.len() + sh.limbo.n
		sh.mu.Unlock()
	}
	f.refs = make([]flushRef, 0, n)
	// The shards move to a new slab together; the old one goes once
	// every record is made.
	fresh := newSlab(t.cfg.MaxConns > 0)
	t.slab.Store(fresh)
	var halves []halfTable
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
		sh.eachConn(func(c *conn) {
			f.refs = append(f.refs, flushRef{first: c.first, id: c.id, p: unsafe.Pointer(c), end: EndFlushed})
			sh.untrack(c)
		})
		f.slab = sh.m.slab
		sh.m = connTable{slab: fresh, cold: f.t.cfg.cold}
		if sh.half.len() > 0 {
			halves = append(halves, sh.half)
			sh.half = halfTable{}
		}
		if sh.limbo.n > 0 {
			f.limbos = append(f.limbos, sh.limbo)
			sh.limbo = newLimbo(sh.limbo.size)
		}
		sh.mu.Unlock()
	}
	// The connections are out of the table: no lock guards them now.
	for i := range halves {
		halves[i].each(func(s *halfSlot) {
			f.refs = append(f.refs, flushRef{first: s.h.firstTS(), id: s.h.ident(), p: unsafe.Pointer(s), end: EndFlushed, half: true})
		})
	}
	for i := range f.limbos {
		l := &f.limbos[i]
		for j := range l.slots {
			if e := &l.slots[j]; l.tags[j] != 0 {
				f.refs = append(f.refs, flushRef{first: e.h.firstTS(), id: e.h.ident(), p: unsafe.Pointer(e), end: EndEvicted, half: true})
			}
		}
	}
	t.retired.Add(uint64(len(f.refs)))
}

// sort sorts f.refs in pieces, one per core; emit merges them.
func (f *flusher) sort() {
	f.runs = pieces(f.refs, f.workers)
	var wg sync.WaitGroup
	for _, r := range f.runs {
		wg.Go(func() { slices.SortFunc(r, byStart) })
	}
	wg.Wait()
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
}

const flushChunkLen = 512

// emit makes the records on every core, a chunk of the order on each, and
// hands them to fn in order: making one misses the cache on its
// connection, and a half-open one is replayed through the state machine
// first.
func (f *flusher) emit(fn func([]Record)) {
	jobs := make(chan *flushChunk, f.workers)
	order := make(chan *flushChunk, 2*f.workers)
	free := make(chan *flushChunk, 3*f.workers+1)
	for range cap(free) {
		free <- &flushChunk{refs: make([]flushRef, 0, flushChunkLen), recs: make([]Record, 0, flushChunkLen), done: make(chan struct{}, 1)}
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
		for i := range ch.refs {
			r := &ch.refs[i]
			c := r.conn()
			if c == nil {
				e := (*halfSlot)(r.p)
				c = e.h.conn(e.key, cfg, &scratch)
			}
			c.expireTimers(f.now, f.seen, cfg)
			ch.recs = append(ch.recs, c.record(r.end, cfg, true))
			if zl := f.lives[c]; zl != nil && !r.half {
				ch.recs[len(ch.recs)-1].zx = zl.extra(c)
			}
		}
		ch.done <- struct{}{}
	}
}

// merge takes the sorted pieces' references in order, a chunk at a time
// from free, and hands each chunk both to be made (jobs) and to be handed
// on in order (order).
func (f *flusher) merge(free <-chan *flushChunk, jobs, order chan<- *flushChunk) {
	defer close(jobs)
	defer close(order)
	ch := <-free
	send := func() {
		jobs <- ch
		order <- ch
		ch = <-free
	}
	for range len(f.refs) {
		next := -1 // the piece whose first entry is the earliest
		for k, r := range f.runs {
			if len(r) > 0 && (next < 0 || byStart(r[0], f.runs[next][0]) < 0) {
				next = k
			}
		}
		ch.refs = append(ch.refs, f.runs[next][0])
		f.runs[next][0].p = nil // the chunk holds it now
		f.runs[next] = f.runs[next][1:]
		if len(ch.refs) == flushChunkLen {
			send()
		}
	}
	if len(ch.refs) > 0 {
		send()
	}
}
