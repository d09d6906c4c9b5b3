package sockets

import (
	"net/netip"
	"sync"
	"time"
)

// MaxOwners bounds the sockets an eBPF source remembers the owners of
// (about 200 bytes each): past it, the socket whose record was retired
// longest ago is forgotten first, then the one closed longest ago, then
// the oldest.
const MaxOwners = 1 << 20

// Event kinds, as bpf/tracer.bpf.c numbers them.
const (
	kindConnect   = 1
	kindAccept    = 2
	kindListen    = 3
	kindClose     = 4
	kindUnlisten  = 5
	kindConnected = 6 // the tracepoint's connect: reported when it leaves SYN_SENT
	kindPassive   = 7 // the tracepoint's accept: a connection to a listener ESTABLISHED, no process
)

// sockEvent is one decoded event.
type sockEvent struct {
	kind   uint8
	key    sockKey // local, remote
	netns  uint64
	at     time.Time // wall clock
	proc   *Process  // nil for close events
	tid    int32
	oldTCP uint8 // for closes: the Linux TCP state left
}

// traced is what the events said about one socket.
type traced struct {
	o       Owner
	seq     uint64 // which incarnation of the entry the queues refer to
	closed  time.Time
	retired time.Time
	next    *traced // the same 4-tuple in another network namespace
}

type queued struct {
	key   sockKey
	netns uint64
	seq   uint64
	at    time.Time
}

// ownerTable keeps the owners the events named, keyed by network
// namespace and 4-tuple, and the listening sockets. It outlives the
// sockets: a closed socket's owner is kept until its connection's record
// has been retired (and Grace has passed), or Keep after the close if no
// record ever retires it, and at most MaxOwners sockets are kept. It is
// safe for concurrent use.
type ownerTable struct {
	selfNS uint64
	max    int
	keep   time.Duration // how long a closed socket's owner is kept when no record retires it
	grace  time.Duration // how long after its record retired

	mu        sync.RWMutex // guards the following
	socks     map[sockKey]*traced
	listeners map[listenAddr]*traced
	n         int      // entries in socks, all namespaces
	seq       uint64   // last seq given
	created   []queued // oldest first
	closedQ   []queued
	retiredQ  []queued
	evicted   uint64
}

// listenAddr is a listening socket's local address and port; listeners
// of several namespaces with the same address are chained.
type listenAddr struct {
	addr [16]byte
	port uint16
}

func newOwnerTable(selfNS uint64, max int, keep, grace time.Duration) *ownerTable {
	return &ownerTable{
		selfNS: selfNS, max: max, keep: keep, grace: grace,
		socks:     make(map[sockKey]*traced),
		listeners: make(map[listenAddr]*traced),
	}
}

// apply records one event.
func (t *ownerTable) apply(ev *sockEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch ev.kind {
	case kindConnect, kindConnected, kindAccept:
		via := ViaConnect
		if ev.kind == kindAccept {
			via = ViaAccept
			// The tracepoint credited the connection to its listener
			// when it was established: the accept names the process
			// that took it, and the entry (with its close, should the
			// peer have reset it in the accept queue) stays.
			if e := t.find(ev.key, ev.netns); e != nil && e.o.Via == ViaListener && e.retired.IsZero() {
				e.o = ownerOf(ev, via)
				return
			}
		}
		t.seq++
		e := &traced{o: ownerOf(ev, via), seq: t.seq}
		t.put(ev.key, ev.netns, e)
		t.created = append(t.created, queued{ev.key, ev.netns, e.seq, ev.at})
		t.bound()
	case kindPassive:
		l := t.listenerOf(ev.key, ev.netns)
		if l == nil {
			return
		}
		t.seq++
		e := &traced{o: l.o, seq: t.seq}
		e.o.Seen, e.o.Kernel = ev.at, false
		t.put(ev.key, ev.netns, e)
		t.created = append(t.created, queued{ev.key, ev.netns, e.seq, ev.at})
		t.bound()
	case kindClose:
		if e := t.find(ev.key, ev.netns); e != nil && e.closed.IsZero() {
			e.closed = ev.at
			t.closedQ = append(t.closedQ, queued{ev.key, ev.netns, e.seq, ev.at})
		}
	case kindListen:
		la := listenAddr{ev.key.local, ev.key.lport}
		e := &traced{o: ownerOf(ev, ViaListener)}
		t.unlisten(la, ev.netns)
		if len(t.listeners) < t.max {
			e.next = t.listeners[la]
			t.listeners[la] = e
		}
	case kindUnlisten:
		t.unlisten(listenAddr{ev.key.local, ev.key.lport}, ev.netns)
	}
}

func ownerOf(ev *sockEvent, via Via) Owner {
	o := Owner{Netns: ev.netns, Via: via, TID: int(ev.tid), Seen: ev.at}
	if p := ev.proc; p != nil {
		o.PID, o.Comm, o.UID, o.Proc = p.PID, p.Comm, p.UID, p
	}
	return o
}

// put makes e the entry of key in netns, replacing any (a 4-tuple reused).
func (t *ownerTable) put(key sockKey, netns uint64, e *traced) {
	head := t.socks[key]
	for p := &head; *p != nil; p = &(*p).next {
		if (*p).o.Netns == netns {
			e.next = (*p).next
			*p = e
			t.socks[key] = head
			return
		}
	}
	e.next = head
	t.socks[key] = e
	t.n++
}

func (t *ownerTable) find(key sockKey, netns uint64) *traced {
	for e := t.socks[key]; e != nil; e = e.next {
		if e.o.Netns == netns {
			return e
		}
	}
	return nil
}

// remove drops key's entry in netns if it is still incarnation seq.
func (t *ownerTable) remove(q queued) bool {
	head := t.socks[q.key]
	for p := &head; *p != nil; p = &(*p).next {
		if (*p).o.Netns == q.netns {
			if (*p).seq != q.seq {
				return false
			}
			*p = (*p).next
			if head == nil {
				delete(t.socks, q.key)
			} else {
				t.socks[q.key] = head
			}
			t.n--
			return true
		}
	}
	return false
}

func (t *ownerTable) unlisten(la listenAddr, netns uint64) {
	head := t.listeners[la]
	for p := &head; *p != nil; p = &(*p).next {
		if (*p).o.Netns == netns {
			*p = (*p).next
			break
		}
	}
	if head == nil {
		delete(t.listeners, la)
	} else {
		t.listeners[la] = head
	}
}

// seedListener adds a listener the socket table found, unless one at
// that address in that namespace is known already.
func (t *ownerTable) seedListener(addr netip.AddrPort, o Owner) {
	la := listenAddr{addr.Addr().As16(), addr.Port()}
	t.mu.Lock()
	defer t.mu.Unlock()
	for e := t.listeners[la]; e != nil; e = e.next {
		if e.o.Netns == o.Netns {
			return
		}
	}
	if len(t.listeners) < t.max {
		o.Kernel, o.Via = false, ViaListener
		t.listeners[la] = &traced{o: o, next: t.listeners[la]}
	}
}

// bound forgets entries past max: retired ones first, then closed ones,
// then the oldest (t.mu held).
func (t *ownerTable) bound() {
	for t.n > t.max {
		var q *[]queued
		switch {
		case len(t.retiredQ) > 0:
			q = &t.retiredQ
		case len(t.closedQ) > 0:
			q = &t.closedQ
		case len(t.created) > 0:
			q = &t.created
		default:
			return
		}
		if t.remove((*q)[0]) {
			t.evicted++
		}
		*q = (*q)[1:]
	}
	// The queues hold stale items for replaced and removed entries:
	// rebuild them when they are mostly that.
	if len(t.created) > 2*t.n+1024 {
		t.created = t.compact(t.created)
	}
}

// compact keeps the items of q whose entries are still there (t.mu held).
func (t *ownerTable) compact(q []queued) []queued {
	out := make([]queued, 0, t.n)
	for _, it := range q {
		if e := t.find(it.key, it.netns); e != nil && e.seq == it.seq {
			out = append(out, it)
		}
	}
	return out
}

// retire notes that the record of the connection between a and b was
// retired from the flow table and written out: the owners of both ends are
// forgotten Grace later.
func (t *ownerTable) retire(a, b netip.AddrPort, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range [2]sockKey{keyOf(a, b), keyOf(b, a)} {
		for e := t.socks[k]; e != nil; e = e.next {
			if e.retired.IsZero() {
				e.retired = now
				t.retiredQ = append(t.retiredQ, queued{k, e.o.Netns, e.seq, now})
			}
		}
	}
}

// sweep forgets what has expired by now: owners Grace after their record
// was retired, and Keep after their socket closed.
func (t *ownerTable) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.retiredQ) > 0 && now.Sub(t.retiredQ[0].at) > t.grace {
		t.remove(t.retiredQ[0])
		t.retiredQ = t.retiredQ[1:]
	}
	for len(t.closedQ) > 0 && now.Sub(t.closedQ[0].at) > t.keep {
		t.remove(t.closedQ[0])
		t.closedQ = t.closedQ[1:]
	}
	if len(t.closedQ) > 2*t.n+1024 {
		t.closedQ = t.compact(t.closedQ)
	}
	if len(t.retiredQ) > 2*t.n+1024 {
		t.retiredQ = t.compact(t.retiredQ)
	}
}

// lookup returns the owner of the socket key, preferring flowtrack's own
// namespace, else the lowest-numbered, as the socket table does; else, for
// a socket not accepted yet, the owner of the listener it will be accepted
// from (Via ViaListener).
func (t *ownerTable) lookup(k sockKey) (Owner, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if e := t.best(t.socks[k]); e != nil {
		return e.o, true
	}
	la := listenAddr{k.local, k.lport}
	e := t.best(t.listeners[la])
	if e == nil && isV4Mapped(k.local) {
		la.addr = v4mapped([]byte{0, 0, 0, 0})
		e = t.best(t.listeners[la])
	}
	if e == nil {
		la.addr = [16]byte{}
		e = t.best(t.listeners[la])
	}
	if e == nil {
		return Owner{}, false
	}
	return e.o, true
}

// listenerOf finds the listener in netns that a connection to key's local
// end was accepted from: one bound to its address, else to the wildcard.
func (t *ownerTable) listenerOf(k sockKey, netns uint64) *traced {
	la := listenAddr{k.local, k.lport}
	for _, a := range [...][16]byte{k.local, v4mapped([]byte{0, 0, 0, 0}), {}} {
		la.addr = a
		for e := t.listeners[la]; e != nil; e = e.next {
			if e.o.Netns == netns {
				return e
			}
		}
	}
	return nil
}

func (t *ownerTable) best(e *traced) *traced {
	var b *traced
	for ; e != nil; e = e.next {
		switch {
		case e.o.Netns == t.selfNS:
			return e
		case b == nil || e.o.Netns < b.o.Netns:
			b = e
		}
	}
	return b
}

// listening returns every listener the events reported.
func (t *ownerTable) listening(out []Listener) []Listener {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for la, e := range t.listeners {
		for ; e != nil; e = e.next {
			out = append(out, Listener{Addr: addrPortOf(la.addr, la.port), Owner: e.o})
		}
	}
	return out
}

// size returns how many sockets' owners are kept, and how many were
// forgotten to stay within the bound.
func (t *ownerTable) size() (n int, evicted uint64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.n, t.evicted
}

// addrPortOf turns a 16-byte address (IPv4-mapped for IPv4) back into an
// AddrPort, IPv4 unmapped.
func addrPortOf(a [16]byte, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(a).Unmap(), port)
}
