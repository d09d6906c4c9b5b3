package flows

import (
	"cmp"
	"slices"
)

// started is a connection to flush, with its start time beside the
// pointer, so that sorting a million of them does not follow each pointer
// at each comparison (a cache miss every time: sorting took most of a
// flood's flush).
type started[P any] struct {
	first int64
	p     P
}

// sortStarted sorts a by start time, then by id, and returns it sorted
// (it is a or tmp) with the other as scratch space for next time. It is an
// LSD radix sort on the start time that skips the bytes all times share
// (a capture's span of seconds leaves five of eight), then a sort by ID of
// each run of equal start times, which are short.
func sortStarted[P any](a, tmp []started[P], id func(P) uint64) (sorted, scratch []started[P]) {
	if len(a) < 2 {
		return a, tmp
	}
	if cap(tmp) < len(a) {
		tmp = make([]started[P], len(a))
	}
	tmp = tmp[:len(a)]
	key := func(s *started[P]) uint64 { return uint64(s.first) ^ 1<<63 } // negative times first
	var counts [8][256]uint32
	for i := range a {
		k := key(&a[i])
		for d := range 8 {
			counts[d][byte(k>>(8*d))]++
		}
	}
	src, dst := a, tmp
	n := uint32(len(a))
	for d := range 8 {
		c := &counts[d]
		if c[byte(key(&src[0])>>(8*d))] == n {
			continue // every time has the same byte here
		}
		var sum uint32
		for i := range c {
			c[i], sum = sum, sum+c[i]
		}
		shift := uint(8 * d)
		for i := range src {
			b := byte(key(&src[i]) >> shift)
			dst[c[b]] = src[i]
			c[b]++
		}
		src, dst = dst, src
	}
	for i := 0; i < len(src); {
		j := i + 1
		for j < len(src) && src[j].first == src[i].first {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(src[i:j], func(x, y started[P]) int { return cmp.Compare(id(x.p), id(y.p)) })
		}
		i = j
	}
	return src, dst
}
