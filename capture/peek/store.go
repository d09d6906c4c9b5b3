package peek

import (
	"hash/maphash"
	"net/netip"
	"sync"

	"github.com/flowtrack/flowtrack/flows"
)

// Source says where a connection's name came from.
type Source uint8

// Where names come from, in order of precedence: what the client sent in
// the connection itself first, then what DNS said of its server, then
// what reverse DNS says (looked up by the views, not here).
const (
	SourceNone Source = iota
	SourceSNI         // the ClientHello's server_name
	SourceHost        // the HTTP/1 request's Host
	SourceDNS         // a DNS answer for the server's address seen before the connection
	SourceRDNS        // reverse DNS of the server's address
)

var sourceNames = [...]string{"", "sni", "host", "dns", "rdns"}

// String returns "sni", "host", "dns", "rdns", or "" for none.
func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return ""
}

// Name is what a connection is named by.
type Name struct {
	Server string // the name; "" if none is known
	Source Source
	ALPN   string // protocols the ClientHello offered, comma-separated
	ECH    bool   // the ClientHello offered Encrypted Client Hello
	// Chain is the DNS answer's chain of names when the name came from
	// DNS (Chain[0] == Server), or when a DNS answer confirmed the server
	// name; nil otherwise.
	Chain Chain
}

// DefaultConns is how many connections' names the store keeps by default.
const DefaultConns = 1 << 20

// connName is one connection's name: the connection is the incarnation
// of its 4-tuple whose first SYN was seen at syn.
type connName struct {
	key  uint64 // hash of the 4-tuple's flows.Key
	syn  int64
	prev uint32 // index+1 of an older incarnation of the same key; 0: none
	name Name
}

// Store keeps the names of connections, found by their 4-tuple and the
// time of their SYN, so that a port reused by a new connection is named
// afresh. It is bounded: past its size, the oldest names are dropped
// (counted). Lookups may come from any goroutine; only the capture's adds.
type Store struct {
	seed maphash.Seed
	dns  *dnsCache

	mu      sync.RWMutex
	idx     map[uint64]uint32 // key hash → index+1 of its newest entry
	ents    []connName        // a ring, oldest at next once full
	next    int
	max     int
	evicted uint64
}

func newStore(max int, dns *dnsCache) *Store {
	if max <= 0 {
		max = DefaultConns
	}
	return &Store{seed: maphash.MakeSeed(), dns: dns, idx: make(map[uint64]uint32), max: max}
}

func (s *Store) hash(k *flows.Key) uint64 { return maphash.Comparable(s.seed, *k) }

// put names the connection of key k whose first SYN came at syn.
func (s *Store) put(k *flows.Key, syn int64, n Name) {
	h := s.hash(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := connName{key: h, syn: syn, name: n}
	var i int
	if len(s.ents) < s.max {
		s.ents = append(s.ents, e)
		i = len(s.ents) - 1
	} else {
		i = s.next
		s.next = (s.next + 1) % s.max
		old := &s.ents[i]
		if s.idx[old.key] == uint32(i+1) {
			delete(s.idx, old.key)
		}
		s.evicted++
		s.ents[i] = e
	}
	s.ents[i].prev = s.idx[h]
	s.idx[h] = uint32(i + 1)
}

// Lookup returns the name of the connection r describes: the name of the
// newest incarnation of its 4-tuple whose SYN falls within the record's
// life; for a connection without one (picked up mid-stream, or that sent
// nothing the peek could read), the most recent DNS answer for its
// server's address that named new connections during its life.
func (s *Store) Lookup(r *flows.Record) Name {
	first, last := r.FirstSeen.UnixNano(), r.LastSeen.UnixNano()
	h := s.hash(&r.Key)
	s.mu.RLock()
	for i, hops := s.idx[h], 0; i != 0 && hops < 64; hops++ {
		e := &s.ents[i-1]
		if e.key != h {
			break // the slot was reused for another connection
		}
		if e.syn >= first && e.syn <= last {
			n, syn := e.name, e.syn
			s.mu.RUnlock()
			return s.withChain(n, r.Server.Addr(), syn)
		}
		if e.syn < first || e.prev == 0 || s.ents[e.prev-1].syn >= e.syn {
			break
		}
		i = e.prev
	}
	s.mu.RUnlock()
	if !r.Midstream {
		last = first // the name had to be known when the SYN was sent
	}
	if ch := s.dns.lookup(r.Server.Addr(), first, last); ch != nil {
		return Name{Server: ch[0], Source: SourceDNS, Chain: ch}
	}
	return Name{}
}

// withChain completes a name concluded before the DNS answer for its
// server was read: an AF_PACKET fanout group decodes the answer and the
// connection on different goroutines, so the answer, sent before the SYN,
// may be read after the connection's first payload. Looked up again when
// the record is written, the name is what it would have been in capture
// order.
func (s *Store) withChain(n Name, server netip.Addr, syn int64) Name {
	if n.Chain != nil {
		return n
	}
	return n.withDNS(s.dns.lookup(server, syn, syn))
}

// Len returns how many connections' names the store holds, and how many
// it dropped to stay within its bound.
func (s *Store) Len() (n int, evicted uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.idx), s.evicted
}
