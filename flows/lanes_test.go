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
// but must sort the same way.
func TestLanesMatchApply(t *testing.T) {
	for _, tc := range []struct {
		shards, maxConns, tuples, packets int
		sweep                             time.Duration
		lanes                             []int
	}{
		{8, 0, 40, 6000, 100 * time.Microsecond, []int{1, 2, 3, 5}},
		{8, 12, 40, 6000, 100 * time.Microsecond, []int{1, 2, 3, 5}}, // evictions, limbo
		{8, 12, 40, 6000, time.Second, []int{2, 3}},                  // long epochs: lanes' records merge
		{16, 0, 1000, 8000, time.Millisecond, []int{2, 3}},
		{1, 0, 40, 5000, 100 * time.Microsecond, []int{2}}, // one shard: one lane
	} {
		cfg := flows.Config{
			Shards: tc.shards, MaxConns: tc.maxConns, Transitions: 8,
			TimeWait: 2 * time.Millisecond, HandshakeTimeout: time.Millisecond,
			ClosedTimeout: 50 * time.Microsecond, IdleTimeout: 3 * time.Millisecond,
			SweepEvery: tc.sweep,
		}
		seed := uint64(tc.shards*1000 + tc.maxConns)
		gen := tcpgen.New(rand.New(rand.NewPCG(seed, uint64(tc.tuples))), tc.tuples)
		packets := make([]flows.Packet, tc.packets)
		for i := range packets {
			packets[i] = gen.Next()
		}
		wantR, wantF, wantN := replay(cfg, packets, 0, 0, 0)
		if len(wantR) == 0 || len(wantF) == 0 {
			t.Fatalf("traffic too tame: %d retired, %d flushed", len(wantR), len(wantF))
		}
		for _, n := range tc.lanes {
			for _, split := range []uint64{0, uint64(tc.tuples / 2)} {
				name := fmt.Sprintf("shards=%d/max=%d/tuples=%d/lanes=%d/split=%d", tc.shards, tc.maxConns, tc.tuples, n, split)
				t.Run(name, func(t *testing.T) {
					gotR, gotF, gotN := replay(cfg, packets, n, split, split) // loading ahead once split, as in a replay
					if gotN != wantN {
						t.Errorf("opened %d connections, Apply %d", gotN, wantN)
					}
					sameRecords(t, "retired", gotR, wantR)
					sameRecords(t, "flushed", gotF, wantF)
				})
			}
		}
	}
}

// replay applies packets to a table of cfg, with Table.Apply if lanes is 0,
// else with that many Lanes, which split and load ahead at the given
// counts. It returns the records retired on the way, those flushed, and
// how many connections were opened.
func replay(cfg flows.Config, packets []flows.Packet, lanes int, split, touch uint64) (retired, flushed []flows.Record, opened uint64) {
	cfg.OnRetire = func(r []flows.Record) { retired = append(retired, r...) }
	tab := flows.NewTable(cfg)
	// Some packets stand for frames of other traffic, which only move
	// the clocks (and may make a sweep due).
	tick := func(i int) bool { return i%7 == 3 }
	if lanes == 0 {
		for i := range packets {
			if tick(i) {
				tab.Advance(packets[i].TS)
				continue
			}
			tab.Apply(&packets[i])
		}
	} else {
		l := flows.NewLanes(tab, lanes)
		flows.SetLaneThresholds(l, split, touch)
		for i := range packets {
			if tick(i) {
				l.Advance(packets[i].TS)
				continue
			}
			p := packets[i] // Apply must not keep the pointer
			l.Apply(&p)
		}
		l.Close()
	}
	return retired, tab.Flush(), tab.Opened()
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
// order, as TestLanesMatchApply does for random traffic.
func FuzzLanes(f *testing.F) {
	f.Add([]byte{0x02, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x12, 1, 0, 0, 0x10, 0, 0, 0, 0, 0x20})
	f.Add(make([]byte, 240))
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
		var ps []flows.Packet
		var ts int64
		for b := data[1:]; len(b) >= 12; b = b[12:] {
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
			ps = append(ps, p)
		}
		wantR, wantF, _ := replay(cfg, ps, 0, 0, 0)
		gotR, gotF, _ := replay(cfg, ps, lanes, split, 0)
		sameRecords(t, "retired", gotR, wantR)
		sameRecords(t, "flushed", gotF, wantF)
	})
}
