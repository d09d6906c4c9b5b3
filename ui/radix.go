package ui

// sortItem pairs a sort key with the index of what it sorts.
type sortItem struct {
	k uint64
	i uint32
}

// radixSort sorts a by key, stably, using tmp (grown as needed) as scratch
// space, and returns the sorted slice, which is either a or tmp. It is an
// LSD radix sort on bytes that skips the bytes all keys share: on the keys
// of a large table it costs a fraction of a comparison sort, which keeps
// its frames cheap (BenchmarkFrame).
func radixSort(a, tmp []sortItem) (sorted, scratch []sortItem) {
	if len(a) < 2 {
		return a, tmp
	}
	if cap(tmp) < len(a) {
		tmp = make([]sortItem, len(a))
	}
	tmp = tmp[:len(a)]
	var counts [8][256]uint32
	for i := range a {
		k := a[i].k
		for d := range 8 {
			counts[d][byte(k>>(8*d))]++
		}
	}
	src, dst := a, tmp
	n := uint32(len(a))
	for d := range 8 {
		c := &counts[d]
		if c[byte(src[0].k>>(8*d))] == n {
			continue // every key has the same byte here
		}
		var sum uint32
		for i := range c {
			c[i], sum = sum, sum+c[i]
		}
		shift := uint(8 * d)
		for _, it := range src {
			b := byte(it.k >> shift)
			dst[c[b]] = it
			c[b]++
		}
		src, dst = dst, src
	}
	return src, dst
}
