package flows

import (
	"math/bits"
	"slices"
)

// sortRefs sorts a flush's references by start time, then ID (byStart),
// as slices.SortFunc would, but by the bits of the start time first: a
// radix sort in place (American flag sort), a byte of the start at a
// time from the highest that differs, that compares whole references
// only within the small stretches that share a start's leading bytes. A
// comparison sort compares each reference about log2(n) times, each
// comparison possibly reading two connections; a radix pass counts and
// moves each reference once per byte.
func sortRefs(refs []fullRef, byStart func(a, b fullRef) int) {
	if len(refs) < 2 {
		return
	}
	lo, hi := refs[0].first(), refs[0].first()
	for i := range refs {
		lo, hi = min(lo, refs[i].first()), max(hi, refs[i].first())
	}
	span := uint64(hi) - uint64(lo)
	radixRefs(refs, lo, max(bits.Len64(span)-8, 0), byStart)
}

// radixSmall is the length below which a stretch is sorted by comparing.
const radixSmall = 24

// radixRefs sorts refs, whose starts, less lo, agree above bit shift+8,
// by the byte from bit shift down (the bits below it are shared, at the
// last byte), then each stretch that shares it by the bits below.
func radixRefs(refs []fullRef, lo int64, shift int, byStart func(a, b fullRef) int) {
	if len(refs) <= radixSmall {
		slices.SortFunc(refs, byStart) // an insertion sort, at this length
		return
	}
	digit := func(r fullRef) int { return int((uint64(r.first()) - uint64(lo)) >> shift & 0xff) }
	var count, next [256]int
	for i := range refs {
		count[digit(refs[i])]++
	}
	sum := 0
	for d := range count {
		next[d] = sum
		sum += count[d]
	}
	start := next
	// Each reference moves once, straight to the next free place of its
	// byte's stretch, taking the one there on in turn.
	for d := range count {
		end := start[d] + count[d]
		for next[d] < end {
			r := refs[next[d]]
			for e := digit(r); e != d; e = digit(r) {
				refs[next[e]], r = r, refs[next[e]]
				next[e]++
			}
			refs[next[d]] = r
			next[d]++
		}
	}
	for d := range count {
		s := refs[start[d] : start[d]+count[d]]
		switch {
		case len(s) < 2:
		case shift == 0: // the same start: by ID
			slices.SortFunc(s, byStart)
		default:
			radixRefs(s, lo, max(shift-8, 0), byStart)
		}
	}
}
