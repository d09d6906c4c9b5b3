package flows

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

// shuffledRecords returns n records with unique IDs and start times that
// often tie, in random order.
func shuffledRecords(n int, seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	recs := make([]Record, n)
	for i := range recs {
		recs[i].ID = uint64(i + 1)
		recs[i].FirstSeen = time.Unix(1e9+int64(rng.IntN(max(1, n/4))), 0)
		recs[i].C2S.Packets = recs[i].ID // a field that must travel with the record
	}
	rng.Shuffle(n, func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	return recs
}

// TestSortByStart checks the order (start time, then ID) against a plain
// sort of the records, and that every record moved whole.
func TestSortByStart(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 1000} {
		recs := shuffledRecords(n, uint64(n))
		want := slices.Clone(recs)
		slices.SortFunc(want, func(a, b Record) int {
			if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
		SortByStart(recs)
		for i := range recs {
			if recs[i].ID != want[i].ID || recs[i].C2S.Packets != recs[i].ID {
				t.Fatalf("n=%d: record %d is %d (packets %d), want %d", n, i, recs[i].ID, recs[i].C2S.Packets, want[i].ID)
			}
		}
		SortByStart(recs) // already sorted: unchanged
		if !slices.EqualFunc(recs, want, func(a, b Record) bool { return a.ID == b.ID }) {
			t.Fatalf("n=%d: sorting a sorted slice changed it", n)
		}
	}
}

// BenchmarkSortByStart sorts shuffled records at the sizes it sees: a
// sweep's batch, and a table's records for the table output.
func BenchmarkSortByStart(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			orig := shuffledRecords(n, 1)
			recs := make([]Record, n)
			for b.Loop() {
				copy(recs, orig)
				SortByStart(recs)
			}
		})
	}
}
