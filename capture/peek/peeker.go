package peek

import (
	"errors"
	"net/netip"
	"sync/atomic"

	"github.com/flowtrack/flowtrack/flows"
)

// Bounds of the first-payload reader.
const (
	// DefaultPending is how many connections may wait at once between
	// their SYN and their first client payload.
	DefaultPending = 1 << 14
	pendingWays    = 4
	// maxReassembling bounds the first payloads being put together from
	// several segments at once; each holds up to maxStream bytes.
	maxReassembling = 256
	// maxStream bounds the stream bytes read from a connection's start:
	// a ClientHello at its bound, framed in records, or a request head.
	maxStream = maxHello + 1024
	maxSpans  = 4  // disjoint pieces of a first payload held out of order
	maxSegs   = 32 // segments after which a first payload is read as it is
)

// Config sets the bounds of a Peeker; zero values take the defaults.
type Config struct {
	Pending  int // connections waiting for their first payload (DefaultPending)
	Conns    int // connections' names kept (DefaultConns)
	DNSAddrs int // addresses the passive DNS cache keeps names for (DefaultDNSAddrs)
}

// Stats counts what a Peeker saw. Fields are read atomically.
type Stats struct {
	SNI, Host     atomic.Uint64 // connections named by a ClientHello, by a request's Host
	ECH           atomic.Uint64 // ClientHellos that offered Encrypted Client Hello
	Unnamed       atomic.Uint64 // first payloads that were neither (or named nothing)
	Malformed     atomic.Uint64 // first payloads or DNS responses that could not be read
	DNSResponses  atomic.Uint64 // DNS responses read
	DNSAnswers    atomic.Uint64 // addresses they gave
	Evicted       atomic.Uint64 // connections dropped while waiting for their first payload (Config.Pending full)
	Unreassembled atomic.Uint64 // first payloads read from their first segment only (no room to gather more)
}

// Peeker reads the first client payload of each connection and the DNS
// responses of one capture, on the capture's goroutine (it is not safe
// for concurrent use; Fork gives another goroutine its own), and names the
// connections in its Store, which may be read from anywhere.
type Peeker struct {
	store *Store
	dns   *dnsCache
	Stats Stats
	stats *Stats // where it counts: its Stats, or its parent's (Fork)

	tags []uint32 // per slot: 0 empty, else the tuple hash's top bits | 1
	// inUse has a bit per set, set while a slot of it is in use. Most
	// segments are of no connection waiting: this small bitmap tells so
	// without a load from tags, which is large.
	inUse   []uint64
	pend    []pending
	mask    uint32   // sets - 1
	maxMask uint32   // the most sets it may grow to, - 1 (Config.Pending)
	live    int      // slots in use
	busy    int      // reassemblies in progress
	reasms  []*reasm // every reassembly made, at most maxReassembling
	free    []uint16 // the ones not in use, as pending.r
	scratch []byte

	settled func(ts int64) bool // nil: name connections at once (SetSettled)
	waiting []concluded         // connections held back until settled
	waitMin int64               // the earliest SYN among them
}

// pending is a connection whose SYN was seen and whose first client
// payload was not yet read.
type pending struct {
	tuple flows.Tuple // client to server
	syn   int64       // capture time of its first SYN
	isn   uint32      // the client's initial sequence number
	// r is 1 + the index in Peeker.reasms of the payload gathered so far,
	// when it spans segments; 0 for none. An index, not a pointer, keeps
	// the table of pending connections (a megabyte) free of pointers: the
	// garbage collector then neither scans it nor faults in its untouched
	// pages.
	r uint16
}

// reasm gathers the start of a client's stream from several segments.
type reasm struct {
	buf   []byte
	spans [maxSpans][2]uint32 // byte ranges held, from the stream's start, sorted, disjoint
	n     int
	cut   uint32 // the stream is known only up to here (a segment cut by the snapshot length); 0: not cut
	segs  int
}

// New returns a Peeker with its Store and passive DNS cache.
func New(cfg Config) *Peeker {
	n := cfg.Pending
	if n <= 0 {
		n = DefaultPending
	}
	most := 1
	for most*pendingWays < n {
		most <<= 1
	}
	dns := newDNSCache(cfg.DNSAddrs)
	k := &Peeker{store: newStore(cfg.Conns, dns), dns: dns, maxMask: uint32(most - 1)}
	k.sized(min(most, firstSets))
	k.stats = &k.Stats
	return k
}

// firstSets is how many sets a Peeker starts with. It grows (grow) up to
// Config.Pending's instead of starting there: few connections wait at
// once between their SYN and first payload (a round trip), and a table of
// a megabyte, touched at random, cost a replay of a few thousand
// connections a page fault for most of its SYNs.
const firstSets = 64

// sized gives k an empty table of this many sets.
func (k *Peeker) sized(sets int) {
	k.tags = make([]uint32, sets*pendingWays)
	k.inUse = make([]uint64, (sets+63)/64)
	k.pend = make([]pending, sets*pendingWays)
	k.mask = uint32(sets - 1)
}

// grow doubles the sets, which must be fewer than maxMask allows, moving
// the connections waiting to their sets in the larger table: the
// connections of one set go to two, so each finds a free way, in the
// order they had. Connections are evicted only from a table of the
// largest size, so that they go as they would from one that started at
// it.
func (k *Peeker) grow() {
	tags, pend := k.tags, k.pend
	k.sized(2 * len(tags) / pendingWays)
	for i, tag := range tags {
		if tag == 0 {
			continue
		}
		base := int(uint32(tupleHash(&pend[i].tuple))&k.mask) * pendingWays
		j := base
		for k.tags[j] != 0 {
			j++
		}
		k.tags[j], k.pend[j] = tag, pend[i]
		k.inUse[base/pendingWays/64] |= 1 << (base / pendingWays % 64)
	}
}

// Fork returns a Peeker for another goroutine that reads a share of the
// same capture, in which every connection's segments come through one of
// them (a fanout group's sockets). It waits for first payloads on its own,
// and names connections in k's Store, with k's DNS cache, counting in k's
// Stats.
func (k *Peeker) Fork() *Peeker {
	f := &Peeker{store: k.store, dns: k.dns, stats: k.stats, maxMask: k.maxMask}
	f.sized(int(k.mask) + 1)
	return f
}

// Release gives back the table of connections waiting for their first
// payload, once the capture has ended (after Flush): its Store, DNS cache
// and Stats stay. A segment read after it waits in a table of one set.
func (k *Peeker) Release() {
	k.sized(1)
	k.maxMask, k.live, k.busy = 0, 0, 0
	k.reasms, k.free, k.scratch, k.waiting = nil, nil, nil, nil
}

// Store returns the names found.
func (k *Peeker) Store() *Store { return k.store }

// DNSCache returns the cache's size and what it dropped to stay bounded:
// addresses, and names pushed out of an address's list by newer ones.
func (k *Peeker) DNSCache() (addrs int, evicted, dropped uint64) { return k.dns.counts() }

// tupleHash mixes the parts of a tuple that vary most; the tuple itself is
// compared on a match.
func tupleHash(t *flows.Tuple) uint64 {
	const m = 0xff51afd7ed558ccd
	h := uint64(t.SrcPort)<<16 | uint64(t.DstPort) | uint64(t.VLAN.Outer)<<32
	h = (h ^ le64(t.Src[8:])) * m
	h = (h ^ le64(t.Dst[8:])) * m
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	return h ^ h>>29
}

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// TCP looks at one TCP segment: a SYN starts waiting for its connection's
// first client payload, and a segment carrying that payload (or part of
// it) is read. payload holds the payload bytes captured (fewer than
// p.PayloadLen when the snapshot length cut it). Any other segment costs
// a hash and one probe of a small table.
func (k *Peeker) TCP(p *flows.Packet, payload []byte) {
	if len(k.waiting) > 0 {
		k.Retry()
	}
	if p.Flags&(flows.SYN|flows.ACK) == flows.SYN {
		k.syn(p, payload)
		return
	}
	if p.PayloadLen == 0 || p.Flags&flows.SYN != 0 {
		return
	}
	if p.Tuple.SrcPort == 53 {
		k.tcpDNS(p, payload)
	}
	if k.live == 0 {
		return // no connection waits for its first payload
	}
	h := tupleHash(&p.Tuple)
	set := uint32(h) & k.mask
	if k.inUse[set/64]&(1<<(set%64)) == 0 {
		return
	}
	tag := uint32(h>>32) | 1
	base := int(set) * pendingWays
	for i := base; i < base+pendingWays; i++ {
		if k.tags[i] == tag && k.pend[i].tuple == p.Tuple {
			k.segment(i, p.Seq-k.pend[i].isn-1, payload, len(payload) < int(p.PayloadLen))
			return
		}
	}
}

// syn notes a connection's SYN. A SYN again with the same ISN is a
// retransmission of the first; with another, a new connection on the
// 4-tuple.
func (k *Peeker) syn(p *flows.Packet, payload []byte) {
	h := tupleHash(&p.Tuple)
	tag := uint32(h>>32) | 1
	base := int(uint32(h)&k.mask) * pendingWays
	slot := -1
	for i := base; i < base+pendingWays; i++ {
		if k.tags[i] == tag && k.pend[i].tuple == p.Tuple {
			if k.pend[i].isn == p.Seq {
				return
			}
			k.drop(i)
			slot = i
			break
		}
	}
	if slot < 0 {
		slot = base
		for i := base; i < base+pendingWays; i++ {
			if k.tags[i] == 0 {
				slot = i
				break
			}
			if k.pend[i].syn < k.pend[slot].syn {
				slot = i
			}
		}
		if k.tags[slot] != 0 && k.mask < k.maxMask {
			k.grow()
			k.syn(p, payload)
			return
		}
		if k.tags[slot] != 0 {
			k.stats.Evicted.Add(1)
			k.giveUp(slot)
		}
	}
	k.tags[slot] = tag
	k.inUse[slot/pendingWays/64] |= 1 << (slot / pendingWays % 64)
	k.live++
	k.pend[slot] = pending{tuple: p.Tuple, syn: p.TS, isn: p.Seq}
	if p.PayloadLen > 0 { // TCP Fast Open: the first payload rides on the SYN
		k.segment(slot, 0, payload, len(payload) < int(p.PayloadLen))
	}
}

// giveUp reads what slot i's connection sent so far as all there is,
// and forgets it.
func (k *Peeker) giveUp(i int) {
	if r := k.reasmOf(&k.pend[i]); r != nil {
		if b := r.prefix(); len(b) > 0 {
			k.read(&k.pend[i], b, true)
		}
	}
	k.drop(i)
}

// Flush reads the first payloads still being gathered as they are, as at
// the end of a capture.
func (k *Peeker) Flush() {
	for i := range k.pend {
		if k.tags[i] != 0 && k.pend[i].r != 0 {
			k.giveUp(i)
		}
	}
	k.nameWaiting(true)
}

// drop forgets slot i.
func (k *Peeker) drop(i int) {
	if r := k.reasmOf(&k.pend[i]); r != nil {
		r.buf, r.n, r.cut, r.segs = r.buf[:0], 0, 0, 0
		k.free = append(k.free, k.pend[i].r)
		k.busy--
	}
	k.tags[i] = 0
	if base := i - i%pendingWays; [pendingWays]uint32(k.tags[base:]) == [pendingWays]uint32{} {
		k.inUse[i/pendingWays/64] &^= 1 << (i / pendingWays % 64)
	}
	k.live--
	k.pend[i] = pending{}
}

// segment reads a segment of slot i's first payload: off is where it
// starts in the client's stream, data its captured bytes, cut whether the
// snapshot length cut it short.
func (k *Peeker) segment(i int, off uint32, data []byte, cut bool) {
	e := &k.pend[i]
	if e.r == 0 && off == 0 {
		if k.read(e, data, cut) {
			k.drop(i)
			return
		}
		if e.r = k.take(); e.r == 0 {
			k.stats.Unreassembled.Add(1)
			k.read(e, data, true)
			k.drop(i)
			return
		}
	}
	if off >= maxStream {
		return // beyond what is read: a later segment, or an old one before the ISN
	}
	if e.r == 0 {
		if e.r = k.take(); e.r == 0 {
			return // no room yet: the segment at the start may find some
		}
	}
	r := k.reasms[e.r-1]
	r.segs++
	end := min(off+uint32(len(data)), maxStream)
	if cut && (r.cut == 0 || end < r.cut) {
		r.cut = end
	}
	if !r.add(off, data[:end-off]) || r.segs > maxSegs {
		k.read(e, r.prefix(), true)
		k.drop(i)
		return
	}
	if b := r.prefix(); len(b) > 0 {
		final := len(b) >= maxStream || (r.cut != 0 && uint32(len(b)) >= r.cut)
		if k.read(e, b, final) {
			k.drop(i)
		}
	}
}

// take returns a reassembly not in use, as pending.r, or 0 when
// maxReassembling are.
func (k *Peeker) take() uint16 {
	if k.busy >= maxReassembling {
		return 0
	}
	k.busy++
	if n := len(k.free); n > 0 {
		r := k.free[n-1]
		k.free = k.free[:n-1]
		return r
	}
	k.reasms = append(k.reasms, &reasm{})
	return uint16(len(k.reasms))
}

// reasmOf returns e's reassembly, or nil.
func (k *Peeker) reasmOf(e *pending) *reasm {
	if e.r == 0 {
		return nil
	}
	return k.reasms[e.r-1]
}

// add copies data, which starts at stream offset off, into the buffer. It
// reports false when the pieces held are too many.
func (r *reasm) add(off uint32, data []byte) bool {
	if len(data) == 0 {
		return true
	}
	end := off + uint32(len(data))
	if int(end) > len(r.buf) {
		r.buf = append(r.buf, make([]byte, int(end)-len(r.buf))...)
	}
	copy(r.buf[off:end], data)
	// Merge [off, end) into the sorted spans.
	s := [2]uint32{off, end}
	var merged [maxSpans + 1][2]uint32
	m := 0
	placed := false
	for _, sp := range r.spans[:r.n] {
		switch {
		case sp[1] < s[0]:
			merged[m] = sp
		case s[1] < sp[0]:
			if !placed {
				merged[m], placed = s, true
				m++
			}
			merged[m] = sp
		default:
			s = [2]uint32{min(s[0], sp[0]), max(s[1], sp[1])}
			continue
		}
		m++
	}
	if !placed {
		merged[m] = s
		m++
	}
	if m > maxSpans {
		return false
	}
	copy(r.spans[:], merged[:m])
	r.n = m
	return true
}

// prefix returns the stream's bytes held from its start without a hole.
func (r *reasm) prefix() []byte {
	if r.n == 0 || r.spans[0][0] != 0 {
		return nil
	}
	return r.buf[:r.spans[0][1]]
}

// read tries to name e's connection from the start of its client stream
// b. final says that no more of the stream will come: what b holds is
// read as it is. It reports whether the connection is done with.
func (k *Peeker) read(e *pending, b []byte, final bool) bool {
	switch {
	case looksTLS(b):
		msg, complete, need, err := helloMessage(b, &k.scratch)
		switch {
		case err != nil && !errors.Is(err, errTooBig):
			k.stats.Malformed.Add(1)
			k.conclude(e, nil, "")
			return true
		case !complete && !final && err == nil && need <= maxStream:
			return false
		}
		h, herr := parseHello(msg)
		if herr != nil {
			k.stats.Malformed.Add(1)
			k.conclude(e, nil, "")
			return true
		}
		k.conclude(e, &h, "")
		return true
	case looksHTTP(b):
		host, complete, err := requestHost(b)
		switch {
		case err != nil:
			k.stats.Malformed.Add(1)
		case !complete && !final && len(b) < maxRequestHead:
			return false
		}
		k.conclude(e, nil, host)
		return true
	}
	k.conclude(e, nil, "")
	return true
}

// conclude names e's connection from what its first payload said (a
// ClientHello h, or a request's host), now or, if the DNS answers sent
// before its SYN may not all have been read yet, once they have been
// (SetSettled).
func (k *Peeker) conclude(e *pending, h *Hello, host string) {
	c := concluded{tuple: e.tuple, syn: e.syn, host: host}
	if h != nil {
		c.hello, c.isHello = *h, true
	}
	if k.settled != nil && len(k.waiting) < maxWaiting && !k.settled(c.syn) {
		if len(k.waiting) == 0 || c.syn < k.waitMin {
			k.waitMin = c.syn
		}
		k.waiting = append(k.waiting, c)
		return
	}
	k.name(&c)
}

// name names c's connection in the store from what its first payload said
// and the DNS answers for its server seen before its SYN, by precedence:
// SNI, Host, DNS. With Encrypted Client Hello, the server_name may be the
// public name of a client-facing server rather than the one asked for, so
// a DNS answer for the server's address wins unless the server_name is
// among its names.
func (k *Peeker) name(c *concluded) {
	var n Name
	server := c.tuple.DstAddrPort().Addr()
	chain := k.dns.lookup(server, c.syn, c.syn)
	switch h := &c.hello; {
	case c.isHello:
		n.ALPN, n.ECH = h.ALPN, h.ECH
		if h.ECH {
			k.stats.ECH.Add(1)
		}
		if h.ServerName != "" {
			n.Server, n.Source = h.ServerName, SourceSNI
		}
		if h.ECH && chain != nil && !k.dns.has(server, c.syn, h.ServerName) {
			n.Server, n.Source = "", SourceNone
		}
	case c.host != "":
		n.Server, n.Source = c.host, SourceHost
	}
	switch {
	case n.Source == SourceSNI:
		k.stats.SNI.Add(1)
	case n.Source == SourceHost:
		k.stats.Host.Add(1)
	default:
		k.stats.Unnamed.Add(1)
	}
	n = n.withDNS(chain)
	if n.Server == "" && n.ALPN == "" && !n.ECH {
		return
	}
	key, _ := c.tuple.Key()
	k.store.put(&key, c.syn, n)
}

// concluded is what a connection's first payload said, to name it by.
type concluded struct {
	tuple   flows.Tuple // client to server
	syn     int64
	hello   Hello
	isHello bool
	host    string
}

// maxWaiting bounds the connections a Peeker holds back until the DNS
// answers before their SYN are read; beyond it, they are named at once.
const maxWaiting = 4096

// SetSettled makes k name a connection only once settled(its SYN's capture
// time) holds: once every other goroutine that reads a share of the same
// capture (Fork) has read past that time. A fanout group reads its sockets
// on goroutines of their own, and a DNS answer comes through another
// socket than the connections it names: read on a goroutine that lags
// behind, the answer before a SYN could come after the connection's first
// payload, which then took the name of an older answer for the address.
// Retry names those whose time has come; Flush names them all.
func (k *Peeker) SetSettled(settled func(ts int64) bool) { k.settled = settled }

// Retry names the connections held back whose SYN's time is settled.
func (k *Peeker) Retry() {
	if len(k.waiting) == 0 || !k.settled(k.waitMin) {
		return
	}
	k.nameWaiting(false)
}

// nameWaiting names the connections held back whose SYN's time is
// settled, or all of them.
func (k *Peeker) nameWaiting(all bool) {
	left := k.waiting[:0]
	for i := range k.waiting {
		c := &k.waiting[i]
		if all || k.settled(c.syn) {
			k.name(c)
			continue
		}
		if len(left) == 0 || c.syn < k.waitMin {
			k.waitMin = c.syn
		}
		left = append(left, *c)
	}
	clear(k.waiting[len(left):])
	k.waiting = left
}

// withDNS completes n with a DNS answer's chain for its server: the name
// when the first payload gave none, the chain when it names n's server.
func (n Name) withDNS(chain Chain) Name {
	switch {
	case chain == nil:
	case n.Server == "":
		n.Server, n.Source, n.Chain = chain[0], SourceDNS, chain
	case contains(chain, n.Server):
		n.Chain = chain
	}
	return n
}

// DNS reads a DNS response (a UDP datagram's payload, or one message of a
// TCP stream without its length prefix) seen at capture time ts; cut says
// the capture kept only its start.
func (k *Peeker) DNS(ts int64, msg []byte, cut bool) {
	answers, err := parseDNS(msg, cut)
	if err != nil {
		if !errors.Is(err, errNotResponse) {
			k.stats.Malformed.Add(1)
		}
		return
	}
	k.stats.DNSResponses.Add(1)
	if len(answers) == 0 {
		return
	}
	k.stats.DNSAnswers.Add(uint64(len(answers)))
	k.dns.add(ts, answers)
}

// tcpDNS reads a DNS response from a segment of a DNS server's TCP
// stream (RFC 7766): a message behind its two-byte length, when the
// segment starts with one. A response spread over segments is not read.
func (k *Peeker) tcpDNS(p *flows.Packet, payload []byte) {
	if len(payload) < 2+12 {
		return
	}
	n := int(payload[0])<<8 | int(payload[1])
	switch {
	case 2+n <= len(payload):
		k.DNS(p.TS, payload[2:2+n], false)
	case 2+n <= int(p.PayloadLen):
		k.DNS(p.TS, payload[2:], true) // the snapshot length cut it
	}
}

// NameAddr returns the most recent DNS answer for addr at capture time ts
// (for views that name an address rather than a connection).
func (k *Peeker) NameAddr(addr netip.Addr, ts int64) Chain { return k.dns.lookup(addr, ts, ts) }
