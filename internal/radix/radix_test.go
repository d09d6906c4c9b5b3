package radix

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var tmp []Item
	for _, n := range []int{0, 1, 2, 3, 100, 10000} {
		for _, bits := range []uint{4, 20, 64} {
			a := make([]Item, n)
			for i := range a {
				a[i] = Item{r.Uint64() >> (64 - bits), uint32(i)}
			}
			want := slices.Clone(a)
			slices.SortStableFunc(want, func(x, y Item) int { return cmp.Compare(x.K, y.K) })
			var got []Item
			got, tmp = Sort(a, tmp)
			if !slices.Equal(got, want) {
				t.Errorf("n=%d, %d-bit keys: not sorted stably", n, bits)
			}
		}
	}
}
