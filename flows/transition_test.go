package flows

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestTransitionPacking checks that a kept transition gives back every
// field of the Transition it was made from.
func TestTransitionPacking(t *testing.T) {
	if n := unsafe.Sizeof(transition{}); n != 24 {
		t.Fatalf("transition is %d bytes, want 24", n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		in := Transition{
			TS: rng.Int64(), Seq: rng.Uint32(), Ack: rng.Uint32(), PayloadLen: rng.Uint32(),
			Flags: Flags(rng.IntN(1 << 9)), From: State(rng.IntN(int(numStates))), To: State(rng.IntN(int(numStates))),
			Client: rng.IntN(2) == 0, Packet: rng.IntN(2) == 0, Confirmed: rng.IntN(2) == 0,
			Replaced: rng.IntN(2) == 0, FromClient: rng.IntN(2) == 0,
		}
		if out := packTransition(&in).unpack(); out != in {
			t.Fatalf("packed %+v, got back %+v", in, out)
		}
	}
}

// TestTransitionLogKeepsEnds fills a log past its limit: it keeps the first
// half and the most recent, oldest first.
func TestTransitionLogKeepsEnds(t *testing.T) {
	for _, limit := range []int{1, 2, 7, 32} {
		cfg := Config{Transitions: limit}
		cfg.setDefaults()
		var c conn
		const n = 100
		for i := range n {
			c.logTransition(&cfg, Transition{TS: int64(i)})
		}
		got := c.transitions(cfg.logs)
		if len(got) != limit {
			t.Fatalf("limit %d: %d kept", limit, len(got))
		}
		keep := limit / 2
		for i, tr := range got {
			want := int64(i)
			if i >= keep {
				want = int64(n - limit + i)
			}
			if tr.TS != want {
				t.Fatalf("limit %d: entry %d is %d, want %d", limit, i, tr.TS, want)
			}
		}
	}
}
