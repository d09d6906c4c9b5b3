package flows

// Eviction keeps each shard under its share of Config.MaxConns. A shard
// keeps its connections on two intrusive lists: the cheap ones (handshakes
// that got no answer, and connections whose both ends are closed or in
// TIME_WAIT), and the rest. When a new connection arrives at a full shard,
// the oldest cheap one goes first; only when there is none does an
// established one go, chosen by the CLOCK algorithm (a connection that saw
// a packet since the hand last passed gets a second chance). Each
// eviction is O(1) amortised, and a packet costs one store (the reference
// bit) unless it moves its connection to the other list.

//
// A shard without a bound keeps no lists, and its slab no links: a conn
// does not hold them (slab.links).

// list is a doubly linked list of a shard's connections, oldest first, by
// their indices in its slab (0: none), linked through the slab's links.
type list struct{ head, tail uint32 }

func (l *list) push(sl *slab, c *conn) {
	self := sl.indexOf(c)
	*sl.link(self) = links{prev: l.tail}
	if l.tail != 0 {
		sl.link(l.tail).next = self
	} else {
		l.head = self
	}
	l.tail = self
}

func (l *list) remove(sl *slab, c *conn) {
	ln := sl.link(sl.indexOf(c))
	if ln.prev != 0 {
		sl.link(ln.prev).next = ln.next
	} else {
		l.head = ln.next
	}
	if ln.next != 0 {
		sl.link(ln.next).prev = ln.prev
	} else {
		l.tail = ln.prev
	}
	*ln = links{}
}

// cheap reports whether c is among the first to go: an unanswered
// handshake, or both ends closed or in TIME_WAIT.
func (c *conn) cheap() bool {
	a, b := c.ep[0].state, c.ep[1].state
	done := func(s State) bool { return s == StateClosed || s == StateTimeWait }
	if done(a) && done(b) {
		return true
	}
	cl, sv := c.ep[c.client].state, c.ep[1-c.client].state
	return cl == StateSynSent && sv == StateClosed
}

// track puts a new connection on its list, in a shard with a bound.
func (sh *shard) track(c *conn) {
	if sh.max == 0 {
		return
	}
	c.mark(mCheap, c.cheap())
	sh.lists[b2i(c.is(mCheap))].push(sh.m.slab, c)
}

// retrack moves c to the other list if its class changed, and marks it
// referenced.
func (sh *shard) retrack(c *conn) {
	if sh.max == 0 {
		return
	}
	c.marks |= mRef
	if ch := c.cheap(); ch != c.is(mCheap) {
		sh.reclass(c, ch)
	}
}

// reclass moves c to the list of its class, cheap or not.
func (sh *shard) reclass(c *conn, cheap bool) {
	sh.lists[b2i(c.is(mCheap))].remove(sh.m.slab, c)
	c.mark(mCheap, cheap)
	sh.lists[b2i(cheap)].push(sh.m.slab, c)
}

// retrackLive is retrack for a connection whose endpoints are both
// ESTABLISHED (the fast path's), which is never cheap: it tests no state.
func (sh *shard) retrackLive(c *conn) {
	if sh.max == 0 {
		return
	}
	if c.marks |= mRef; c.marks&mCheap != 0 {
		sh.reclass(c, false)
	}
}

// untrack removes c from its list.
func (sh *shard) untrack(c *conn) {
	if sh.max > 0 {
		sh.lists[b2i(c.is(mCheap))].remove(sh.m.slab, c)
	}
}

// victim picks the connection to evict: the oldest cheap one, else the
// first established one the CLOCK hand finds unreferenced.
func (sh *shard) victim() *conn {
	sl := sh.m.slab
	if i := sh.lists[1].head; i != 0 {
		return sl.at(i)
	}
	l := &sh.lists[0]
	for i := l.head; i != 0; i = l.head {
		c := sl.at(i)
		if !c.is(mRef) {
			return c
		}
		c.marks &^= mRef
		l.remove(sl, c)
		l.push(sl, c)
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// evictSample is how many half-open connections an eviction compares.
const evictSample = 16

// makeRoom evicts a connection if sh is full, for a new one. It returns
// the record to retire and, for a full connection, its memory for reuse,
// which the caller uses or releases. sh.mu is held.
func (t *Table) makeRoom(sh *shard, now int64) (*[]Record, *conn) {
	if sh.max > 0 && sh.m.len()+sh.half.len() >= sh.max {
		return t.evict(sh, now)
	}
	return nil, nil
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
		t.leftHalf(sh, &e.h)
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
	r := t.retireBuf(v.record(EndEvicted, &t.cfg, true))
	if t.zk != nil {
		t.zeekDetach(v, &(*r)[0])
	}
	sh.untrack(v)
	t.left(sh, v)
	sh.m.delConn(v)
	t.cfg.logs.drop(v)
	t.evicted.Add(1)
	return r, v
}
