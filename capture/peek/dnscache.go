package peek

import (
	"net/netip"
	"sync"
	"time"
)

// Defaults of the passive DNS cache.
const (
	// DefaultDNSAddrs is how many addresses the cache keeps names for.
	DefaultDNSAddrs = 1 << 17
	// namesPerAddr bounds the names kept per address, most recent first:
	// a CDN address serves many names, and the newest answer is the one
	// a connection that follows most likely asked for.
	namesPerAddr = 4
	// minLifetime is how long an answer names new connections at least,
	// whatever its TTL: a browser keeps what the system resolver told it
	// for a minute (Chromium's host cache does, for answers without a
	// TTL), so its connections may start that long after a short-lived
	// answer.
	minLifetime = int64(time.Minute)
)

// Chain is a name an application asked for, with the CNAME targets that
// led to an address: Chain[0] is the name asked for.
type Chain []string

// dnsName is one answer remembered for an address.
type dnsName struct {
	chain   Chain
	seen    int64 // capture time of the response, Unix ns
	expires int64 // when it stops naming new connections
}

// addrNames are the answers for one address, most recent first.
type addrNames struct {
	names [namesPerAddr]dnsName
	n     uint8
	ref   bool // seen again since the clock hand last passed (second chance)
}

// dnsCache remembers, for each address that DNS responses gave, the names
// that resolved to it. It is bounded: past max addresses, a CLOCK sweep
// drops the addresses not answered again since it last passed. It is safe
// for concurrent use: the capture adds, the views look up.
type dnsCache struct {
	mu      sync.Mutex
	max     int
	addrs   map[[16]byte]int32 // address → index in ents
	ents    []addrNames
	keys    [][16]byte // ents[i]'s address
	hand    int
	evicted uint64 // addresses dropped to make room
	dropped uint64 // names pushed out of an address's list by newer ones
	chains  map[string]Chain
}

func newDNSCache(max int) *dnsCache {
	if max <= 0 {
		max = DefaultDNSAddrs
	}
	return &dnsCache{max: max, addrs: make(map[[16]byte]int32), chains: make(map[string]Chain)}
}

// add remembers the answers of one response seen at capture time ts.
func (c *dnsCache) add(ts int64, answers []answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range answers {
		a := &answers[i]
		life := max(int64(a.ttl)*int64(time.Second), minLifetime)
		c.put(a.addr.As16(), dnsName{chain: c.intern(a.chain), seen: ts, expires: ts + life})
	}
}

// intern shares one copy of each chain among the addresses and
// connections it names. The table is cleared when it grows past the
// cache's bound; chains in use live on.
func (c *dnsCache) intern(chain []string) Chain {
	k := chain[0]
	for _, n := range chain[1:] {
		k += " " + n
	}
	if ch, ok := c.chains[k]; ok {
		return ch
	}
	if len(c.chains) >= c.max {
		clear(c.chains)
	}
	ch := Chain(chain)
	c.chains[k] = ch
	return ch
}

func (c *dnsCache) put(addr [16]byte, n dnsName) {
	i, ok := c.addrs[addr]
	if !ok {
		i = c.slot(addr)
	}
	e := &c.ents[i]
	e.ref = true
	// The same chain again moves to the front, named since its first
	// answer (if that one had not expired) and until the latest expires.
	at := int(e.n)
	for j := 0; j < int(e.n); j++ {
		if old := &e.names[j]; sameChain(old.chain, n.chain) {
			at = j
			if old.expires >= n.seen {
				n.seen = min(n.seen, old.seen)
			}
			n.expires = max(n.expires, old.expires)
			break
		}
	}
	if at == int(e.n) {
		if e.n < namesPerAddr {
			e.n++
		} else {
			at = namesPerAddr - 1
			c.dropped++
		}
	}
	copy(e.names[1:at+1], e.names[:at])
	e.names[0] = n
}

// slot returns a free entry for addr, evicting one if the cache is full.
func (c *dnsCache) slot(addr [16]byte) int32 {
	if len(c.ents) < c.max {
		c.ents = append(c.ents, addrNames{})
		c.keys = append(c.keys, addr)
		i := int32(len(c.ents) - 1)
		c.addrs[addr] = i
		return i
	}
	for c.ents[c.hand].ref {
		c.ents[c.hand].ref = false
		c.hand = (c.hand + 1) % len(c.ents)
	}
	i := int32(c.hand)
	c.hand = (c.hand + 1) % len(c.ents)
	delete(c.addrs, c.keys[i])
	c.evicted++
	c.ents[i] = addrNames{}
	c.keys[i] = addr
	c.addrs[addr] = i
	return i
}

func sameChain(a, b Chain) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// lookup returns the most recent answer for addr that was seen at or
// before to and still named new connections at from (from ≤ to: a window
// of capture time), or nil.
func (c *dnsCache) lookup(addr netip.Addr, from, to int64) Chain {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.addrs[addr.As16()]
	if !ok {
		return nil
	}
	e := &c.ents[i]
	for j := 0; j < int(e.n); j++ {
		if n := &e.names[j]; n.seen <= to && n.expires >= from {
			return n.chain
		}
	}
	return nil
}

// has reports whether name is one of the names (at any place in a chain)
// that addr had at capture time ts.
func (c *dnsCache) has(addr netip.Addr, ts int64, name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.addrs[addr.As16()]
	if !ok {
		return false
	}
	e := &c.ents[i]
	for j := 0; j < int(e.n); j++ {
		if n := &e.names[j]; n.seen <= ts && n.expires >= ts && contains(n.chain, name) {
			return true
		}
	}
	return false
}

// counts returns the evictions, for the summary.
func (c *dnsCache) counts() (addrs int, evicted, dropped uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.addrs), c.evicted, c.dropped
}
