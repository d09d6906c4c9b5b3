package flows_test

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/internal/tcpgen"
)

// TestLanesMatchApply applies the same random traffic with Table.Apply and
// with Lanes, and requires the same records in the same order: those
// retired on the way (by packets, sweeps, evictions and limbo) and those
// flushed at the end. IDs differ by design (a lane's are packet numbers),
// but must sort the same way. With ticks, the traffic is a live capture's:
// the clock also moves between packets (Table.Tick and Lanes.Tick, now and
// then several in a row with no packet), events go to OnChange, and the
// lanes are synced at random; the events and retired records must then
// come in the same order, one stream.
func TestLanesMatchApply(t *testing.T) {
	for _, tc := range []struct {
		shards, maxConns, tuples, packets int
		sweep                             time.Duration
		lanes                             []int
		ticks                             bool
	}{
		{8, 0, 40, 6000, 100 * time.Microsecond, []int{1, 2, 3, 5}, false},
		{8, 12, 40, 6000, 100 * time.Microsecond, []int{1, 2, 3, 5}, false}, // evictions, limbo
		{8, 12, 40, 6000, time.Second, []int{1, 2, 3}, false},               // long epochs: lanes' records merge
		{16, 0, 1000, 8000, time.Millisecond, []int{2, 3}, false},
		{1, 0, 40, 5000, 100 * time.Microsecond, []int{2}, false}, // one shard: one lane
		{8, 0, 40, 6000, 100 * time.Microsecond, []int{1, 2, 3}, true},
		{8, 12, 40, 6000, 200 * time.Microsecond, []int{1, 2, 3}, true},
		{16, 0, 1000, 8000, time.Millisecond, []int{2, 3}, true},
	} {
		cfg := flows.Config{
			Shards: tc.shards, MaxConns: tc.maxConns, Transitions: 8,
			TimeWait: 2 * time.Millisecond, HandshakeTimeout: time.Millisecond,
			ClosedTimeout: 50 * time.Microsecond, IdleTimeout: 3 * time.Millisecond,
			SweepEvery: tc.sweep,
		}
		seed := uint64(tc.shards*1000 + tc.maxConns)
		rng := rand.New(rand.NewPCG(seed, uint64(tc.tuples)))
		steps := randomSteps(rng, tc.tuples, tc.packets, tc.ticks)
		want := replay(cfg, steps, 0, 0, 0, tc.ticks)
		if len(want.retired) == 0 || len(want.flushed) == 0 || tc.ticks && want.events == 0 {
			t.Fatalf("traffic too tame: %d retired, %d flushed, %d events", len(want.retired), len(want.flushed), want.events)
		}
		for _, n := range tc.lanes {
			for _, split := range []uint64{0, uint64(tc.tuples / 2)} {
				name := fmt.Sprintf("shards=%d/max=%d/tuples=%d/ticks=%v/lanes=%d/split=%d", tc.shards, tc.maxConns, tc.tuples, tc.ticks, n, split)
				t.Run(name, func(t *testing.T) {
					got := replay(cfg, steps, n, split, split, tc.ticks) // loading ahead once split, as in a replay
					if got.opened != want.opened {
						t.Errorf("opened %d connections, Apply %d", got.opened, want.opened)
					}
					sameOutput(t, got.retired, want.retired, got.tags, want.tags)
					sameRecords(t, "flushed", got.flushed, want.flushed)
				})
			}
		}
	}
}

// step is one step of a capture: a packet, or (advance) a frame of other
// traffic at the packet's time, which only moves the clocks (and may make a
// sweep due), or (if tick is not zero) the clock moving to tick, or (sync)
// a Lanes.Sync, which Apply has no use for.
type step struct {
	p       flows.Packet
	advance bool
	tick    int64
	sync    bool
}

// randomSteps returns n packets of random traffic on tuples 4-tuples, with
// ticks and syncs among them if ticks is true.
func randomSteps(rng *rand.Rand, tuples, n int, ticks bool) []step {
	gen := tcpgen.New(rng, tuples)
	var steps []step
	var last int64
	for i := range n {
		steps = append(steps, step{p: gen.Next(), advance: i%7 == 3})
		last = steps[len(steps)-1].p.TS
		if !ticks {
			continue
		}
		switch rng.IntN(40) {
		case 0: // a second's tick, a little ahead of the packets
			steps = append(steps, step{tick: last + rng.Int64N(int64(500*time.Microsecond))})
		case 1: // a quiet spell: the clock runs on without packets
			for k := range 1 + rng.IntN(4) {
				steps = append(steps, step{tick: last + int64(k+1)*int64(time.Millisecond)})
			}
		case 2, 3:
			steps = append(steps, step{sync: true})
		}
	}
	return steps
}

// output is what a replay handed on.
type output struct {
	retired []flows.Record // retired records and events' records, in order
	tags    []string       // for each: "retire", or the event's kind and time
	events  int
	flushed []flows.Record
	opened  uint64
}

// replay applies steps to a table of cfg, with Table.Apply and Table.Tick
// if lanes is 0, else with that many Lanes, which split and load ahead at
// the given counts. With events, OnChange's events are kept too, in one
// stream with the retired records.
func replay(cfg flows.Config, steps []step, lanes int, split, touch uint64, events bool) output {
	var out output
	cfg.OnRetire = func(r []flows.Record) {
		for range r {
			out.tags = append(out.tags, "retire")
		}
		out.retired = append(out.retired, r...)
	}
	if events {
		cfg.OnChange = func(ev flows.Event) {
			out.events++
			out.tags = append(out.tags, fmt.Sprintf("%s at %d", ev.Kind, ev.TS))
			out.retired = append(out.retired, ev.Record)
		}
	}
	tab := flows.NewTable(cfg)
	apply, advance, tick, sync, done := tab.Apply, tab.Advance, tab.Tick, func() {}, func() {}
	if lanes > 0 {
		l := flows.NewLanes(tab, lanes)
		flows.SetLaneThresholds(l, split, touch)
		apply, advance, tick, sync, done = l.Apply, l.Advance, l.Tick, l.Sync, l.Close
	}
	for i := range steps {
		switch s := &steps[i]; {
		case s.tick != 0:
			tick(time.Unix(0, s.tick))
		case s.sync:
			sync()
		case s.advance:
			advance(s.p.TS)
		default:
			p := s.p // Apply must not keep the pointer
			apply(&p)
		}
	}
	done()
	out.flushed, out.opened = tab.Flush(), tab.Opened()
	return out
}

// sameOutput compares two streams of retired records and events, each
// record with its tag.
func sameOutput(t *testing.T, got, want []flows.Record, gotTags, wantTags []string) {
	t.Helper()
	if !slices.Equal(gotTags, wantTags) {
		for i := range min(len(gotTags), len(wantTags)) {
			if gotTags[i] != wantTags[i] {
				t.Fatalf("output %d is %s, Apply's %s (%d and %d in all)", i, gotTags[i], wantTags[i], len(gotTags), len(wantTags))
			}
		}
		t.Fatalf("%d outputs, Apply gave %d", len(gotTags), len(wantTags))
	}
	sameRecords(t, "retired and events", got, want)
}

// sameRecords compares records field by field, but for IDs, whose order
// alone must agree.
func sameRecords(t *testing.T, what string, got, want []flows.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, Apply gave %d", what, len(got), len(want))
	}
	gotID, wantID := map[uint64]uint64{}, map[uint64]uint64{} // ID -> the other run's ID
	for i := range got {
		g, w := got[i], want[i]
		if prev, ok := wantID[w.ID]; ok && prev != g.ID {
			t.Fatalf("%s %d: Apply's ID %d stands for %d and %d", what, i, w.ID, prev, g.ID)
		}
		if prev, ok := gotID[g.ID]; ok && prev != w.ID {
			t.Fatalf("%s %d: lane ID %d stands for %d and %d", what, i, g.ID, prev, w.ID)
		}
		wantID[w.ID], gotID[g.ID] = g.ID, w.ID
		g.ID, w.ID = 0, 0
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("%s %d differs:\n got %+v\nwant %+v", what, i, g, w)
		}
	}
	// IDs in the same order: sorted by Apply's, the lanes' rise too.
	ids := make([][2]uint64, 0, len(wantID))
	for w, g := range wantID {
		ids = append(ids, [2]uint64{w, g})
	}
	slices.SortFunc(ids, func(a, b [2]uint64) int { return cmp.Compare(a[0], b[0]) })
	for i := 1; i < len(ids); i++ {
		if ids[i][1] <= ids[i-1][1] {
			t.Fatalf("%s: Apply's IDs %d < %d, the lanes' %d >= %d", what, ids[i-1][0], ids[i][0], ids[i-1][1], ids[i][1])
		}
	}
}

// BenchmarkLanes compares Table.Apply with Lanes on packets of 500 k
// connections in random order, where a table update waits on memory:
// ns/op is per packet. The connections are opened before the timer starts.
func BenchmarkLanes(b *testing.B) {
	const conns = 500_000
	rng := rand.New(rand.NewPCG(1, 2))
	next := make([]uint32, conns) // each client's next sequence number
	ts := time.Unix(1e9, 0).UnixNano()
	packet := func(i int) flows.Packet {
		var p flows.Packet
		p.Tuple.SetV4([]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}, []byte{192, 0, 2, 1})
		p.Tuple.SrcPort, p.Tuple.DstPort = uint16(40000+i%20000), 80
		ts += 1000
		p.TS, p.Window, p.WScale, p.FrameLen = ts, 1000, -1, 154
		if next[i] == 0 {
			p.Flags, p.Seq, next[i] = flows.SYN, 1, 2
			return p
		}
		p.Flags, p.Seq, p.PayloadLen = flows.ACK|flows.PSH, next[i], 100
		next[i] += 100
		return p
	}
	opening := make([]flows.Packet, conns)
	for i := range opening {
		opening[i] = packet(i)
	}
	traffic := make([]flows.Packet, 1<<20)
	for i := range traffic {
		traffic[i] = packet(rng.IntN(conns))
	}
	for _, lanes := range []int{0, 2} {
		name := "apply"
		if lanes > 0 {
			name = fmt.Sprintf("lanes=%d", lanes)
		}
		b.Run(name, func(b *testing.B) {
			tab := flows.NewTable(flows.Config{})
			apply, done := tab.Apply, func() {}
			if lanes > 0 {
				l := flows.NewLanes(tab, lanes)
				apply, done = l.Apply, l.Close
			}
			for i := range opening {
				p := opening[i]
				apply(&p)
			}
			b.ResetTimer()
			for i := range b.N {
				p := traffic[i%len(traffic)]
				apply(&p)
			}
			done()
		})
	}
}

// FuzzLanes applies arbitrary packet sequences on 32 4-tuples with
// Table.Apply and with Lanes, and requires the same records in the same
// order, as TestLanesMatchApply does for random traffic; from a flag in the
// first byte, with ticks, syncs and events too.
func FuzzLanes(f *testing.F) {
	f.Add([]byte{0x02, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x12, 1, 0, 0, 0x10, 0, 0, 0, 0, 0x20})
	f.Add(make([]byte, 240))
	f.Add(append([]byte{0x20}, make([]byte, 240)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		cfg := flows.Config{
			Shards: 4, TimeWait: time.Second, ClosedTimeout: time.Second, IdleTimeout: 10 * time.Second,
			HandshakeTimeout: 5 * time.Second, SweepEvery: 250 * time.Millisecond, Transitions: 8,
		}
		if data[0]&1 == 1 { // bounded: evictions and limbo
			cfg.MaxConns = 6
		}
		lanes, split := 2+int(data[0]>>1&1), uint64(data[0]>>2&7)
		live := data[0]&0x20 != 0
		steps := fuzzSteps(data[1:], live)
		want := replay(cfg, steps, 0, 0, 0, live)
		got := replay(cfg, steps, lanes, split, 0, live)
		sameOutput(t, got.retired, want.retired, got.tags, want.tags)
		sameRecords(t, "flushed", got.flushed, want.flushed)
	})
}

// fuzzSteps makes a packet of each 12 bytes of b; with ticks, the last
// byte's top bits may make a tick or a sync after it.
func fuzzSteps(b []byte, ticks bool) []step {
	var steps []step
	var ts int64
	for ; len(b) >= 12; b = b[12:] {
		var p flows.Packet
		c4, s4 := []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}
		cp := 1000 + uint16(b[1]&15)
		if b[0]&1 == 1 {
			p.Tuple.SetV4(s4, c4)
			p.Tuple.SrcPort, p.Tuple.DstPort = 80, cp
		} else {
			p.Tuple.SetV4(c4, s4)
			p.Tuple.SrcPort, p.Tuple.DstPort = cp, 80
		}
		p.Flags = flows.Flags(b[2]) | flows.Flags(b[3]&1)<<8
		p.Seq = binary.BigEndian.Uint32(b[4:]) >> (b[1] >> 4)
		p.Ack = binary.BigEndian.Uint32(b[8:]) >> (b[1] >> 4)
		p.PayloadLen = uint32(b[3] >> 1)
		p.Window = uint16(b[10])
		p.WScale = int8(b[11]&15) - 1
		ts += int64(b[11]>>4) * int64(time.Second/8)
		p.TS, p.FrameLen = ts, 54+p.PayloadLen
		steps = append(steps, step{p: p})
		if !ticks {
			continue
		}
		switch b[0] >> 5 {
		case 1:
			steps = append(steps, step{sync: true})
		case 2, 3: // the clock runs on, by up to 2 s
			steps = append(steps, step{tick: ts + int64(b[0]>>1&15)*int64(time.Second/8)})
		}
	}
	return steps
}

// TestLanesLastConn: a lane looks the connection of a run of packets up
// once, and then uses it again while its shard's index is unchanged. When
// the connection leaves between two packets of the run (evicted, expired,
// flushed) and another takes its memory, the next packet must open a
// connection of its own, as Table.Apply does.
func TestLanesLastConn(t *testing.T) {
	seg := func(conn int, at time.Duration, n uint32) flows.Packet {
		p := flows.Packet{TS: int64(time.Second + at), Seq: 1000 + 10*n, Ack: 5000, PayloadLen: 10, FrameLen: 74, IPLen: 60,
			Window: 1000, WScale: -1, Flags: flows.PSH | flows.ACK, TTL: 64}
		p.Tuple.SetV4([]byte{10, 0, 0, 1}, []byte{10, 0, 0, 2})
		p.Tuple.SrcPort, p.Tuple.DstPort = uint16(40000+conn), 80
		return p
	}
	run := func(conn int, at time.Duration, n int) []step {
		var s []step
		for i := range n {
			s = append(s, step{p: seg(conn, at+time.Duration(i)*time.Microsecond, uint32(i))})
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		cfg   flows.Config
		steps []step
	}{
		{"evicted", flows.Config{Shards: 1, MaxConns: 1},
			slices.Concat(run(1, 0, 3), run(2, time.Millisecond, 1), run(1, 2*time.Millisecond, 3))}, // 2 takes 1's memory
		{"interleaved, one evicted", flows.Config{Shards: 1, MaxConns: 2}, // both remembered; 3 takes one's memory
			slices.Concat(run(1, 0, 1), run(2, 0, 1), run(1, 10*time.Microsecond, 1), run(2, 10*time.Microsecond, 1),
				run(3, time.Millisecond, 1), run(1, 2*time.Millisecond, 1), run(2, 2*time.Millisecond, 1))},
		{"expired", flows.Config{Shards: 1, IdleTimeout: time.Millisecond, SweepEvery: time.Millisecond},
			slices.Concat(run(1, 0, 3), run(2, 5*time.Millisecond, 3), run(2, 10*time.Millisecond, 1), run(1, 10*time.Millisecond, 3))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := replay(tc.cfg, tc.steps, 0, 0, 0, false)
			if len(want.retired) == 0 {
				t.Fatal("no connection left the table")
			}
			got := replay(tc.cfg, tc.steps, 1, 1<<30, 1<<30, false)
			if got.opened != want.opened {
				t.Errorf("opened %d connections, Apply %d", got.opened, want.opened)
			}
			sameOutput(t, got.retired, want.retired, got.tags, want.tags)
			sameRecords(t, "flushed", got.flushed, want.flushed)
		})
	}
	t.Run("flushed", func(t *testing.T) {
		var got, want []flows.Record
		for _, lanes := range []bool{false, true} {
			tab := flows.NewTable(flows.Config{Shards: 1})
			apply, sync := tab.Apply, func() {}
			if lanes {
				l := flows.NewLanes(tab, 1)
				apply, sync = l.Apply, l.Sync
			}
			var recs []flows.Record
			for i, s := range slices.Concat(run(1, 0, 3), run(2, time.Millisecond, 1), run(1, 2*time.Millisecond, 2)) {
				if i == 3 {
					sync()
					recs = append(recs, tab.Flush()...)
				}
				p := s.p
				apply(&p)
			}
			sync()
			recs = append(recs, tab.Flush()...)
			if lanes {
				got = recs
			} else {
				want = recs
			}
		}
		if len(want) != 3 {
			t.Fatalf("Apply gave %d records, want 3", len(want))
		}
		sameRecords(t, "flushed", got, want)
	})
}
