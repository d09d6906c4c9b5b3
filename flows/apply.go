package flows

import "time"

// Apply updates the table with one packet.
func (t *Table) Apply(p *Packet) {
	t.clock(p.TS)
	if t.zk != nil {
		t.applyZeekPacket(p)
		return
	}
	if t.sweepDue(p.TS) {
		t.Sweep()
	}
	var key Key
	d := p.Tuple.fillKey(&key)
	t.apply(p, &key, d, key.hash64(), nil, nil, false)
}

// Advance moves the table's clocks to ts, the capture time of a frame
// that is not a TCP segment (capture.Run hands them over), and sweeps if
// a sweep is due: timers run out, and silence counts as evidence, on the
// time of every frame captured, however little of it is TCP. Frames must
// come in capture order, as packets do. Zeek's network time, too, moves
// with every packet it reads, so its timers fire here as well.
func (t *Table) Advance(ts int64) {
	t.clock(ts)
	if t.zk != nil {
		t.zeekAdvance(ts)
	}
	if t.sweepDue(ts) {
		t.Sweep()
	}
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
// or nil for Apply; r is then the lane's entry of recent connections where
// key's would be (lane.recentOf), and again says it holds key. Its steps
// run under the shard's lock; what they hand out (records of connections
// that left, an event) goes to the callbacks after it is released.
func (t *Table) apply(p *Packet, key *Key, d Dir, hash uint64, l *lane, r *lastConn, again bool) {
	sh := &t.shards[uint32(hash)&t.mask]
	sh.mu.Lock()
	var c *conn
	if again && r.gen == sh.m.gen {
		// Found recently, and the index took nothing out since: no probe.
		c = sh.m.slab.at(r.i)
	} else {
		c = t.lookup(sh, key, hash, r)
	}
	if c != nil && t.predicted(sh, c, p, d) {
		sh.mu.Unlock()
		return
	}
	t.applySlow(sh, c, p, key, d, hash, l)
}

// applySlow is apply for a packet that the fast path did not take, to c,
// key's connection in sh (nil if the index has none). It releases sh.mu,
// which apply took: the fast path's steps stay few, in a small frame.
func (t *Table) applySlow(sh *shard, c *conn, p *Packet, key *Key, d Dir, hash uint64, l *lane) {
	var spill *[]Record
	if c == nil {
		var resent bool
		if c, spill, resent = t.revive(sh, p, key, d, hash); resent {
			sh.mu.Unlock()
			t.finish(l, spill, nil)
			return
		}
	}
	var retire *[]Record // taken from the pool only when a connection leaves
	opened := false
	switch {
	case c == nil:
		var reuse *conn
		retire, reuse = t.makeRoom(sh, p.TS)
		if halfFits(p) {
			if reuse != nil {
				t.release(sh, reuse)
			}
			ev := t.openHalf(sh, p, key, d, hash, l)
			sh.mu.Unlock()
			t.finish(l, retire, ev)
			return
		}
		c, opened = t.open(sh, p, key, d, l, reuse), true
		sh.m.put(c, hash) // apply looked the key up; makeRoom only takes others out
	default:
		var reused reuse
		if retire, reused = t.retireEnded(sh, c, p, d); retire != nil {
			c, opened = t.open(sh, p, key, d, l, c), true // in the old one's memory, and its slot
			c.inherit(reused, t.cfg.cold)
		}
	}
	ev := t.update(sh, c, p, d, opened)
	sh.mu.Unlock()
	t.finish(l, retire, ev)
	if spill != nil {
		t.finish(l, spill, nil)
	}
}

// lookup returns key's connection in sh, or nil, by a probe of the
// index, and keeps what it found in r, the lane's entry of recent
// connections for key (nil without a lane): the lane's next packets of
// the connection then skip the probe (apply).
func (t *Table) lookup(sh *shard, key *Key, hash uint64, r *lastConn) *conn {
	i := sh.m.find(key, hash)
	if i < 0 {
		return nil
	}
	si := sh.m.slots[i].i
	if r != nil {
		*r = lastConn{key: *key, hash: hash, gen: sh.m.gen, i: si, ok: true}
	}
	return sh.m.slab.at(si)
}

// predicted applies p, sent in direction d, to c if the fast path takes it
// (fastpath.go), and reports whether it did. It is what retireEnded and
// update do for such a packet: c has not expired, since an established
// connection with no delivery pending runs no timer and only its idle
// time counts; it gives no event, since no state changed and nothing notable
// happened. sh.mu is held.
func (t *Table) predicted(sh *shard, c *conn, p *Packet, d Dir) bool {
	if predict == nil || p.TS-c.last >= int64(t.cfg.IdleTimeout) || c.coldWaits(t.cfg.cold) ||
		!predict(c, p, int(d), t.cfg.cold) {
		return false
	}
	sh.retrackLive(c) // the fast path takes only packets between ESTABLISHED ends
	t.changed(sh, c)
	return true
}

// revive returns the connection of key in sh that is not a full one: a
// half-open one (from the half table, or back from limbo) made full, or
// nil. If p is the same SYN again, the connection stays half-open instead
// and resent is true. spill is the record of a connection evicted to make
// room for one back from limbo. sh.mu is held.
func (t *Table) revive(sh *shard, p *Packet, key *Key, d Dir, hash uint64) (c *conn, spill *[]Record, resent bool) {
	// One probe of the half table finds the slot to read, write back or
	// empty; makeRoom may move the half table's entries, but runs only
	// for a connection that was not in it.
	var h halfOpen
	i := sh.half.find(key, hash)
	if i >= 0 {
		h = sh.half.slots[i].h
	} else {
		var ok bool
		if h, ok = sh.limbo.take(key, hash); !ok {
			return nil, nil, false
		}
		// An evicted handshake comes back (limbo.go), in room made by
		// evicting another.
		t.evicted.Add(^uint64(0))
		var freed *conn
		if spill, freed = t.makeRoom(sh, p.TS); freed != nil {
			t.release(sh, freed)
		}
	}
	if !h.mayExpire(p.TS, &t.cfg) && h.resent(p, d) {
		if i >= 0 {
			sh.half.slots[i].h = h
		} else {
			sh.half.put(key, hash, h)
		}
		t.changedHalf(sh, key)
		return nil, spill, true
	}
	// Anything else makes it a full connection, of a key that the index
	// does not hold (apply looked it up).
	if i >= 0 {
		sh.half.delAt(i)
	}
	c = h.conn(*key, &t.cfg, sh.m.alloc())
	sh.m.put(c, hash)
	sh.track(c)
	return c, spill, false
}

// openHalf starts a half-open connection with the SYN p, and returns the
// event of its opening if OnChange wants one. sh.mu is held.
func (t *Table) openHalf(sh *shard, p *Packet, key *Key, d Dir, hash uint64, l *lane) *Event {
	h := newHalf(t.newID(sh, l), p, d)
	sh.half.put(key, hash, h)
	t.changedHalf(sh, key)
	if t.cfg.OnChange == nil {
		return nil
	}
	return &Event{Kind: EventOpen, TS: p.TS, Record: h.record(*key, &t.cfg, &sh.tmp, p.TS, p.TS, EndNone, false)}
}

// open starts a full connection with p, in reuse's memory (a connection
// of sh's slab that left the table, or the one of its key that it
// replaces) if not nil. The caller puts it in the index, if reuse was
// not there. sh.mu is held.
func (t *Table) open(sh *shard, p *Packet, key *Key, d Dir, l *lane, reuse *conn) *conn {
	id := t.newID(sh, l) // first: it may walk the shard (newIDEpoch), which should find reuse as it was
	if reuse == nil {
		reuse = sh.m.alloc()
	} else {
		t.cfg.cold.release(reuse)
	}
	c := newConn(key, p, d, reuse, t.cfg.cold)
	c.setID(id, t.cfg.cold)
	return c
}

// retireEnded takes c off the shard's lists if p, sent in direction d,
// finds it over: replaced by a new connection that p opens, or expired (a
// sweep may not have come by yet: expiry is exact at the next packet). It
// returns c's record to retire, or nil if c goes on, and for a new
// connection the evidence of what it took over (evidence.go). sh.mu is
// held.
func (t *Table) retireEnded(sh *shard, c *conn, p *Packet, d Dir) (*[]Record, reuse) {
	why := EndReplaced
	var reused reuse
	if p.Flags&(SYN|ACK|RST) == SYN && c.startsNew(p, int(d)) {
		c.expireTimers(p.TS, p.TS, &t.cfg)
		reused = c.reuseFacts(p, int(d))
		c.supersede(p, int(d), &t.cfg)
	} else if gone, w := c.expired(p.TS, p.TS, &t.cfg); gone {
		why = w
	} else {
		return nil, reused
	}
	r := t.retireBuf(c.record(why, &t.cfg, true))
	sh.untrack(c)
	t.left(sh, c, c.ident(t.cfg.cold))
	t.cfg.logs.drop(c)
	return r, reused
}

// release gives c, which left the table, back to the slab (with change
// lists, once its shard's list no longer holds it). sh.mu is held.
func (t *Table) release(sh *shard, c *conn) {
	t.cfg.logs.drop(c)
	t.cfg.cold.release(c)
	if t.cfg.Changes {
		// The change list may still point to it (changes.freed).
		c.marks &^= mDirty
		sh.chg.freed = append(sh.chg.freed, c)
		return
	}
	sh.m.release(c)
}

// update applies p, sent in direction d, to c (just opened, or not), keeps
// the shard's eviction and change lists in step, and returns the event
// for OnChange, if it wants one: an opening, or a change of state.
// sh.mu is held.
func (t *Table) update(sh *shard, c *conn, p *Packet, d Dir, opened bool) *Event {
	before := [2]State{c.ep[0].state, c.ep[1].state}
	notable := c.apply(p, int(d), &t.cfg)
	if opened {
		sh.track(c)
	} else {
		sh.retrack(c)
	}
	t.changed(sh, c)
	same := before == [2]State{c.ep[0].state, c.ep[1].state}
	if t.cfg.OnChange == nil || !opened && same && !notable {
		return nil // allocated only for an event: a Record is large to zero per packet
	}
	ev := &Event{Kind: EventState, TS: p.TS, Record: c.record(EndNone, &t.cfg, false)}
	switch {
	case opened:
		ev.Kind = EventOpen
	case same:
		ev.Kind = EventNote
	}
	return ev
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
		if l != nil {
			l.event(ev)
		} else {
			t.cfg.OnChange(*ev)
		}
	}
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

// EventKind says what happened to a connection.
type EventKind uint8

// Event kinds.
const (
	_          EventKind = iota
	EventOpen            // a new connection was seen
	EventState           // a packet changed an endpoint's state
	// EventNote: a packet changed no state, but added to the evidence
	// what may start a problem (a resend after a silence, an RST, a zero
	// window opening or closing, a FIN resent in LAST_ACK, a resend left
	// unanswered: evidence.go), for a judge that follows the table.
	EventNote
)

// String returns "open", "state" or "note".
func (k EventKind) String() string {
	switch k {
	case EventOpen:
		return "open"
	case EventState:
		return "state"
	case EventNote:
		return "note"
	}
	return "none"
}

// Event is a change of a connection, with its record right after it.
type Event struct {
	Kind   EventKind
	TS     int64 // capture time of the packet, Unix nanoseconds
	Record Record
}
