package main

import (
	"encoding/binary"
	"math/bits"
)

// openTable counts packets per 4-tuple in open addressing: a flat array of
// slots, a power of two long, each holding a key and its count and no
// pointer (the garbage collector never looks inside), probed linearly
// from the slot the key's hash picks. A tag of zero marks an empty slot.
// It doubles when three quarters full.
type openTable struct {
	slots []slot
	mask  uint64
	n     int
}

// slot is 44 bytes: the top bits of the key's hash (set, so never 0 in
// a used slot), its count, and the key, compared only when the tags agree.
type slot struct {
	tag   uint32
	count uint32
	k     key
}

func newOpenTable() *openTable {
	const initial = 1 << 10
	return &openTable{slots: make([]slot, initial), mask: initial - 1}
}

func (t *openTable) len() int { return t.n }

// add counts one packet of k.
func (t *openTable) add(k key) {
	h := hash(&k)
	tag := uint32(h>>32) | 1
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.tag == 0 {
			s.tag, s.count, s.k = tag, 1, k
			if t.n++; t.n*4 > len(t.slots)*3 {
				t.grow()
			}
			return
		}
		if s.tag == tag && s.k == k {
			s.count++
			return
		}
	}
}

// grow doubles the table, placing every key again.
func (t *openTable) grow() {
	old := t.slots
	t.slots = make([]slot, 2*len(old))
	t.mask = uint64(len(t.slots) - 1)
	for i := range old {
		if s := &old[i]; s.tag != 0 {
			j := hash(&s.k) & t.mask
			for t.slots[j].tag != 0 {
				j = (j + 1) & t.mask
			}
			t.slots[j] = *s
		}
	}
}

// hash mixes the key's words, a multiply and a fold at a time.
func hash(k *key) uint64 {
	const m = 0x9e3779b97f4a7c15
	h := uint64(k.pa)<<16 | uint64(k.pb)
	for _, w := range [...]uint64{
		binary.LittleEndian.Uint64(k.a[:8]), binary.LittleEndian.Uint64(k.a[8:]),
		binary.LittleEndian.Uint64(k.b[:8]), binary.LittleEndian.Uint64(k.b[8:]),
	} {
		hi, lo := bits.Mul64(h^w, m)
		h = hi ^ lo
	}
	return h
}
