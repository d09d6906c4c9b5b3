package flows

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortRefs checks sortRefs against a comparison sort of the same
// references (start time, then ID): at the sizes where it compares and
// where it sorts by bytes, with starts that spread over a few
// nanoseconds (all ties but for the ID), over seconds, over the whole
// range of int64, and that are all the same; with IDs past 32 bits, kept
// in the cold store.
func TestSortRefs(t *testing.T) {
	spreads := map[string]func(*rand.Rand) int64{
		"ties":    func(r *rand.Rand) int64 { return 1e18 + r.Int64N(3) },
		"seconds": func(r *rand.Rand) int64 { return 1.7e18 + r.Int64N(20e9) },
		"int64":   func(r *rand.Rand) int64 { return int64(r.Uint64()) },
		"extremes": func(r *rand.Rand) int64 {
			return []int64{math.MinInt64, -1, 0, 1, math.MaxInt64}[r.IntN(5)]
		},
		"same": func(*rand.Rand) int64 { return 42 },
	}
	for name, start := range spreads {
		for _, n := range []int{0, 1, 2, radixSmall, radixSmall + 1, 1000, 20_000} {
			rng := rand.New(rand.NewPCG(uint64(n), 7))
			cs := &coldStore{}
			sl := newSlab(false)
			refs := make([]fullRef, n)
			for k := range refs {
				c := sl.alloc()
				c.first = start(rng)
				c.setID(uint64(k+1)<<uint(rng.IntN(2)*33), cs) // some past 32 bits
				refs[k] = newFullRef(c, sl.indexOf(c))
			}
			rng.Shuffle(n, func(i, j int) { refs[i], refs[j] = refs[j], refs[i] })
			byStart := fullByStart(sl, cs)
			want := slices.Clone(refs)
			slices.SortFunc(want, byStart)
			sortRefs(refs, byStart)
			if !slices.Equal(refs, want) {
				for i := range refs {
					if refs[i] != want[i] {
						t.Fatalf("%s, n=%d: at %d, %+v, want %+v", name, n, i, refs[i], want[i])
					}
				}
			}
			sl.unmap()
		}
	}
}
