package flows_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// TestIndexArenaMatches checks that a table whose shards' indexes go in
// their arena (robinArena) as soon as they are outside the heap gives the
// records of one whose indexes never do, applied one packet at a time and
// by lanes: the indexes grow into the arena, within it, shrink as
// connections expire, and leave it at the flush.
func TestIndexArenaMatches(t *testing.T) {
	cfg := flows.Config{
		Shards: 8, Transitions: 4,
		TimeWait: 2 * time.Millisecond, HandshakeTimeout: time.Millisecond,
		ClosedTimeout: 50 * time.Microsecond, IdleTimeout: 100 * time.Millisecond,
		SweepEvery: 2 * time.Millisecond,
	}
	// Two spells of traffic, a second apart: the first's connections
	// expire at a tick in between, and the indexes shrink.
	rng := rand.New(rand.NewPCG(7, 8))
	steps := randomSteps(rng, 10000, 25000, false)
	last := steps[len(steps)-1].p.TS
	steps = append(steps, step{tick: last + int64(time.Second)})
	for _, s := range randomSteps(rng, 10000, 25000, false) {
		s.p.TS += last + int64(2*time.Second) - steps[0].p.TS
		steps = append(steps, s)
	}
	inArena := func(tab *flows.Table) { flows.SetIndexArena(tab, 4<<10) }
	apart := func(tab *flows.Table) { flows.SetIndexArena(tab, -1) }

	// The traffic takes every shard's index into the arena, and out of
	// it as the table empties.
	tab := flows.NewTable(cfg)
	inArena(tab)
	most := 0
	for i := range steps {
		if steps[i].tick != 0 {
			tab.Tick(time.Unix(0, steps[i].tick))
			if n := tab.Len(); n > 0 {
				t.Fatalf("%d connections left after a second's pause", n)
			}
			continue
		}
		p := steps[i].p
		tab.Apply(&p)
		if i%500 == 0 {
			most = max(most, flows.IndexesInArena(tab))
		}
	}
	if most != cfg.Shards {
		t.Fatalf("at most %d of %d indexes in the arena", most, cfg.Shards)
	}
	if tab.Flush(); flows.IndexesInArena(tab) != 0 {
		t.Fatalf("%d indexes still in the arena after a flush", flows.IndexesInArena(tab))
	}

	want := replay(cfg, steps, 0, 0, 0, false, apart)
	if len(want.retired) < 10000 || len(want.flushed) == 0 {
		t.Fatalf("traffic too tame: %d retired, %d flushed", len(want.retired), len(want.flushed))
	}
	for _, lanes := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("lanes=%d", lanes), func(t *testing.T) {
			got := replay(cfg, steps, lanes, 0, 0, false, inArena)
			if got.opened != want.opened {
				t.Errorf("opened %d connections, %d without the arena", got.opened, want.opened)
			}
			sameOutput(t, got.retired, want.retired, got.tags, want.tags)
			sameRecords(t, "flushed", got.flushed, want.flushed)
		})
	}
}
