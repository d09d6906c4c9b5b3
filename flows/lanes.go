package flows

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Lanes applies a capture's packets to a table on several goroutines at
// once. Each lane owns a share of the shards, so that no two lanes update
// one connection, and applies its packets in capture order; lane 0 runs on
// the caller's goroutine. A table update of a large table mostly waits on
// memory (a cache miss for the table slot, another for the connection),
// and the lanes wait side by side on separate cores. Lane 0 owns every
// shard until the table holds 32 k connections (maybeSplit).
//
// What comes out is what Apply, one packet after another, and Table.Tick
// between them would give:
//   - Records retired on the way reach OnRetire, and events OnChange, in
//     the same order. Each lane keeps its records and events with the
//     number of the packet that made them; every epoch (epochLen packets,
//     or fewer when a lane's batch fills first, or at Sync) the lanes'
//     are merged by that number and handed on, on the goroutine that calls
//     Apply, once every lane is done with the epoch.
//   - A sweep is due at the same packet or tick, and runs at a barrier:
//     every lane has applied every packet before it, and none after.
//   - A connection's ID is the number of the packet that opened it (from
//     1, in capture order), not the count of connections before it: IDs
//     keep the order in which the table saw connections start, which is
//     what sorting records by start time falls back on.
//
// Records and events reach their callbacks up to an epoch later than
// Apply would hand them on: a live capture calls Sync a few times a second,
// so that they come out within that time on a quiet network too.
//
// Nothing but the Lanes may apply packets to the table, or Tick it, until
// Close has returned. Views may read it meanwhile (snapshots, EachChange,
// with IDMark as the mark of the connections opened).
type Lanes struct {
	t      *Table
	lanes  []*lane // lanes[0] runs on the caller's goroutine
	laneOf []uint8 // each shard's lane
	split  bool    // the shards are shared out (maybeSplit)

	splitAbove uint64 // connections tracked before they are
	touchAbove uint64 // connections tracked before applyBatch loads ahead
	seq        uint64 // packets routed
	inEpoch    int    // packets routed in the current epoch
	pending    []epochRecs
	merged     []Record
	mergedTags []recTag
	wg         sync.WaitGroup
}

// epochLen is how many packets an epoch spans, at most; laneBatchLen how
// many a lane is handed at once.
const (
	epochLen     = 2048
	laneBatchLen = 512
)

// lane is one lane. The fields under "its goroutine" belong to the lane's
// goroutine (the caller's, for lane 0), the others to the caller's.
type lane struct {
	in    chan *laneBatch // batches to apply, in order
	free  chan *laneBatch // applied batches, for reuse
	out   chan *bundle    // the records of each epoch, in order (nil: none)
	spare chan *bundle    // merged bundles, for reuse
	cur   *laneBatch      // being filled

	// its goroutine:
	recent [recentConns]lastConn // connections of the last packets applied, most often the next one's too
	seq    uint64                // number of the packet being applied
	b      *bundle               // records retired in this epoch so far
	sink   uint64                // keeps the loads of applyBatch
}

// lastConn is a connection a lane found in the index (Table.lookup): its
// key, the key's hash, and its index in the slab, good while its shard's
// index has taken nothing out (connTable.gen). Packets come in runs of one
// connection, or of a few interleaved: a run's later packets skip the
// probe (and, while the lanes are not split, the hash). A lane keeps recentConns of them, one per pair of ports'
// low bits.
type lastConn struct {
	key  Key
	hash uint64
	gen  uint64
	i    uint32
	ok   bool
}

const recentConns = 8

// recentOf returns the entry of ln.recent where k's connection would be.
func (ln *lane) recentOf(k *Key) *lastConn {
	return &ln.recent[(k.Port[0]^k.Port[1])%recentConns]
}

// laneBatch is packets for a lane, with their numbers and keys' hashes.
type laneBatch struct {
	n    int
	last bool // the epoch ends with this batch
	seq  [laneBatchLen]uint64
	hash [laneBatchLen]uint64
	p    [laneBatchLen]Packet
}

// bundle is the records a lane retired and the events it made in an
// epoch, in order, each with the number of the packet that made it.
type bundle struct {
	recs []Record
	tags []recTag // one per record
}

// recTag says what a bundle's record is: a retired one (kind 0), or the
// record of an event of that kind at capture time ts.
type recTag struct {
	seq  uint64
	ts   int64
	kind EventKind
}

// epochRecs is an epoch whose records wait for every lane's; last is the
// number of its last packet.
type epochRecs struct {
	b    []*bundle
	got  []bool
	last uint64
}

// maxLanes is the most lanes a table is applied on.
const maxLanes = 16

// NewLanes returns n lanes (from 1 to 16, and at most one per shard)
// applying packets to t.
func NewLanes(t *Table, n int) *Lanes {
	n = max(1, min(n, len(t.shards), maxLanes))
	l := &Lanes{t: t, lanes: make([]*lane, n), laneOf: make([]uint8, len(t.shards)), splitAbove: splitAbove, touchAbove: touchAbove}
	t.laned.Store(true)
	for i := range l.lanes {
		ln := &lane{out: make(chan *bundle, 64), spare: make(chan *bundle, 64)}
		l.lanes[i] = ln
		ln.cur = new(laneBatch)
		if i == 0 {
			continue
		}
		ln.in = make(chan *laneBatch, 8)
		ln.free = make(chan *laneBatch, 10)
		for range cap(ln.free) - 1 {
			ln.free <- new(laneBatch)
		}
		l.wg.Add(1)
		go l.run(ln)
	}
	return l
}

// splitAbove is how many connections a table holds before its shards are
// shared out among the lanes (maybeSplit).
const splitAbove = 1 << 15

// touchAbove is how many connections a table holds before applyBatch
// loads ahead.
const touchAbove = 1 << 15

// run is the goroutine of a lane other than 0.
func (l *Lanes) run(ln *lane) {
	defer l.wg.Done()
	for b := range ln.in {
		l.applyBatch(ln, b)
		if b.last {
			ln.out <- ln.b
			ln.b = nil
		}
		b.n, b.last = 0, false
		ln.free <- b
	}
}

// applyBatch applies a lane's batch of packets in order. Once the table
// is too large for the caches, it brings in the table slots of the packet
// 2*ahead places on, and the connection of the packet ahead places on
// (whose slot is in by then), before applying each packet: the misses of
// the packets to come are served while this one is applied, instead of
// each packet waiting on its own.
func (l *Lanes) applyBatch(ln *lane, b *laneBatch) {
	t := l.t
	var key Key
	// A small table stays in the caches, where loading ahead only costs.
	touch := t.opened.Load()-t.retired.Load() >= l.touchAbove
	if touch {
		for i := range min(b.n, 2*ahead) {
			ln.sink += l.touchSlots(b.hash[i])
		}
		for i := range min(b.n, ahead) {
			ln.sink += l.touchConn(b.hash[i])
		}
	}
	for i := range b.n {
		if touch {
			if j := i + 2*ahead; j < b.n {
				ln.sink += l.touchSlots(b.hash[j])
			}
			if j := i + ahead; j < b.n {
				ln.sink += l.touchConn(b.hash[j])
			}
		}
		p := &b.p[i]
		ln.seq = b.seq[i]
		d := p.Tuple.fillKey(&key)
		r := ln.recentOf(&key)
		t.apply(p, &key, d, b.hash[i], ln, r, r.ok && r.hash == b.hash[i] && r.key.equal(&key))
	}
}

// ahead is how many packets before applying one applyBatch brings in its
// connection; it brings in its slot twice as many before. A packet brings
// in five or six cache lines (its slot, its connection's four or five and
// its eviction links): with more packets ahead, more lines are on their
// way than the core has fill buffers for, and the loads ahead wait for
// one instead of overlapping (docs/performance.md).
const ahead = 4

// touchSlots brings in the slot of the shard's index where the key of
// this hash would be first.
func (l *Lanes) touchSlots(hash uint64) uint64 {
	return l.t.shards[uint32(hash)&l.t.mask].m.touchSlot(hash)
}

// touchConn brings in the connection of this hash, if the index has one;
// if not, the half table's slot, where a connection the index does not
// hold is looked for next.
func (l *Lanes) touchConn(hash uint64) uint64 {
	sh := &l.t.shards[uint32(hash)&l.t.mask]
	if v := sh.m.touchConn(hash); v != 0 {
		return v
	}
	return sh.half.touchSlot(hash)
}

// Apply applies p, as Table.Apply would. Packets must come in capture
// order, from one goroutine.
func (l *Lanes) Apply(p *Packet) {
	t := l.t
	if t.zk != nil {
		t.Apply(p) // Zeek's timers run across connections, in packet order
		return
	}
	// The clocks follow the packets in capture order here, as Apply moves
	// them (no update reads them).
	t.clock(p.TS)
	if t.sweepDue(p.TS) {
		l.drain()
		t.Sweep()
	}
	l.seq++
	var key Key
	d := p.Tuple.fillKey(&key)
	if !l.split {
		// Lane 0 has every shard, of a table small enough to stay in
		// the caches: the packet is applied at once.
		ln := l.lanes[0]
		ln.seq = l.seq
		r := ln.recentOf(&key)
		again := r.ok && r.key.equal(&key)
		hash := r.hash
		if !again {
			hash = key.hash64()
		}
		t.apply(p, &key, d, hash, ln, r, again)
		if l.inEpoch++; l.inEpoch == epochLen {
			l.endEpoch()
			l.maybeSplit()
		}
		return
	}
	hash := key.hash64()
	ln := l.lanes[l.laneOf[uint32(hash)&t.mask]]
	b := ln.cur
	b.p[b.n], b.seq[b.n], b.hash[b.n] = *p, l.seq, hash
	if b.n++; b.n == laneBatchLen {
		l.endEpoch()
		l.maybeSplit()
		return
	}
	if l.inEpoch++; l.inEpoch == epochLen {
		l.endEpoch()
		l.maybeSplit()
	}
}

// Advance moves the table's clocks to ts, the capture time of a frame
// that is not a TCP segment, as Table.Advance does: on the caller's
// goroutine, in capture order with the packets, and a sweep it makes due
// runs at a barrier, as one due at a packet does.
func (l *Lanes) Advance(ts int64) {
	t := l.t
	if t.zk != nil {
		t.Advance(ts) // as Apply: Zeek's timers run in packet order
		return
	}
	t.clock(ts)
	if t.sweepDue(ts) {
		l.drain()
		t.Sweep()
	}
}

// Tick is Table.Tick for a table that the lanes apply packets to: it moves
// the table's clock to now, if that is later than the newest packet, and
// runs Zeek's timers and a sweep that is due, at a barrier. Call it from
// the goroutine that calls Apply: ticks and packets then make one
// sequence, whose records and events are those that Table.Apply and
// Table.Tick give for it.
func (l *Lanes) Tick(now time.Time) {
	t := l.t
	advance(&t.now, now.UnixNano())
	if t.zk != nil {
		l.drain()
		t.zeekAdvance(now.UnixNano())
	}
	if next := t.nextSweep.Load(); next != 0 && t.now.Load() >= next {
		l.drain()
		t.Sweep()
	}
}

// Sync applies every packet handed to Apply so far, and hands on their
// records and events, before it returns. Call it from the goroutine that
// calls Apply.
func (l *Lanes) Sync() { l.drain() }

// maybeSplit shares the shards out among the lanes once the table holds
// splitAbove connections; until then lane 0 has them all, and applies each
// packet as it comes. A single lane "splits" too: it then takes its
// packets in batches, as the others do, to load their slots and
// connections ahead (applyBatch), so that one core, too, waits on a
// group's cache misses side by side. A small table stays in the caches, and handing its
// packets to another goroutine costs more than it saves (see
// docs/performance-notes-flows.md). The lanes are idle while the shards
// change hands.
func (l *Lanes) maybeSplit() {
	t := l.t
	if l.split || t.opened.Load()-t.retired.Load() < l.splitAbove {
		return
	}
	l.drain()
	for i := range l.laneOf {
		l.laneOf[i] = uint8(i % len(l.lanes))
	}
	l.split = true
}

// Close applies every packet handed to Apply, hands on their records, and
// stops the lanes' goroutines.
func (l *Lanes) Close() {
	l.drain()
	for _, ln := range l.lanes[1:] {
		close(ln.in)
	}
	l.wg.Wait()
}

// endEpoch hands every lane the rest of the epoch's packets, and the
// records of the epochs that every lane is done with to OnRetire.
func (l *Lanes) endEpoch() {
	l.inEpoch = 0
	n := len(l.lanes)
	l.pending = append(l.pending, epochRecs{b: make([]*bundle, n), got: make([]bool, n), last: l.seq})
	e := &l.pending[len(l.pending)-1]
	for k, ln := range l.lanes {
		if ln.in == nil {
			l.applyBatch(ln, ln.cur)
			ln.cur.n = 0
			e.b[k], e.got[k] = ln.b, true
			ln.b = nil
			continue
		}
		if !l.split {
			// The lane has never had a packet: waking its goroutine
			// for an empty epoch would cost a switch between threads
			// every epochLen packets, for nothing.
			e.got[k] = true
			continue
		}
		ln.cur.last = true
		ln.in <- ln.cur
		ln.cur = <-ln.free
	}
	// The packet routed last may be the last of an ID epoch (IDs are
	// packet numbers): the table's epoch moves on before the next one is
	// routed, at a barrier. Otherwise the next epoch of the lanes ends at
	// the last packet of the ID epoch, if that is nearer than epochLen: the
	// router checks no packet's number on its own.
	left := math.MaxUint32 - uint32(l.seq)
	if next := uint32(l.seq>>32) + 1; left == 0 && l.t.cfg.cold.epoch.Load() != next {
		l.collect(true)
		l.t.newIDEpoch(nil, next)
		return
	}
	if left > 0 && left < epochLen {
		l.inEpoch = epochLen - int(left)
	}
	l.collect(false)
}

// drain ends the epoch and waits for every lane to finish it: then no lane
// is applying anything, and every record retired so far has been handed on.
func (l *Lanes) drain() {
	l.endEpoch()
	l.collect(true)
}

// collect gathers the lanes' records for the pending epochs, waiting for
// them if wait is true, and hands on those of the epochs complete, in
// order.
func (l *Lanes) collect(wait bool) {
nextLane:
	for k, ln := range l.lanes {
		for i := range l.pending {
			e := &l.pending[i]
			if e.got[k] {
				continue
			}
			if wait {
				e.b[k] = <-ln.out
			} else {
				select {
				case e.b[k] = <-ln.out:
				default:
					continue nextLane
				}
			}
			e.got[k] = true
		}
	}
	done := 0
	for ; done < len(l.pending) && !slices.Contains(l.pending[done].got, false); done++ {
		l.emit(l.pending[done].b)
		l.t.settled.Store(l.pending[done].last)
	}
	l.pending = append(l.pending[:0], l.pending[done:]...)
}

// emit merges an epoch's bundles (one per lane) by packet number, hands
// the records to OnRetire and the events to OnChange, in that order, and
// gives the bundles back to their lanes.
func (l *Lanes) emit(bs []*bundle) {
	recs, tags := l.merged[:0], l.mergedTags[:0]
	var at [maxLanes]int
	for {
		k := -1
		for j, b := range bs {
			if b != nil && at[j] < len(b.recs) && (k < 0 || b.tags[at[j]].seq < bs[k].tags[at[k]].seq) {
				k = j
			}
		}
		if k < 0 {
			break
		}
		recs = append(recs, bs[k].recs[at[k]])
		tags = append(tags, bs[k].tags[at[k]])
		at[k]++
	}
	l.handOn(recs, tags)
	clear(recs) // let the transition logs go
	l.merged, l.mergedTags = recs[:0], tags[:0]
	for k, b := range bs {
		if b == nil {
			continue
		}
		clear(b.recs)
		b.recs, b.tags = b.recs[:0], b.tags[:0]
		select {
		case l.lanes[k].spare <- b:
		default:
		}
	}
}

// handOn hands merged records to the callbacks: each run of retired ones to
// OnRetire at once, each event to OnChange.
func (l *Lanes) handOn(recs []Record, tags []recTag) {
	cfg := &l.t.cfg
	from := 0
	for i := range recs {
		if tags[i].kind == 0 {
			continue
		}
		if i > from && cfg.OnRetire != nil {
			cfg.OnRetire(recs[from:i])
		}
		from = i + 1
		cfg.OnChange(Event{Kind: tags[i].kind, TS: tags[i].ts, Record: recs[i]})
	}
	if len(recs) > from && cfg.OnRetire != nil {
		cfg.OnRetire(recs[from:])
	}
}

// retire keeps the records retired by the packet the lane is applying,
// for the end of the epoch.
func (ln *lane) retire(recs []Record) {
	b := ln.bundle()
	b.recs = append(b.recs, recs...)
	for range recs {
		b.tags = append(b.tags, recTag{seq: ln.seq})
	}
}

// event keeps an event of the packet the lane is applying, for the end of
// the epoch.
func (ln *lane) event(ev *Event) {
	b := ln.bundle()
	b.recs = append(b.recs, ev.Record)
	b.tags = append(b.tags, recTag{seq: ln.seq, ts: ev.TS, kind: ev.Kind})
}

// bundle returns the lane's bundle of the epoch, started if need be.
func (ln *lane) bundle() *bundle {
	if ln.b == nil {
		select {
		case ln.b = <-ln.spare:
		default:
			ln.b = new(bundle)
		}
	}
	return ln.b
}

// newID returns the ID of a connection that the packet being applied
// opens, in shard sh (whose lock is held): the count of connections
// opened so far, or for a lane the number of the packet. The first count
// of an ID epoch moves the table's epoch on (connwide.go); the lanes' epoch
// moves on at a barrier instead (endEpoch).
func (t *Table) newID(sh *shard, l *lane) uint64 {
	n := t.opened.Add(1)
	if l != nil {
		return l.seq
	}
	if uint32(n) == 0 {
		t.newIDEpoch(sh, uint32(n>>32))
	}
	return n
}
