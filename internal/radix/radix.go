// Package radix sorts items by a 64-bit key, stably, in linear time.
package radix

// Item pairs a sort key with the index of what it sorts.
type Item struct {
	K uint64
	I uint32
}

// Sort sorts a by key, stably, using tmp (grown as needed) as scratch
// space, and returns the sorted slice, which is either a or tmp, and the
// other as scratch for next time. It is an LSD radix sort on bytes that
// skips the bytes all keys share: a million items sort in a few
// milliseconds, several times faster than a comparison sort, and it reads
// only the items, never what they index (a comparison that followed a
// pointer would miss the cache each time).
//
// It is written for Item alone: generic versions, with the key read by a
// function or a method, took twice as long.
func Sort(a, tmp []Item) (sorted, scratch []Item) {
	if len(a) < 2 {
		return a, tmp
	}
	if cap(tmp) < len(a) {
		tmp = make([]Item, len(a))
	}
	tmp = tmp[:len(a)]
	var counts [8][256]uint32
	for i := range a {
		k := a[i].K
		for d := range 8 {
			counts[d][byte(k>>(8*d))]++
		}
	}
	src, dst := a, tmp
	n := uint32(len(a))
	for d := range 8 {
		c := &counts[d]
		if c[byte(src[0].K>>(8*d))] == n {
			continue // every key has the same byte here
		}
		var sum uint32
		for i := range c {
			c[i], sum = sum, sum+c[i]
		}
		shift := uint(8 * d)
		for _, it := range src {
			b := byte(it.K >> shift)
			dst[c[b]] = it
			c[b]++
		}
		src, dst = dst, src
	}
	return src, dst
}
