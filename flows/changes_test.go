package flows_test

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
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
		{"lanes", 4, 0, 24, 300},    // applied on three lanes, viewed meanwhile
		{"lanes-bounded", 2, 6, 24, 300},
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
			apply, sync := tab.Apply, func() {}
			if strings.HasPrefix(tc.name, "lanes") {
				l := flows.NewLanes(tab, 3)
				flows.SetLaneThresholds(l, 0, 0)
				apply, sync = l.Apply, l.Sync
				defer l.Close()
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
					apply(&p)
				}
				if cp%4 != 3 {
					sync() // else the view looks while the lanes apply
				}
				upto := tab.IDMark()
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
				if cp%4 == 3 || upto != tab.IDMark() {
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

// TestLanesBesideViews applies random traffic with ticks on lanes that load
// ahead, while another goroutine takes snapshots and change lists, which
// run timers and so change connections' states under the shards' locks:
// under the race detector, the lanes' lock-free loads must not race with
// them. (Records may differ from a run without the views: a view runs a
// timer at the clock's time, which ticks may have moved past the packets.)
// Every connection opened must still come out once, retired or flushed.
func TestLanesBesideViews(t *testing.T) {
	ids := map[uint64]int{}
	cfg := flows.Config{
		Shards: 8, Changes: true, Transitions: 4,
		TimeWait: 2 * time.Millisecond, HandshakeTimeout: time.Millisecond,
		ClosedTimeout: 50 * time.Microsecond, IdleTimeout: 3 * time.Millisecond,
		SweepEvery: time.Hour, // the views run the timers, not a sweep
		OnRetire: func(r []flows.Record) {
			for i := range r {
				ids[r[i].ID]++
			}
		},
	}
	steps := randomSteps(rand.New(rand.NewPCG(7, 8)), 200, 20000, true)
	tab := flows.NewTable(cfg)
	views := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = tab.Snapshot()
			tab.EachChange(tab.IDMark(), func(uint64) {}, func(*flows.Record) {})
			views++
		}
	})
	l := flows.NewLanes(tab, 2)
	flows.SetLaneThresholds(l, 0, 0)
	for i := range steps {
		switch s := &steps[i]; {
		case s.tick != 0:
			l.Tick(time.Unix(0, s.tick))
		case s.sync:
			l.Sync()
		default:
			p := s.p
			l.Apply(&p)
		}
	}
	l.Close()
	close(stop)
	wg.Wait()
	cfg.OnRetire(tab.Flush())
	if views == 0 {
		t.Fatal("no view was taken")
	}
	for id, n := range ids {
		if n != 1 {
			t.Fatalf("connection %d came out %d times", id, n)
		}
	}
	if uint64(len(ids)) != tab.Opened() {
		t.Fatalf("%d connections came out, %d were opened", len(ids), tab.Opened())
	}
	t.Logf("%d views beside %d steps, %d connections", views, len(steps), len(ids))
}
