package capture

import (
	"testing"
	"time"
)

// A live capture's tick (the clock moving to the wall clock) never passes
// a packet the fanout merge still holds, nor the horizon of a reader that
// holds none: a timer running out on that time would run out before
// packets that came earlier, as libpcap's capture would not.
func TestFanoutTickStaysBehindHeldPackets(t *testing.T) {
	now := time.Now().UnixNano()
	held := &fanBatch{n: 2}
	held.p[0].TS, held.p[1].TS = now-30e6, now-20e6
	for _, c := range []struct {
		name  string
		feeds []fanFeed
		want  int64 // 0: the wall clock
	}{
		{"a packet held", []fanFeed{{q: []*fanBatch{held}, horizon: now - 20e6}, {horizon: now - 10e6}}, now - 30e6},
		{"the next packet held", []fanFeed{{q: []*fanBatch{held}, at: 1, horizon: now - 20e6}, {horizon: now - 10e6}}, now - 20e6},
		{"a reader behind", []fanFeed{{q: []*fanBatch{held}, horizon: now - 20e6}, {horizon: now - 50e6}}, now - 50e6},
		{"a reader stopped", []fanFeed{{q: []*fanBatch{held}, horizon: now - 20e6}, {horizon: now - 50e6, done: true}}, now - 30e6},
		{"every reader ahead", []fanFeed{{horizon: now + 1e9}, {done: true}}, 0},
	} {
		var got time.Time
		tk := &ticker{tick: func(t time.Time) { got = t }}
		tk.due.Store(true)
		before := time.Now()
		tk.maybeBy((&fanout{feeds: c.feeds}).settledUpTo())
		switch {
		case c.want == 0 && (got.Before(before) || got.After(time.Now())):
			t.Errorf("%s: tick at %v, want the wall clock's time", c.name, got)
		case c.want != 0 && got.UnixNano() != c.want:
			t.Errorf("%s: tick at %d ns before now, want %d", c.name, now-got.UnixNano(), now-c.want)
		}
	}
}
