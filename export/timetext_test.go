package export

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestTimeTextMatchesAppendFormat: the cached formatter writes what
// time.RFC3339Nano does, for times in one second and across seconds, with
// and without fractions (and their trailing zeros), at the ends of the
// four-digit years, beyond them, and outside UTC.
func TestTimeTextMatchesAppendFormat(t *testing.T) {
	var tt timeText
	check := func(x time.Time) {
		t.Helper()
		got, want := string(tt.append(nil, x)), x.Format(time.RFC3339Nano)
		if got != want {
			t.Fatalf("%v: %q, want %q", x.UnixNano(), got, want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 20000 {
		x := base.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
		switch rng.IntN(4) {
		case 0:
			x = x.Truncate(time.Second)
		case 1:
			x = x.Truncate(time.Millisecond)
		case 2:
			x = x.Truncate(10 * time.Microsecond)
		}
		check(x)
	}
	for _, x := range []time.Time{
		time.Unix(0, 0).UTC(),
		time.Unix(-1, 5).UTC(),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 1, 1, 0, 0, 0, 120000000, time.FixedZone("x", 3600)),
		time.Date(2024, 1, 1, 0, 0, 0, 120000000, time.UTC),
	} {
		check(x)
	}
}

// FuzzTimeText compares the cached formatter with time.RFC3339Nano on two
// times in a row (the second may reuse the first's second).
func FuzzTimeText(f *testing.F) {
	f.Add(int64(1704067200123456789), int64(1704067200123000000))
	f.Add(int64(0), int64(-1))
	f.Fuzz(func(t *testing.T, a, b int64) {
		var tt timeText
		for _, ns := range []int64{a, b} {
			x := time.Unix(0, ns).UTC()
			if got, want := string(tt.append(nil, x)), x.Format(time.RFC3339Nano); got != want {
				t.Fatalf("%d: %q, want %q", ns, got, want)
			}
		}
	})
}
