package flows

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config sets a Table's timers (all on capture time) and its output.
// Zero fields take the defaults named.
type Config struct {
	// Shards is the number of lock shards, rounded up to a power of two
	// (default 64, on every machine: see setDefaults).
	Shards int
	// TimeWait is how long an endpoint stays in TIME_WAIT (default 60s,
	// Linux's TCP_TIMEWAIT_LEN).
	TimeWait time.Duration
	// HandshakeTimeout is how long an unanswered handshake lasts before
	// its endpoints give up and are CLOSED (default 3m: Linux gives up a
	// SYN after 6 retries, about 127 s).
	HandshakeTimeout time.Duration
	// IdleTimeout retires a connection that has carried no packet for this
	// long (default 1h).
	IdleTimeout time.Duration
	// ClosedTimeout retires a connection this long after its last packet
	// once both endpoints are CLOSED (default 30s), so that late
	// retransmissions still find it.
	ClosedTimeout time.Duration
	// SweepEvery is how often, in capture time, expired connections are
	// looked for (default 1s).
	SweepEvery time.Duration
	// MaxConns bounds the number of connections tracked at once (default
	// 0: no bound). Each of the Shards shards holds at most its share;
	// when a new connection finds its shard full, one is evicted (see
	// evict.go) and handed to OnRetire with End set to EndEvicted.
	MaxConns int
	// Transitions is how many state changes to keep per connection, for
	// a detailed view (default 0: none, which saves memory).
	Transitions int
	// OnChange, if set, receives an event when a connection is opened
	// and whenever a packet changes the state of one of its endpoints. It
	// is called without any table lock held, possibly from several
	// goroutines at once; it must not call back into the table.
	OnChange func(Event)
	// Changes keeps, per shard, which connections changed and which left
	// since the last EachChange or EachSnapshot, so that a view can copy
	// only those (see changes.go).
	Changes bool
	// OnRetire, if set, receives the records of connections that ended
	// and expired, or were replaced by a new connection on the same
	// 4-tuple, in the order they started. It is called without any table
	// lock held, possibly from several goroutines at once. It must not keep
	// the slice (copy what it keeps): the table reuses it.
	OnRetire func([]Record)
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.TimeWait, 60*time.Second)
	def(&c.HandshakeTimeout, 3*time.Minute)
	def(&c.IdleTimeout, time.Hour)
	def(&c.ClosedTimeout, 30*time.Second)
	def(&c.SweepEvery, time.Second)
	if c.Shards <= 0 {
		// A fixed count, not one per core: under MaxConns the bound and
		// the choice of whom to evict are per shard, and a replay must
		// give the same records on every machine.
		c.Shards = defaultShards
	}
	n := 1
	for n < c.Shards {
		n <<= 1
	}
	c.Shards = n
}

// Table tracks connections keyed by 4-tuple. It is safe for concurrent use.
type Table struct {
	cfg       Config
	shards    []shard
	mask      uint32
	now       atomic.Int64 // newest packet time applied, or Tick's time if later
	seen      atomic.Int64 // newest packet time applied
	nextSweep atomic.Int64
	sweepMu   sync.Mutex // serialises sweeps, and guards sweepNext
	sweepNext int        // the first shard the next sweep looks at
	// The counters change often, and from every lane (lanes.go): they
	// share no cache line with the clocks, which every packet reads.
	_       [64]byte
	opened  atomic.Uint64
	retired atomic.Uint64
	evicted atomic.Uint64
	_       [64]byte
	chgMax  int // entries a shard's change list may hold (changes.go)

	// retirePool holds one-record slices for OnRetire: under a SYN flood
	// every new connection evicts one, and a fresh slice each time was
	// most of the garbage.
	retirePool sync.Pool
}

// retireBuf returns a one-record slice holding r, from the pool if it can.
func (t *Table) retireBuf(r Record) *[]Record {
	b, ok := t.retirePool.Get().(*[]Record)
	if !ok {
		b = new([]Record)
	}
	*b = append((*b)[:0], r)
	return b
}

type shard struct {
	mu    sync.Mutex // guards the following
	m     connTable  // full connections (conntable.go)
	half  halfTable  // connections with SYNs from one side only (half.go)
	lists [2]list    // by conn.isCheap; see evict.go
	tmp   conn       // scratch for replaying a halfOpen
	limbo limbo      // evicted half-open connections, for a while (limbo.go)
	max   int        // connections this shard may hold (0: no limit)
	chg   changes    // what changed since the last EachChange (changes.go)
	_     [32]byte   // a multiple of 64 bytes: neighbours share no cache line (TestShardSize)
}

// NewTable returns an empty table.
func NewTable(cfg Config) *Table {
	cfg.setDefaults()
	t := &Table{cfg: cfg, shards: make([]shard, cfg.Shards), mask: uint32(cfg.Shards - 1)}
	t.chgMax = max(64, maxChanges/cfg.Shards)
	for i := range t.shards {
		if cfg.MaxConns > 0 {
			t.shards[i].max = max(1, (cfg.MaxConns+cfg.Shards-1)/cfg.Shards)
			t.shards[i].limbo = newLimbo(min(2*t.shards[i].max, max(limboMax/cfg.Shards, 1)))
		}
	}
	return t
}

// Apply updates the table with one packet.
func (t *Table) Apply(p *Packet) {
	t.clock(p.TS)
	if t.sweepDue(p.TS) {
		t.Sweep()
	}
	var key Key
	d := p.Tuple.fillKey(&key)
	t.apply(p, &key, d, key.hash64(), nil)
}

// clock moves the table's clocks to ts, if later. The clocks move in steps
// of a millisecond at least: a compare-and-swap per packet was a visible
// cost, and no timer needs finer steps (each connection keeps its own
// exact times).
func (t *Table) clock(ts int64) {
	if ts > t.seen.Load()+int64(time.Millisecond) {
		advance(&t.now, ts)
		advance(&t.seen, ts)
	}
}

// sweepDue reports whether a packet at ts is due to sweep first (it starts
// the sweep schedule at the first packet).
func (t *Table) sweepDue(ts int64) bool {
	next := t.nextSweep.Load()
	if ts < next {
		return false
	}
	if next == 0 {
		t.nextSweep.CompareAndSwap(0, ts+int64(t.cfg.SweepEvery))
		return false
	}
	return true
}

// apply is Apply after the clocks and sweeps, for packet p of key (whose
// hash is given), sent in direction d. l is the lane applying it (Lanes),
// or nil for Apply.
func (t *Table) apply(p *Packet, key *Key, d Dir, hash uint64, l *lane) {
	sh := &t.shards[uint32(hash)&t.mask]
	var retire, spill *[]Record // taken from the pool only when a connection leaves
	opened := false
	sh.mu.Lock()
	c := sh.m.get(key, hash)
	if c == nil {
		h, ok := sh.half.get(key, hash)
		if !ok {
			// An evicted handshake comes back (limbo.go), in room made
			// by evicting another.
			if h, ok = sh.limbo.take(key, hash); ok {
				t.evicted.Add(^uint64(0))
				if sh.m.len()+sh.half.len() >= sh.max {
					spill, _ = t.evict(sh, p.TS)
				}
			}
		}
		if ok {
			if !h.mayExpire(p.TS, &t.cfg) && h.resent(p, d) {
				sh.half.set(key, hash, h) // the same SYN again: still half-open
				t.changedHalf(sh, key)
				sh.mu.Unlock()
				t.finish(l, spill, nil)
				return
			}
			// Anything else makes it a full connection.
			sh.half.del(key, hash)
			c = h.conn(*key, &t.cfg, nil)
			sh.m.set(c, hash)
			sh.track(c)
		}
	}
	var reuse *conn
	switch {
	case c == nil:
		opened = true
		if sh.max > 0 && sh.m.len()+sh.half.len() >= sh.max {
			var v *conn
			retire, v = t.evict(sh, p.TS)
			reuse = v
		}
		if halfFits(p) {
			id := t.newID(l)
			h := newHalf(id, p, d)
			sh.half.put(key, hash, h)
			t.changedHalf(sh, key)
			var ev *Event
			if t.cfg.OnChange != nil {
				ev = &Event{Kind: EventOpen, TS: p.TS, Record: h.record(*key, &t.cfg, &sh.tmp, p.TS, p.TS, EndNone, false)}
			}
			sh.mu.Unlock()
			t.finish(l, retire, ev)
			return
		}
	case p.Flags&(SYN|ACK|RST) == SYN && c.startsNew(p, int(d)):
		c.expireTimers(p.TS, p.TS, &t.cfg)
		c.supersede(p, int(d), &t.cfg)
		retire = t.retireBuf(c.record(EndReplaced, true))
		sh.untrack(c)
		t.left(sh, c, c.id)
		opened = true
	default:
		// A sweep may not have come by yet: expiry is exact at the next
		// packet.
		if gone, why := c.expired(p.TS, p.TS, &t.cfg); gone {
			retire = t.retireBuf(c.record(why, true))
			sh.untrack(c)
			t.left(sh, c, c.id)
			opened = true
		}
	}
	if opened {
		c = newConn(*key, p, d, reuse)
		c.id = t.newID(l)
		sh.m.set(c, hash)
	}
	before := [2]State{c.ep[0].state, c.ep[1].state}
	c.apply(p, int(d), &t.cfg)
	if opened {
		sh.track(c)
	} else {
		sh.retrack(c)
	}
	t.changed(sh, c)
	var ev *Event // allocated only for an event: a Record is large to zero per packet
	if t.cfg.OnChange != nil && (opened || before != [2]State{c.ep[0].state, c.ep[1].state}) {
		ev = &Event{Kind: EventState, TS: p.TS, Record: c.record(EndNone, false)}
		if opened {
			ev.Kind = EventOpen
		}
	}
	sh.mu.Unlock()
	t.finish(l, retire, ev)
	if spill != nil {
		t.finish(l, spill, nil)
	}
}

// finish hands a record that left the table and an event to the
// callbacks, after the shard's lock is released.
func (t *Table) finish(l *lane, retire *[]Record, ev *Event) {
	if retire != nil {
		t.retired.Add(1)
		switch {
		case l != nil:
			l.retire(*retire)
		case t.cfg.OnRetire != nil:
			t.cfg.OnRetire(*retire)
		}
		(*retire)[0] = Record{} // let the transition log go
		t.retirePool.Put(retire)
	}
	if ev != nil {
		t.cfg.OnChange(*ev)
	}
}

// evict makes room in a full shard: a half-open connection goes first,
// else the victim of the eviction lists. It returns the record to retire
// and, for a full connection, its memory for reuse. sh.mu is held.
//
// The half-open one is the oldest of a few taken at random (halfTable's
// oldest), as Redis approximates LRU: close to the oldest first, which
// gives a real client's SYN the longest wait for its SYN-ACK during a
// flood, without keeping the half-open ones in order.
func (t *Table) evict(sh *shard, now int64) (*[]Record, *conn) {
	if i := sh.half.oldest(evictSample); i >= 0 {
		e := sh.half.slots[i]
		sh.half.delAt(i)
		t.left(sh, nil, e.h.ident())
		t.evicted.Add(1)
		out, full := sh.limbo.put(&e.key, e.key.hash64(), &e.h)
		if !full {
			return nil, nil
		}
		return t.retireBuf(out.h.record(out.key, &t.cfg, &sh.tmp, now, now, EndEvicted, true)), nil
	}
	v := sh.victim()
	if v == nil {
		return nil, nil
	}
	v.expireTimers(now, now, &t.cfg)
	r := t.retireBuf(v.record(EndEvicted, true))
	sh.untrack(v)
	t.left(sh, v, v.id)
	sh.m.del(&v.key, v.key.hash64())
	t.evicted.Add(1)
	return r, v
}

// EventKind says what happened to a connection.
type EventKind uint8

// Event kinds.
const (
	_          EventKind = iota
	EventOpen            // a new connection was seen
	EventState           // a packet changed an endpoint's state
)

// String returns "open" or "state".
func (k EventKind) String() string {
	switch k {
	case EventOpen:
		return "open"
	case EventState:
		return "state"
	}
	return "none"
}

// Event is a change of a connection, with its record right after it.
type Event struct {
	Kind   EventKind
	TS     int64 // capture time of the packet, Unix nanoseconds
	Record Record
}

// Tick moves the table's clock to now if that is later than the newest
// packet, and sweeps when a sweep is due. A live capture calls it every
// second, so that timers (TIME_WAIT, handshakes, idle connections) run out
// on a quiet network too; a replay never does, its clock is its packets.
func (t *Table) Tick(now time.Time) {
	advance(&t.now, now.UnixNano())
	if next := t.nextSweep.Load(); next != 0 && t.now.Load() >= next {
		t.Sweep()
	}
}

// advance moves clock forward to ts, never back.
func advance(clock *atomic.Int64, ts int64) {
	for {
		cur := clock.Load()
		if ts <= cur || clock.CompareAndSwap(cur, ts) {
			return
		}
	}
}

// Now returns the capture time of the newest packet applied.
func (t *Table) Now() time.Time { return time.Unix(0, t.now.Load()).UTC() }

// Len returns the number of connections in the table. It is not consistent
// with concurrent updates; it is meant for status lines and metrics.
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += sh.m.len() + sh.half.len()
		sh.mu.Unlock()
	}
	return n
}

// Opened returns how many connection records have been started.
func (t *Table) Opened() uint64 { return t.opened.Load() }

// Evicted returns how many connections were evicted to respect MaxConns.
// An evicted handshake that came back from limbo (limbo.go) is no longer
// counted, so the count can go down.
func (t *Table) Evicted() uint64 { return t.evicted.Load() }

// Sweep retires the connections that have expired by the newest packet
// time, handing them to OnRetire. Apply calls it every SweepEvery of
// capture time.
func (t *Table) Sweep() {
	if !t.sweepMu.TryLock() {
		return // another goroutine is sweeping
	}
	defer t.sweepMu.Unlock()
	now, seen := t.now.Load(), t.seen.Load()
	t.nextSweep.Store(now + int64(t.cfg.SweepEvery))
	// Each sweep looks at a slice of the shards, so that a table of a
	// million connections costs a fraction of them per second of capture
	// time; a connection's expiry is seen at most sweepSlices sweeps late.
	n := max(1, len(t.shards)/sweepSlices)
	if t.Len() <= sweepAllBelow {
		n = len(t.shards) // a small table is swept whole: expiry stays within a second
	}
	from := t.sweepNext
	t.sweepNext = (from + n) % len(t.shards)
	t.emit(t.collect(from, from+n, now, func(c *conn) (bool, EndReason) { return c.expired(now, seen, &t.cfg) }))
}

// defaultShards is Config.Shards's default.
const defaultShards = 64

// evictSample is how many half-open connections an eviction compares.
const evictSample = 16

// sweepSlices is how many sweeps it takes to look at every shard once, in
// a table of more than sweepAllBelow connections.
const (
	sweepSlices   = 8
	sweepAllBelow = 1 << 16
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
// the connections started, without holding them all at once: a table of a
// million connections would need a third of a gigabyte of records. fn must
// not keep the slice.
func (t *Table) FlushEach(fn func([]Record)) {
	now, seen := t.now.Load(), t.seen.Load()
	// Half-open connections stay small values, where they are, until their
	// turn comes: under a flood they are most of the table, and limbo holds
	// as many. Flush takes the shards' half tables and limbos whole.
	//
	// Each connection is sorted by (start, ID) copied beside it: a
	// comparison that followed the pointers missed the cache twice, and the
	// sort of a million took most of a flush that the JSON encoders wait on.
	type ref struct {
		first int64
		id    uint64
		c     *conn     // a full connection, or
		e     *halfSlot // a half-open one
		end   EndReason
	}
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += sh.m.len() + sh.half.len() + sh.limbo.n
		sh.mu.Unlock()
	}
	refs := make([]ref, 0, n)
	var halves []halfTable
	var limbos []limbo
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.chg.drop()
		sh.chg.over = true // the view must look again
		sh.eachConn(func(c *conn) {
			refs = append(refs, ref{first: c.first, id: c.id, c: c, end: EndFlushed})
			sh.untrack(c)
		})
		sh.m = connTable{}
		if sh.half.len() > 0 {
			halves = append(halves, sh.half)
			sh.half = halfTable{}
		}
		if sh.limbo.n > 0 {
			limbos = append(limbos, sh.limbo)
			sh.limbo = newLimbo(sh.limbo.size)
		}
		sh.mu.Unlock()
	}
	// The connections are out of the table: no lock guards them now.
	for i := range halves {
		halves[i].each(func(s *halfSlot) {
			refs = append(refs, ref{first: s.h.firstTS(), id: s.h.ident(), e: s, end: EndFlushed})
		})
	}
	for i := range limbos {
		l := &limbos[i]
		for j := range l.slots {
			if e := &l.slots[j]; l.tags[j] != 0 {
				refs = append(refs, ref{first: e.h.firstTS(), id: e.h.ident(), e: e, end: EndEvicted})
			}
		}
	}
	byStart := func(a, b ref) int {
		if c := cmp.Compare(a.first, b.first); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	}
	// Sorted in pieces, one per core, and merged as the records go out.
	workers := max(1, runtime.GOMAXPROCS(0))
	runs := pieces(refs, workers)
	var sorting sync.WaitGroup
	for _, r := range runs {
		sorting.Go(func() { slices.SortFunc(r, byStart) })
	}
	sorting.Wait()
	n = len(refs)
	t.retired.Add(uint64(n))

	// The records are made on every core, a chunk of the order on each,
	// and handed to fn in order: making one misses the cache on its
	// connection, and a half-open one is replayed through the state
	// machine first.
	type chunk struct {
		refs []ref
		recs []Record
		done chan struct{}
	}
	const chunkLen = 512
	jobs := make(chan *chunk, workers)
	order := make(chan *chunk, 2*workers)
	free := make(chan *chunk, 3*workers+1)
	for range cap(free) {
		free <- &chunk{refs: make([]ref, 0, chunkLen), recs: make([]Record, 0, chunkLen), done: make(chan struct{}, 1)}
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var scratch conn
			for ch := range jobs {
				for i := range ch.refs {
					r := &ch.refs[i]
					c := r.c
					if c == nil {
						c = r.e.h.conn(r.e.key, &t.cfg, &scratch)
					}
					c.expireTimers(now, seen, &t.cfg)
					ch.recs = append(ch.recs, c.record(r.end, true))
				}
				ch.done <- struct{}{}
			}
		})
	}
	go func() { // hands the chunks to fn in order
		defer close(jobs)
		defer close(order)
		ch := <-free
		send := func() {
			jobs <- ch
			order <- ch
			ch = <-free
		}
		for range n {
			next := -1 // the piece whose first entry is the earliest
			for k := range runs {
				if len(runs[k]) > 0 && (next < 0 || byStart(runs[k][0], runs[next][0]) < 0) {
					next = k
				}
			}
			ch.refs = append(ch.refs, runs[next][0])
			runs[next][0].c = nil // the chunk holds it now
			runs[next] = runs[next][1:]
			if len(ch.refs) == chunkLen {
				send()
			}
		}
		if len(ch.refs) > 0 {
			send()
		}
	}()
	for ch := range order {
		<-ch.done
		fn(ch.recs)
		clear(ch.refs)
		clear(ch.recs) // let go of transition logs
		ch.refs, ch.recs = ch.refs[:0], ch.recs[:0]
		free <- ch
	}
	wg.Wait()
	clear(refs) // no reference into limbo's memory is left
	for i := range limbos {
		limbos[i].release()
	}
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

// Snapshot returns a copy of every connection in the table, in no
// particular order, without transition logs (see Lookup). Each shard is
// copied under its own lock, so the copy is consistent per connection, not
// across the table.
func (t *Table) Snapshot() []Record { return t.AppendSnapshot(nil) }

// AppendSnapshot is Snapshot appending to dst, so that a caller refreshing
// a view many times a second can reuse one buffer.
func (t *Table) AppendSnapshot(dst []Record) []Record {
	t.EachSnapshot(func(r *Record) { dst = append(dst, *r) })
	return dst
}

// EachSnapshot calls fn with each connection's record, as Snapshot would
// return them, without holding them all: fn's record is reused once fn
// returns. A view that keeps a smaller copy of each connection thus needs
// no room for a million Records (a third of a gigabyte). fn runs with a
// shard's lock held: it must be quick, and must not call into the table.
func (t *Table) EachSnapshot(fn func(*Record)) { t.EachSnapshotUpTo(math.MaxUint64, fn) }

// EachSnapshotUpTo is EachSnapshot for a view that follows the table with
// EachChange (Config.Changes): it starts the change lists afresh, and
// lists the connections with IDs above upto as changed instead of handing
// them to fn, so that the next EachChange gives them. Without
// Config.Changes it is EachSnapshot.
func (t *Table) EachSnapshotUpTo(upto uint64, fn func(*Record)) {
	if !t.cfg.Changes {
		upto = math.MaxUint64
	}
	now, seen := t.now.Load(), t.seen.Load()
	var r Record
	noLog := t.cfg
	noLog.Transitions = 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.chg.drop() // what changed before is in this snapshot
		sh.chg.over = false
		sh.eachConn(func(c *conn) {
			if c.id > upto {
				t.changed(sh, c)
				return
			}
			c.expireTimers(now, seen, &t.cfg) // states as of now, even without a packet since
			c.fill(&r, EndNone, false)
			fn(&r)
		})
		sh.half.each(func(s *halfSlot) {
			if s.h.ident() > upto {
				t.changedHalf(sh, &s.key)
				return
			}
			c := s.h.conn(s.key, &noLog, &sh.tmp)
			c.expireTimers(now, seen, &noLog)
			c.fill(&r, EndNone, false)
			fn(&r)
		})
		sh.mu.Unlock()
	}
}

// eachConn calls fn for every connection of the shard (sh.mu is held), in
// groups whose connections are all fetched before fn sees any: a walk of a
// large table waits on memory at each connection, and the fetches of a
// group overlap (a snapshot of a million connections took half the time).
// fn must not change sh.m.
func (sh *shard) eachConn(fn func(c *conn)) {
	var conns [32]*conn
	var touched uint32
	n := 0
	run := func() {
		for _, c := range conns[:n] {
			// A word from each of the conn's six cache lines.
			touched += uint32(c.id) + uint32(c.ep[0].state) + uint32(c.ep[1].state) +
				c.ep[1].retrans + uint32(c.rtt) + c.zeek.bits
		}
		for _, c := range conns[:n] {
			fn(c)
		}
		n = 0
	}
	sh.m.eachConn(func(c *conn) {
		conns[n] = c
		if n++; n == len(conns) {
			run()
		}
	})
	run()
	fetched.Store(touched)
}

// fetched keeps eachConn's fetches from being optimised away.
var fetched atomic.Uint32

// Lookup returns the current record of the connection with the given key
// and ID, with its transition log, if it is still in the table.
func (t *Table) Lookup(key Key, id uint64) (Record, bool) {
	hash := key.hash64()
	sh := &t.shards[uint32(hash)&t.mask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c := sh.m.get(&key, hash); c != nil && c.id == id {
		return c.record(EndNone, true), true
	}
	if h, ok := sh.half.get(&key, hash); ok && h.ident() == id {
		now, seen := t.now.Load(), t.seen.Load()
		return h.record(key, &t.cfg, &sh.tmp, now, seen, EndNone, true), true
	}
	return Record{}, false
}

// collect removes the connections for which drop is true and returns their
// records sorted by start time.
func (t *Table) collect(from, to int, now int64, drop func(*conn) (bool, EndReason)) []Record {
	var recs []Record
	var gone []Key
	var done []*conn
	for i := from; i < to; i++ {
		sh := &t.shards[i%len(t.shards)] // a sweep's slice may wrap around
		sh.mu.Lock()
		done = done[:0]
		sh.eachConn(func(c *conn) {
			before := [2]State{c.ep[0].state, c.ep[1].state}
			if ok, why := drop(c); ok {
				recs = append(recs, c.record(why, true))
				done = append(done, c)
			} else if before != [2]State{c.ep[0].state, c.ep[1].state} {
				t.changed(sh, c) // a timer changed a state
			}
		})
		for _, c := range done { // deleting moves entries: not while walking them
			sh.untrack(c)
			sh.m.del(&c.key, c.key.hash64())
			t.left(sh, c, c.id)
		}
		gone = gone[:0]
		sh.half.each(func(s *halfSlot) {
			if !s.h.mayExpire(now, &t.cfg) {
				return
			}
			c := s.h.conn(s.key, &t.cfg, &sh.tmp)
			if ok, why := drop(c); ok {
				recs = append(recs, c.record(why, true))
				gone = append(gone, s.key)
				t.left(sh, nil, s.h.ident())
			}
		})
		for i := range gone { // deleting moves entries: not while walking them
			sh.half.del(&gone[i], gone[i].hash64())
		}
		// An evicted handshake stays in limbo no longer than it would have
		// stayed in the table.
		sh.limbo.each(func(e *halfSlot) bool {
			if !e.h.mayExpire(now, &t.cfg) {
				return false
			}
			c := e.h.conn(e.key, &t.cfg, &sh.tmp)
			if ok, _ := drop(c); ok {
				recs = append(recs, c.record(EndEvicted, true))
				return true
			}
			return false
		})
		sh.mu.Unlock()
	}
	SortByStart(recs)
	return recs
}

func (t *Table) emit(recs []Record) {
	if len(recs) == 0 {
		return
	}
	t.retired.Add(uint64(len(recs)))
	if t.cfg.OnRetire != nil {
		t.cfg.OnRetire(recs)
	}
}

// expired reports whether c should leave the table at capture time now,
// and why.
func (c *conn) expired(now, seen int64, cfg *Config) (bool, EndReason) {
	c.expireTimers(now, seen, cfg)
	idle := now - c.last
	if c.ep[0].state == StateClosed && c.ep[1].state == StateClosed {
		return idle >= int64(cfg.ClosedTimeout), EndClosed
	}
	return idle >= int64(cfg.IdleTimeout), EndIdle
}

// SortByStart sorts records by first-seen time, then by ID (the order the
// table saw them start), so that output is deterministic. It sorts an index
// and then moves each record once: a Record is large to swap.
func SortByStart(recs []Record) {
	less := func(a, b *Record) int {
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	}
	if slices.IsSortedFunc(recs, func(a, b Record) int { return less(&a, &b) }) {
		return
	}
	idx := make([]int32, len(recs))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int { return less(&recs[a], &recs[b]) })
	// Apply the permutation in place, one cycle at a time: position i
	// takes the record at idx[i].
	for i := range idx {
		if idx[i] < 0 {
			continue
		}
		tmp := recs[i]
		j := i
		for {
			k := int(idx[j])
			idx[j] = -1
			if k == i {
				recs[j] = tmp
				break
			}
			recs[j] = recs[k]
			j = k
		}
	}
}
