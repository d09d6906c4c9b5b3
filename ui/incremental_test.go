package ui

import (
	"cmp"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/internal/tcpgen"
)

// TestIncrementalFramesMatchFull builds frames two ways from one table
// under random traffic: incrementally, from the table's change lists, and
// in full, from a whole snapshot each time. Every frame's rows (all their
// fields: counters, states, rates, when first seen) and its view order
// must be the same; the incremental frame's column widths may only be
// wider (they shrink at the next full frame). The traffic opens, uses,
// closes, resets and reuses connections on a few hundred 4-tuples; the
// bounded table also evicts; retired connections linger and expire; the
// sort, filter and hide-closed settings change along the way.
func TestIncrementalFramesMatchFull(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  incRun
	}{
		{"unbounded", incRun{seed: 1, tuples: 300, steps: 400, fullEvery: time.Hour}},
		{"bounded", incRun{seed: 2, maxConns: 40, tuples: 300, steps: 400, fullEvery: time.Hour}},
		{"bounded-with-full-frames", incRun{seed: 3, maxConns: 40, tuples: 300, steps: 400, fullEvery: 250 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.run.check(t)
			if st.incFrames < 300 && tc.run.fullEvery == time.Hour || st.incFrames < 200 {
				t.Errorf("only %d of 400 frames were incremental", st.incFrames)
			}
			if tc.run.maxConns > 0 && st.inserts == 0 {
				t.Errorf("no frame inserted rows among the old ones")
			}
			if st.compacts == 0 {
				t.Errorf("no frame dropped gone rows")
			}
			if st.svcFrames < 50 {
				t.Errorf("only %d frames in the services view", st.svcFrames)
			}
			if st.probFrames < 25 || st.withProblems < 100 {
				t.Errorf("only %d frames in the Problems view, %d frames with a problem", st.probFrames, st.withProblems)
			}
			t.Logf("%+v", st)
		})
	}
}

// FuzzIncrementalFrames is TestIncrementalFramesMatchFull with the
// traffic's seed, the table's bound and shards, the number of 4-tuples and
// the spacing of full frames chosen by the fuzzer.
func FuzzIncrementalFrames(f *testing.F) {
	f.Add(uint64(1), uint8(0), uint8(4), uint16(300), uint8(0))
	f.Add(uint64(2), uint8(40), uint8(1), uint16(50), uint8(3))
	f.Fuzz(func(t *testing.T, seed uint64, maxConns, shards uint8, tuples uint16, fullEvery uint8) {
		r := incRun{seed: seed, maxConns: int(maxConns), shards: int(shards%8) + 1, tuples: int(tuples%2000) + 1, steps: 60,
			fullEvery: time.Duration(fullEvery) * 100 * time.Millisecond}
		if fullEvery == 0 {
			r.fullEvery = time.Hour
		}
		r.check(t)
	})
}

// incRun is one run of random traffic, with a frame built both ways after
// each burst of packets.
type incRun struct {
	seed      uint64
	maxConns  int
	shards    int // default 4
	tuples    int
	steps     int
	fullEvery time.Duration
}

type incStats struct {
	incFrames, svcFrames, inserts, compacts int
	probFrames, withProblems                int
	opened, evicted                         uint64
}

// check runs r, comparing every incremental frame with a full one.
func (r incRun) check(t *testing.T) incStats {
	t.Helper()
	retInc, retRef := NewRetired(0), NewRetired(0)
	tab := flows.NewTable(flows.Config{
		Shards: cmp.Or(r.shards, 4), MaxConns: r.maxConns, Changes: true,
		TimeWait: time.Hour, HandshakeTimeout: time.Hour,
		ClosedTimeout: 200 * time.Microsecond, IdleTimeout: 5 * time.Millisecond,
		SweepEvery: 100 * time.Microsecond,
		OnRetire:   func(r []flows.Record) { retInc.Add(r); retRef.Add(r) },
	})
	wall := time.Unix(2e9, 0)
	clock := func() time.Time { return wall }
	inc := newBuilder(&Config{Table: tab, Retired: retInc, Linger: 300 * time.Microsecond}, clock)
	ref := newBuilder(&Config{Table: tab, Retired: retRef, Linger: 300 * time.Microsecond}, clock)
	inc.inc.min, inc.inc.fullEvery = 0, r.fullEvery
	reqs := []request{
		{sort: colAge, desc: true},
		{sort: colBytes, desc: true},
		{sort: colRate, desc: true},
		{sort: colCState},
		{sort: colAge, desc: true, hideClosed: true},
		{sort: colIdle, filter: "est"},
		{view: viewServices, sort: colAge, desc: true, svcSort: scRate, svcDesc: true},
		{view: viewServices, sort: colAge, desc: true, svcSort: scConns, filter: "10.1.0.2"},
		{view: viewServices, sort: colBytes, svcSort: scEstablished, hideClosed: true},
		{view: viewProblems, sort: colAge, desc: true},
		{view: viewProblems, sort: colAge, desc: true, filter: "problem:reset"},
		{sort: colProblem, desc: true, problems: true},
	}
	rng := rand.New(rand.NewPCG(r.seed, 7))
	gen := tcpgen.New(rng, r.tuples)
	req := &reqs[0]
	var st incStats
	for step := range r.steps {
		for range rng.IntN(40) {
			p := gen.Next()
			tab.Apply(&p)
		}
		wall = wall.Add(100 * time.Millisecond)
		if step%25 == 24 {
			req = &reqs[rng.IntN(len(reqs))]
			inc.commit(inc.derived(req))
			ref.commit(ref.derived(req))
		}
		fulls := inc.inc.fulls
		if req.view == viewServices {
			st.svcFrames++
		}
		if req.view == viewProblems {
			st.probFrames++
		}
		fi := inc.refresh(req)
		inc.commit(fi)
		if inc.inc.fulls == fulls {
			st.incFrames++
		}
		fr := ref.full(req)
		ref.commit(fr)
		compareFrames(t, step, fi, fr)
		if slices.ContainsFunc(fr.rows, func(r row) bool { return r.probs != 0 }) {
			st.withProblems++
		}
	}
	st.inserts, st.compacts, st.opened, st.evicted = inc.inc.inserts, inc.inc.compacts, tab.Opened(), tab.Evicted()
	return st
}

// compareFrames fails unless the incremental frame fi shows what the full
// frame fr shows.
func compareFrames(t *testing.T, step int, fi, fr *frame) {
	t.Helper()
	var live []row
	for _, r := range fi.rows {
		if r.flags&rowGone == 0 {
			live = append(live, r)
		}
	}
	if len(live) != len(fr.rows) {
		t.Fatalf("step %d: %d rows, want %d", step, len(live), len(fr.rows))
	}
	for i := range live {
		if !reflect.DeepEqual(live[i], fr.rows[i]) {
			t.Fatalf("step %d: row %d differs:\ngot  %+v\nwant %+v", step, i, live[i], fr.rows[i])
		}
	}
	if len(fi.order) != len(fr.order) {
		t.Fatalf("step %d: %d rows in order, want %d", step, len(fi.order), len(fr.order))
	}
	for j := range fi.order {
		if a, b := fi.at(j).id, fr.at(j).id; a != b {
			t.Fatalf("step %d: order position %d holds %d, want %d", step, j, a, b)
		}
		if fi.pos[fi.order[j]] != int32(j) {
			t.Fatalf("step %d: pos of order position %d is %d", step, j, fi.pos[fi.order[j]])
		}
	}
	for i, w := range fr.w {
		if fi.w[i] < w {
			t.Fatalf("step %d: width %d is %d, narrower than %d", step, i, fi.w[i], w)
		}
	}
	if !reflect.DeepEqual(fi.probs, fr.probs) {
		t.Fatalf("step %d: problems differ:\ngot  %+v\nwant %+v", step, fi.probs, fr.probs)
	}
	if !reflect.DeepEqual(fi.svcs, fr.svcs) || fi.svcW != fr.svcW {
		t.Fatalf("step %d: services differ:\ngot  %+v\nwant %+v", step, fi.svcs, fr.svcs)
	}
	for i := range fi.rows {
		if fi.rows[i].flags&rowGone != 0 && fi.pos[i] != -1 {
			t.Fatalf("step %d: a gone row has a position", step)
		}
	}
}

// TestIncrementalFramesUnderConcurrentTraffic builds incremental frames
// while another goroutine applies packets, as a live capture does; once the
// traffic stops, one more frame must show what a full snapshot shows (but
// for rates and first sightings, which depend on the frames before).
func TestIncrementalFramesUnderConcurrentTraffic(t *testing.T) {
	ret := NewRetired(0)
	tab := flows.NewTable(flows.Config{
		Shards: 8, MaxConns: 200, Changes: true,
		TimeWait: time.Hour, HandshakeTimeout: time.Hour,
		ClosedTimeout: 200 * time.Microsecond, IdleTimeout: 5 * time.Millisecond,
		SweepEvery: 100 * time.Microsecond,
		OnRetire:   ret.Add,
	})
	wall := time.Unix(2e9, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return wall }
	inc := newBuilder(&Config{Table: tab, Retired: ret, Linger: time.Hour}, clock)
	inc.inc.min, inc.inc.fullEvery = 0, time.Hour
	req := &request{sort: colAge, desc: true}
	done := make(chan struct{})
	go func() {
		defer close(done)
		gen := tcpgen.New(rand.New(rand.NewPCG(4, 4)), 2000)
		for range 200_000 {
			p := gen.Next()
			tab.Apply(&p)
		}
	}()
	frames := 0
	for running := true; running; frames++ {
		select {
		case <-done:
			running = false
		default:
		}
		mu.Lock()
		wall = wall.Add(100 * time.Millisecond)
		mu.Unlock()
		inc.commit(inc.refresh(req))
	}
	fi := inc.refresh(req)
	inc.commit(fi)
	if inc.inc.fulls > frames/2 {
		t.Errorf("%d of %d frames were full", inc.inc.fulls, frames)
	}
	// The reference: a full frame of a fresh builder on the same table
	// and the same lingering records.
	ref := newBuilder(&Config{Table: tab, Linger: time.Hour}, clock)
	ref.lingering = append(ref.lingering, inc.lingering...)
	fr := ref.full(req)
	var live []row
	for _, r := range fi.rows {
		if r.flags&rowGone == 0 {
			live = append(live, r)
		}
	}
	if len(live) != len(fr.rows) {
		t.Fatalf("%d rows, want %d", len(live), len(fr.rows))
	}
	for i := range live {
		a, b := live[i], fr.rows[i]
		a.rate, b.rate, a.born, b.born = [2]float32{}, [2]float32{}, 0, 0
		a.wid[widRateUp], a.wid[widRateDn] = b.wid[widRateUp], b.wid[widRateDn]
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("row %d differs:\ngot  %+v\nwant %+v", i, a, b)
		}
	}
	for j := range fi.order {
		if a, b := fi.at(j).id, fr.at(j).id; a != b {
			t.Fatalf("order position %d holds %d, want %d", j, a, b)
		}
	}
	t.Logf("%d frames (%d full, %d inserting), %d rows; %d connections opened, %d evicted",
		frames, inc.inc.fulls, inc.inc.inserts, len(live), tab.Opened(), tab.Evicted())
}

// TestIncrementalFramesJudgeWithTime: a problem that begins with time
// alone (a socket left in CLOSE_WAIT, with no packet since) shows in an
// incremental frame once the capture's clock has passed its threshold,
// without a full frame.
func TestIncrementalFramesJudgeWithTime(t *testing.T) {
	tab := flows.NewTable(flows.Config{Changes: true})
	judge := diag.New(diag.Config{CloseWait: 5 * time.Second, FinWait2: 5 * time.Second})
	b := newBuilder(&Config{Table: tab, Judge: judge}, func() time.Time { return t0 })
	b.inc.min, b.inc.fullEvery = 0, time.Hour
	var ps []flows.Packet
	// The server closes; the client's application does not: CLOSE_WAIT.
	(&conv{c: "10.0.0.1:40001", s: "10.0.0.2:80", out: &ps}).handshake().
		send(false, flows.FIN|flows.ACK, 5001, 1001, 0, ms(5)).
		send(true, flows.ACK, 1001, 5002, 0, ms(1))
	for i := range ps {
		tab.Apply(&ps[i])
	}
	req := &request{view: viewProblems, sort: colAge, desc: true}
	b.commit(b.full(req))
	if f := b.shown; len(f.rows) != 1 || f.rows[0].probs != 0 || len(f.probs) != 0 {
		t.Fatalf("problems before the threshold: %v", f.probs)
	}
	fulls := b.inc.fulls
	// 10 s later, another connection's SYN moves the capture's clock.
	for _, at := range []time.Duration{3 * time.Second, 10 * time.Second} {
		p := pkt("10.0.0.9:1234", "10.0.0.2:80", flows.SYN, 1000, 0, 0, at)
		tab.Apply(&p)
		b.commit(b.refresh(req))
	}
	f := b.shown
	if b.inc.fulls != fulls {
		t.Fatal("a full frame: the test proves nothing")
	}
	i, ok := f.find(1)
	if !ok {
		t.Fatal("no row for the connection")
	}
	want := diag.Set(0).Add(diag.CloseWait).Add(diag.FinWait2)
	if got := f.rows[i].probs; got != want {
		t.Errorf("the connection in CLOSE_WAIT for 10 s has %v, want %v", got, want)
	}
	// The other connection's SYNs are unanswered after 7 s; the
	// connection in CLOSE_WAIT adds its kinds.
	var kinds []diag.Kind
	for _, p := range f.probs {
		kinds = append(kinds, p.kind)
		if p.conns != 1 {
			t.Errorf("%v: %d connections, want 1", p.kind, p.conns)
		}
	}
	if !slices.Equal(kinds, []diag.Kind{diag.Unanswered, diag.CloseWait, diag.FinWait2}) {
		t.Errorf("the Problems view: %v", kinds)
	}
	if f.w[widProb] == 0 {
		t.Error("the Problem column is not as wide as its text")
	}
}
