package diag

import "time"

// trend is a count sampled at times step apart (multiples of step since
// the Unix epoch): the last n of them, oldest first. Spans are added as
// connections are written; a sample counts the spans that contain it.
type trend struct {
	step   time.Duration
	counts []int
	last   time.Time // the newest sample time, or zero before the first
	first  time.Time // the first time seen: samples before it are not known
}

func newTrend(step time.Duration, n int) trend {
	return trend{step: step, counts: make([]int, n)}
}

// advance moves the newest sample time to t's (rounded down), shifting
// older samples out.
func (tr *trend) advance(t time.Time) {
	at := t.Truncate(tr.step)
	if tr.first.IsZero() || t.Before(tr.first) {
		tr.first = t
	}
	if tr.last.IsZero() {
		tr.last = at
		return
	}
	shift := int(at.Sub(tr.last) / tr.step)
	if shift <= 0 {
		return
	}
	n := len(tr.counts)
	if shift >= n {
		clear(tr.counts)
	} else {
		copy(tr.counts, tr.counts[shift:])
		clear(tr.counts[n-shift:])
	}
	tr.last = at
}

// addSpan counts a span [start, end) in the samples it contains.
func (tr *trend) addSpan(start, end time.Time) {
	tr.advance(end)
	if start.Before(tr.first) {
		tr.first = start
	}
	n := len(tr.counts)
	for i := range n {
		t := tr.last.Add(-time.Duration(n-1-i) * tr.step)
		if !t.Before(start) && t.Before(end) {
			tr.counts[i]++
		}
	}
}

// samples returns the samples taken since the first time seen, oldest
// first.
func (tr *trend) samples() []int {
	n := len(tr.counts)
	k := 0
	for k < n && tr.last.Add(-time.Duration(n-1-k)*tr.step).Before(tr.first) {
		k++
	}
	return append([]int(nil), tr.counts[k:]...)
}

// growing reports whether the count kept growing: at least three
// samples, none below the one before, and the last above the first.
func (tr *trend) growing() bool {
	s := tr.samples()
	if len(s) < 3 || s[len(s)-1] <= s[0] {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < s[i-1] {
			return false
		}
	}
	return true
}
