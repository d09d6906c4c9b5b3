package flows

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
	// Each sweep looks at a slice of the shards, so that a large table
	// costs a fraction of itself per second of capture time; a
	// connection's expiry is seen at most sweepSlices sweeps late.
	n := max(1, len(t.shards)/sweepSlices)
	if t.Len() <= sweepAllBelow {
		n = len(t.shards) // a small table is swept whole: expiry stays within a second
	}
	from := t.sweepNext
	t.sweepNext = (from + n) % len(t.shards)
	s := sweeper{t: t, now: now, seen: seen}
	for i := from; i < from+n; i++ {
		s.shard(&t.shards[i%len(t.shards)]) // a sweep's slice may wrap around
	}
	SortByStart(s.recs)
	t.emit(s.recs)
}

// sweepSlices is how many sweeps it takes to look at every shard once, in
// a table of more than sweepAllBelow connections.
const (
	sweepSlices   = 8
	sweepAllBelow = 1 << 16
)

// sweeper is one sweep: it removes the expired connections of the shards
// it is shown and collects their records. Its lists are reused from one
// shard to the next.
type sweeper struct {
	t         *Table
	now, seen int64
	recs      []Record
	done      []*conn // full connections to remove
	gone      []Key   // half-open connections to remove
}

// shard sweeps one shard: its full connections, its half-open ones and
// its limbo.
func (s *sweeper) shard(sh *shard) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s.full(sh)
	s.half(sh)
	// An evicted handshake stays in limbo no longer than it would have
	// stayed in the table.
	sh.limbo.each(func(e *halfSlot) bool {
		if !e.h.mayExpire(s.now, &s.t.cfg) {
			return false
		}
		c := e.h.conn(e.key, &s.t.cfg, &sh.tmp)
		if ok, _ := c.expired(s.now, s.seen, &s.t.cfg); ok {
			s.recs = append(s.recs, c.record(EndEvicted, &s.t.cfg, true))
			return true
		}
		return false
	})
}

// full removes the shard's expired full connections. sh.mu is held.
func (s *sweeper) full(sh *shard) {
	t := s.t
	if t.zk != nil {
		return // Zeek's timers end them (zeektable.go)
	}
	s.done = s.done[:0]
	sh.eachConn(func(c *conn) {
		before := [2]State{c.ep[0].state, c.ep[1].state}
		if ok, why := c.expired(s.now, s.seen, &t.cfg); ok {
			s.recs = append(s.recs, c.record(why, &t.cfg, true))
			s.done = append(s.done, c)
		} else if before != [2]State{c.ep[0].state, c.ep[1].state} {
			t.changed(sh, c) // a timer changed a state
		}
	})
	for _, c := range s.done { // deleting moves entries: not while walking them
		sh.untrack(c)
		sh.m.delConn(c)
		t.left(sh, c)
		t.release(sh, c)
	}
	clear(s.done)
}

// half removes the shard's expired half-open connections. sh.mu is held.
func (s *sweeper) half(sh *shard) {
	t := s.t
	s.gone = s.gone[:0]
	sh.half.each(func(e *halfSlot) {
		if !e.h.mayExpire(s.now, &t.cfg) {
			return
		}
		c := e.h.conn(e.key, &t.cfg, &sh.tmp)
		if ok, why := c.expired(s.now, s.seen, &t.cfg); ok {
			s.recs = append(s.recs, c.record(why, &t.cfg, true))
			s.gone = append(s.gone, e.key)
			t.leftHalf(sh, &e.h)
		}
	})
	for i := range s.gone { // deleting moves entries: not while walking them
		sh.half.del(&s.gone[i], s.gone[i].hash64())
	}
}

// emit hands swept records to OnRetire.
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
