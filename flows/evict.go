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

// list is a doubly linked list of connections, oldest first.
type list struct{ head, tail *conn }

func (l *list) push(c *conn) {
	c.prev, c.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
}

func (l *list) remove(c *conn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next = nil, nil
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

// track puts a new connection on its list.
func (sh *shard) track(c *conn) {
	c.isCheap = c.cheap()
	sh.lists[b2i(c.isCheap)].push(c)
}

// retrack moves c to the other list if its class changed, and marks it
// referenced.
func (sh *shard) retrack(c *conn) {
	c.ref = true
	if ch := c.cheap(); ch != c.isCheap {
		sh.lists[b2i(c.isCheap)].remove(c)
		c.isCheap = ch
		sh.lists[b2i(ch)].push(c)
	}
}

// untrack removes c from its list.
func (sh *shard) untrack(c *conn) { sh.lists[b2i(c.isCheap)].remove(c) }

// victim picks the connection to evict: the oldest cheap one, else the
// first established one the CLOCK hand finds unreferenced.
func (sh *shard) victim() *conn {
	if c := sh.lists[1].head; c != nil {
		return c
	}
	l := &sh.lists[0]
	for c := l.head; c != nil; c = l.head {
		if !c.ref {
			return c
		}
		c.ref = false
		l.remove(c)
		l.push(c)
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
