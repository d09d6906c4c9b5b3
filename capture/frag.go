package capture

import (
	"math/bits"

	"github.com/flowtrack/flowtrack/flows"
)

// The fragment table holds IP fragments until their datagram is complete.
// It keeps no payload: only the datagram's first fragHeadSize bytes (enough
// for tunnel, IP and TCP headers), which byte ranges have arrived, and the
// summed frame lengths. It is bounded in datagrams and in capture time.
const (
	fragMaxDatagrams = 1024
	fragHeadSize     = 256
	fragMaxSpans     = 16              // disjoint byte ranges per datagram before it is given up
	fragTimeout      = 30 * 1000000000 // ns of capture time a datagram may take to complete
	maxDatagram      = 65535           // largest fragmentable part an IP datagram can have
	fragNone         = int32(-1)
)

// fragKey identifies the datagram a fragment belongs to.
type fragKey struct {
	src, dst [16]byte // IPv4 as v4-mapped
	id       uint32
	proto    uint8
	v6       bool
	vlan     flows.VLAN
}

type span struct{ lo, hi int32 }

type fragEntry struct {
	key        fragKey
	first      int64 // capture time of its first fragment, ns
	prev, next int32 // age list, oldest first
	total      int32 // length of the fragmentable part, -1 until the last fragment came
	hdr        int32 // length of the datagram's header (see fragTable.add), from its first fragment
	frames     uint32
	frameSum   uint64
	cut        bool // the snapshot length cut one of its fragments short
	nspan      int
	spans      [fragMaxSpans]span        // claimed byte ranges received, sorted, disjoint, not adjacent
	have       [fragHeadSize / 64]uint64 // which bytes of head were captured
	head       [fragHeadSize]byte
}

// valid returns how many bytes at the start of head were captured.
func (e *fragEntry) valid() int {
	n := 0
	for _, w := range e.have {
		if w == ^uint64(0) {
			n += 64
			continue
		}
		return n + bits.TrailingZeros64(^w)
	}
	return n
}

// addSpan records bytes [lo, hi) as received, or reports false if the
// datagram has come in too many pieces to track.
func (e *fragEntry) addSpan(lo, hi int32) bool {
	var out [fragMaxSpans + 1]span
	n, placed := 0, false
	for _, s := range e.spans[:e.nspan] {
		switch {
		case s.hi < lo:
			out[n] = s
			n++
		case hi < s.lo:
			if !placed {
				out[n] = span{lo, hi}
				n++
				placed = true
			}
			out[n] = s
			n++
		default: // overlapping or adjacent: merge
			lo, hi = min(lo, s.lo), max(hi, s.hi)
		}
	}
	if !placed {
		out[n] = span{lo, hi}
		n++
	}
	if n > fragMaxSpans {
		return false
	}
	copy(e.spans[:], out[:n])
	e.nspan = n
	return true
}

func (e *fragEntry) complete() bool {
	if e.total < 0 {
		return false
	}
	if e.total == 0 {
		return e.nspan == 0
	}
	return e.nspan == 1 && e.spans[0].lo == 0 && e.spans[0].hi == e.total
}

type fragTable struct {
	entries        []fragEntry // grown as needed up to fragMaxDatagrams
	index          map[fragKey]int32
	free           []int32
	oldest, newest int32
}

func (t *fragTable) init() {
	t.entries = make([]fragEntry, 0, 16)
	t.index = make(map[fragKey]int32, 16)
	t.oldest, t.newest = fragNone, fragNone
}

// alloc returns a free entry: a recycled one, a new one while the table is
// below its bound, or the oldest datagram's, whose fragments it adds to
// dropped.
func (t *fragTable) alloc(dropped *uint64) int32 {
	if len(t.free) == 0 {
		if len(t.entries) < fragMaxDatagrams {
			t.entries = append(t.entries, fragEntry{})
			return int32(len(t.entries) - 1)
		}
		*dropped += t.remove(t.oldest)
	}
	i := t.free[len(t.free)-1]
	t.free = t.free[:len(t.free)-1]
	return i
}

// add records a fragment: n bytes of the datagram's fragmentable part at
// byte offset off, more if further fragments follow, data its captured
// bytes, cut whether the snapshot length cut them short, hdr the length of
// the datagram's header as this fragment has it (IPv4: its IP header;
// IPv6: its IPv6 header and the extension headers before the Fragment
// header), which the first fragment's gives the datagram. It returns the
// datagram's entry, whether the datagram is now complete (the caller then
// reads and removes the entry), and how many fragments were dropped from
// the table on the way (expired or evicted datagrams, or this one if it
// contradicts itself).
func (t *fragTable) add(k *fragKey, ts int64, off, n, hdr int, more bool, data []byte, cut bool, frameLen uint64) (i int32, complete bool, dropped uint64) {
	if t.entries == nil {
		t.init()
	}
	for t.oldest != fragNone && ts-t.entries[t.oldest].first > fragTimeout {
		dropped += t.remove(t.oldest)
	}
	i, ok := t.index[*k]
	if !ok {
		i = t.alloc(&dropped)
		e := &t.entries[i]
		e.key, e.first, e.total, e.hdr, e.frames, e.frameSum, e.cut, e.nspan = *k, ts, -1, 0, 0, 0, false, 0
		e.have = [fragHeadSize / 64]uint64{}
		e.prev, e.next = t.newest, fragNone
		if t.newest != fragNone {
			t.entries[t.newest].next = i
		} else {
			t.oldest = i
		}
		t.newest = i
		t.index[*k] = i
	}
	e := &t.entries[i]
	e.frames++
	e.frameSum += frameLen
	e.cut = e.cut || cut
	if off == 0 {
		e.hdr = int32(hdr)
	}
	end := int32(off + n)
	if !more {
		if e.total >= 0 && e.total != end {
			return i, false, dropped + t.remove(i) // two different ends
		}
		e.total = end
	}
	if n > 0 && !e.addSpan(int32(off), end) {
		return i, false, dropped + t.remove(i)
	}
	if off < fragHeadSize {
		c := data
		if len(c) > n {
			c = c[:n]
		}
		hi := min(off+len(c), fragHeadSize)
		copy(e.head[off:hi], c)
		for b := off; b < hi; {
			w, lo := b/64, b%64
			n := min(hi-b, 64-lo)
			e.have[w] |= (^uint64(0) >> (64 - n)) << lo
			b += n
		}
	}
	return i, e.complete(), dropped
}

// remove frees entry i and returns how many fragments it held.
func (t *fragTable) remove(i int32) uint64 {
	e := &t.entries[i]
	if e.prev != fragNone {
		t.entries[e.prev].next = e.next
	} else {
		t.oldest = e.next
	}
	if e.next != fragNone {
		t.entries[e.next].prev = e.prev
	} else {
		t.newest = e.prev
	}
	delete(t.index, e.key)
	t.free = append(t.free, i)
	return uint64(e.frames)
}

// flush drops every datagram and returns how many fragments they held.
func (t *fragTable) flush() uint64 {
	var n uint64
	for t.entries != nil && t.oldest != fragNone {
		n += t.remove(t.oldest)
	}
	return n
}
