package flows_test

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/internal/tcpgen"
)

// TestEachChangeKeepsAViewExact keeps a view of the table (records by ID)
// up to date with EachChange alone, through random traffic on a few
// 4-tuples: handshakes, data, FINs, RSTs, port reuse, sweeps of closed
// and idle connections, and (bounded) evictions and limbo. At each
// checkpoint the view must equal a whole snapshot, record for record. No
// timer fires inside the test's span of capture time (sweeps remove
// connections, but no state changes by time alone), so every difference
// is a change EachChange missed or invented.
func TestEachChangeKeepsAViewExact(t *testing.T) {
	for _, tc := range []struct {
		name      string
		shards    int
		maxConns  int
		tuples    int
		checkpnts int
	}{
		{"unbounded", 4, 0, 24, 300},
		{"bounded", 2, 6, 24, 300},
		{"overflow", 1, 0, 200, 40}, // more changes than a shard lists
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := flows.Config{
				Shards: tc.shards, MaxConns: tc.maxConns, Changes: true,
				TimeWait: time.Hour, HandshakeTimeout: time.Hour,
				ClosedTimeout: 50 * time.Microsecond, IdleTimeout: 3 * time.Millisecond,
				SweepEvery: 100 * time.Microsecond,
			}
			tab := flows.NewTable(cfg)
			if tc.name == "overflow" {
				flows.SetChangeLimit(tab, 64)
			}
			rng := rand.New(rand.NewPCG(uint64(tc.maxConns), uint64(tc.tuples)))
			gen := tcpgen.New(rng, tc.tuples)
			view := map[uint64]flows.Record{}
			full, listed := 0, 0
			for cp := range tc.checkpnts {
				burst := 12
				if tc.name == "overflow" && cp%4 == 0 {
					burst = 200
				}
				for range 1 + rng.IntN(burst) {
					p := gen.Next()
					tab.Apply(&p)
				}
				upto := tab.Opened()
				if cp%3 == 1 {
					upto -= uint64(rng.IntN(3)) // some new ones wait for the next call
				}
				ok := tab.EachChange(upto,
					func(id uint64) { delete(view, id) },
					func(r *flows.Record) {
						if r.ID > upto {
							t.Fatalf("record %d above the mark %d", r.ID, upto)
						}
						view[r.ID] = *r
						listed++
					})
				if !ok {
					full++
					clear(view)
					tab.EachSnapshot(func(r *flows.Record) { view[r.ID] = *r })
					continue
				}
				if upto != tab.Opened() {
					continue
				}
				viewIsSnapshot(t, cp, view, tab)
			}
			if tc.name == "overflow" && full == 0 {
				t.Errorf("no call gave up its lists")
			}
			if tc.name != "overflow" && full > 0 {
				t.Errorf("%d calls gave up their lists", full)
			}
			if tc.maxConns > 0 && tab.Evicted() == 0 {
				t.Errorf("no eviction")
			}
			t.Logf("%d records listed, %d whole snapshots, %d opened, %d evicted", listed, full, tab.Opened(), tab.Evicted())
		})
	}
}

// viewIsSnapshot checks, at checkpoint cp, that the view holds what a
// whole snapshot of the table does, record for record.
func viewIsSnapshot(t *testing.T, cp int, view map[uint64]flows.Record, tab *flows.Table) {
	t.Helper()
	snap := map[uint64]flows.Record{}
	for _, r := range tab.Snapshot() {
		snap[r.ID] = r
	}
	for id, r := range snap {
		if v, ok := view[id]; !ok {
			t.Fatalf("checkpoint %d: connection %d (%v, %v/%v) missing from the view", cp, id, r.Client, r.ClientState, r.ServerState)
		} else if !reflect.DeepEqual(v, r) {
			t.Fatalf("checkpoint %d: connection %d differs:\nview %+v\nsnap %+v", cp, id, v, r)
		}
	}
	for id := range view {
		if _, ok := snap[id]; !ok {
			t.Fatalf("checkpoint %d: connection %d is in the view, not the table", cp, id)
		}
	}
}
