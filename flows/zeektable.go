package flows

import (
	"container/heap"
	"sync"
)

// With Config.Zeek, a table keeps Zeek's connection records rather than
// kernel lifetimes: a connection ends when Zeek would forget it (its
// timers, zeeklife.go), or when a packet is a reuse of its 4-tuple
// (TCPSessionAdapter::IsReuse, zeek.go), and the next packet of the 4-tuple
// starts a new one (IPBasedAnalyzer::AnalyzePacket). Every connection is a
// full one (no half-open table), and sweeps leave them alone.
//
// Zeek checks its timers each time a packet arrives, whatever its
// connection, against the network time (the newest packet time): a
// timer's test sees that time, not its deadline, and some reschedule from
// it. So the table keeps, as Zeek's timer manager does, one queue of
// deadlines across all connections, run up to each packet's time before
// the packet is applied (zeekAdvance).

// zeekClock is a Zeek-mode table's timer queue and network time.
type zeekClock struct {
	mu   sync.Mutex // guards the following
	now  int64      // network_time: the newest packet time (or Tick's)
	wake zeekWakes
	due  []zeekWake // scratch for zeekAdvance

	// lives holds, per shard, its connections' zeekLife, under the
	// shard's lock: a conn has no room for it, and needs none without
	// Config.Zeek.
	lives []map[*conn]*zeekLife
}

func newZeekClock(shards int) *zeekClock {
	z := &zeekClock{lives: make([]map[*conn]*zeekLife, shards)}
	for i := range z.lives {
		z.lives[i] = map[*conn]*zeekLife{}
	}
	return z
}

// take hands over shard i's lives, for a flush, and empties the queue of
// the connections it takes. The shard's lock is held.
func (z *zeekClock) take(i int) map[*conn]*zeekLife {
	m := z.lives[i]
	z.lives[i] = map[*conn]*zeekLife{}
	z.mu.Lock()
	z.wake = z.wake[:0] // stale once the connections are gone
	z.mu.Unlock()
	return m
}

// lives returns the zeekLife map of the shard of hash.
func (t *Table) lives(hash uint64) map[*conn]*zeekLife { return t.zk.lives[uint32(hash)&t.mask] }

// zeekWake is a connection's earliest deadline, as it was when queued: a
// later change queues another, and one that no longer matches its
// connection's (zeekLife.wake, or the connection's ID) is dropped.
type zeekWake struct {
	at   int64
	id   uint64
	hash uint64
	key  Key
}

type zeekWakes []zeekWake

func (w zeekWakes) Len() int           { return len(w) }
func (w zeekWakes) Less(i, j int) bool { return w[i].at < w[j].at }
func (w zeekWakes) Swap(i, j int)      { w[i], w[j] = w[j], w[i] }
func (w *zeekWakes) Push(x any)        { *w = append(*w, x.(zeekWake)) }
func (w *zeekWakes) Pop() any {
	old := *w
	x := old[len(old)-1]
	*w = old[:len(old)-1]
	return x
}

// schedule queues c's earliest deadline if it changed. sh.mu is held;
// the queue's lock is taken inside it (never the other way round).
func (t *Table) schedule(c *conn, l *zeekLife) {
	at, _ := l.next()
	if at == l.wake {
		return
	}
	l.wake = at
	if at == 0 {
		return
	}
	z := t.zk
	z.mu.Lock()
	key := c.fullKey(t.cfg.cold)
	heap.Push(&z.wake, zeekWake{at: at, id: c.ident(t.cfg.cold), hash: key.hash64(), key: key})
	z.mu.Unlock()
}

// zeekAdvance moves the network time to ts, if later, and runs the timers
// due by then, retiring the connections they end, in the order they end.
func (t *Table) zeekAdvance(ts int64) {
	z := t.zk
	z.mu.Lock()
	z.now = max(z.now, ts)
	now := z.now
	due := z.due[:0]
	for len(z.wake) > 0 && z.wake[0].at <= now {
		due = append(due, heap.Pop(&z.wake).(zeekWake))
	}
	z.due = due
	z.mu.Unlock()
	if len(due) == 0 {
		return
	}
	var recs []Record
	for i := range due {
		if r, ok := t.zeekFire(&due[i], now); ok {
			recs = append(recs, r)
		}
	}
	t.emit(recs)
}

// zeekFire runs the timers of the connection w names, if w is still its
// earliest deadline, and returns its record if they ended it.
func (t *Table) zeekFire(w *zeekWake, now int64) (Record, bool) {
	sh := &t.shards[uint32(w.hash)&t.mask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.m.get(&w.key, w.hash)
	if c == nil || c.ident(t.cfg.cold) != w.id {
		return Record{}, false
	}
	l := t.lives(w.hash)[c]
	if l == nil || l.wake != w.at {
		return Record{}, false
	}
	z := c.zeekFull(t.cfg.cold)
	gone, why := l.fire(&z, now)
	c.setZeek(&z, t.cfg.cold)
	if !gone {
		l.wake = 0 // w was taken off the queue
		t.schedule(c, l)
		return Record{}, false
	}
	r := t.zeekRetire(sh, c, why)
	sh.m.delConn(c)
	t.release(sh, c)
	return r, true
}

// zeekRetire takes c off the shard's lists and returns its record, with
// Zeek's fields. sh.mu is held; the caller removes c from sh.m.
func (t *Table) zeekRetire(sh *shard, c *conn, why EndReason) Record {
	c.expireTimers(c.last, c.last, &t.cfg)
	r := c.record(why, &t.cfg, true)
	t.zeekDetach(c, &r)
	sh.untrack(c)
	t.left(sh, c)
	return r
}

// zeekDetach adds c's Zeek fields to its record r and forgets them. The
// lock of c's shard is held.
func (t *Table) zeekDetach(c *conn, r *Record) {
	k := c.fullKey(t.cfg.cold)
	lives := t.lives(k.hash64())
	if l := lives[c]; l != nil {
		r.zx = l.extra(c)
		delete(lives, c)
	}
}

// applyZeekPacket is Apply for a Zeek-mode table, after the clocks: Zeek
// runs its timers due by the packet's time first (dispatch_packet), and
// keys connections by addresses and ports alone (its default conn_key,
// fivetuple: no VLAN).
func (t *Table) applyZeekPacket(p *Packet) {
	t.zeekAdvance(p.TS)
	if t.sweepDue(p.TS) {
		t.Sweep()
	}
	q := *p
	q.Tuple.VLAN = VLAN{}
	var key Key
	d := q.Tuple.fillKey(&key)
	hash := key.hash64()
	sh := &t.shards[uint32(hash)&t.mask]
	sh.mu.Lock()
	t.applyZeek(sh, sh.m.get(&key, hash), &q, &key, d, hash)
}

// applyZeek is apply for a Zeek-mode table: packet p of key (whose hash is
// given), sent in direction d, to c, the connection of key if there is one
// (IPBasedAnalyzer::AnalyzePacket). sh.mu is held, and released here.
func (t *Table) applyZeek(sh *shard, c *conn, p *Packet, key *Key, d Dir, hash uint64) {
	var retire, spill *[]Record
	if c != nil && c.zeekReuse(p, d, t.cfg.cold) {
		retire = t.retireBuf(t.zeekRetire(sh, c, EndReplaced))
		sh.m.del(key, hash)
		t.release(sh, c)
		c = nil
	}
	opened := c == nil
	if opened {
		var reuse *conn
		spill, reuse = t.makeRoom(sh, p.TS)
		c = t.open(sh, p, key, d, nil, reuse)
		sh.m.put(c, hash) // absent, or taken out above
		t.zk.mu.Lock()
		now := t.zk.now
		t.zk.mu.Unlock()
		t.lives(hash)[c] = newZeekLife(p.TS, now)
	} else {
		c.expireTimers(p.TS, p.TS, &t.cfg) // the kernel states, for the JSON
	}
	l := t.lives(hash)[c]
	pre := c.zeekFull(t.cfg.cold)
	s := 0
	if d != c.firstDir {
		s = 1
	}
	ev := t.update(sh, c, p, d, opened)
	post := c.zeekFull(t.cfg.cold)
	l.after(&pre, &post, p, s)
	c.setZeek(&post, t.cfg.cold)
	t.schedule(c, l)
	sh.mu.Unlock()
	t.finish(nil, spill, nil)
	t.finish(nil, retire, ev)
}
