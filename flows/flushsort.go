package flows

import (
	"cmp"
	"slices"

	"github.com/flowtrack/flowtrack/internal/radix"
)

// startKey is a start time as a radix key: the sign bit flipped, so that
// times before 1970 come first.
func startKey(ts int64) uint64 { return uint64(ts) ^ 1<<63 }

// sortByStart sorts items (a startKey each, and an index) by start time,
// then by id of the index, and returns them sorted with the other buffer
// as scratch for next time. The radix sort on the start times never
// follows a connection's pointer, which a comparison sort did at each
// comparison (a cache miss every time: sorting took half of a flood's
// flush); only runs of equal start times, which are short, are sorted by
// ID after it.
func sortByStart(items, tmp []radix.Item, id func(uint32) uint64) (sorted, scratch []radix.Item) {
	sorted, scratch = radix.Sort(items, tmp)
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j].K == sorted[i].K {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(sorted[i:j], func(x, y radix.Item) int { return cmp.Compare(id(x.I), id(y.I)) })
		}
		i = j
	}
	return sorted, scratch
}
