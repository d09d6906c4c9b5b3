package flows

import (
	"encoding/binary"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

// The IDs of a table's connections that have handed out 2^32 IDs, and
// 2^33. A conn keeps its ID's low 32 bits, and the table the high bits of
// the IDs it hands out (its epoch): the tests below check every ID against
// the count of connections opened (Table.Apply) or the number of the
// packet that opened it (Lanes), which is what a 64-bit ID in the conn
// would hold, and that only connections alive across a boundary keep
// their ID in a cold record.

// idRig applies packets to a table, directly or through lanes, and works
// out the IDs it must hand out on its own count.
type idRig struct {
	tab     *Table
	l       *Lanes
	applied uint64 // packets applied: the lanes' numbering
	opened  uint64 // connections opened: the table's
	want    map[uint16]uint64
}

func newIDRig(mode string) *idRig {
	r := &idRig{tab: NewTable(Config{Changes: true, Shards: 8}), want: map[uint16]uint64{}}
	switch mode {
	case "lanes":
		r.l = NewLanes(r.tab, 1)
	case "split lanes":
		r.l = NewLanes(r.tab, 2)
		r.l.splitAbove, r.l.touchAbove = 0, 0
	}
	return r
}

// startAt makes n the last ID handed out: the count of connections
// opened, or the number of the packet applied last. It is the test's
// hook: the table has not come that far by itself.
func (r *idRig) startAt(n uint64) {
	r.applied, r.opened = n, n
	if r.l == nil {
		r.tab.opened.Store(n)
		return
	}
	r.l.seq = n
	r.l.Sync() // the lanes' epoch starts here (endEpoch)
	r.l.maybeSplit()
}

// apply applies the packet from the client (from 'c') or the server of
// the connection whose client uses port, which opens the connection if
// opens is true.
func (r *idRig) apply(from byte, port uint16, flags Flags, seq, ack, n uint32, opens bool) {
	p := pkt(from, flags, seq, ack, n, ms(1))
	if from == 'c' {
		p.Tuple.SrcPort = port
	} else {
		p.Tuple.DstPort = port
	}
	r.applied++
	if opens {
		r.opened++
		r.want[port] = r.opened
		if r.l != nil {
			r.want[port] = r.applied
		}
	}
	if r.l != nil {
		r.l.Apply(&p)
		return
	}
	r.tab.Apply(&p)
}

func (r *idRig) sync() {
	if r.l != nil {
		r.l.Sync()
	}
}

// key returns the key of the connection whose client uses port.
func idKey(port uint16) Key {
	p := pkt('c', ACK, 0, 0, 0, 0)
	p.Tuple.SrcPort = port
	var k Key
	p.Tuple.fillKey(&k)
	return k
}

// hasCold reports whether the full connection of port has a cold record.
func (r *idRig) hasCold(t *testing.T, port uint16) bool {
	t.Helper()
	k := idKey(port)
	h := k.hash64()
	sh := &r.tab.shards[uint32(h)&r.tab.mask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.m.get(&k, h)
	if c == nil {
		t.Fatalf("port %d: no full connection", port)
	}
	return c.cold != 0
}

// check compares every connection's ID in a snapshot and through Lookup
// with the rig's, and the cold records of the full connections of ports
// with cold (true: one expected).
func (r *idRig) check(t *testing.T, cold map[uint16]bool) {
	t.Helper()
	r.sync()
	got := map[uint16]uint64{}
	for _, rec := range r.tab.Snapshot() {
		got[rec.Client.Port()] = rec.ID
	}
	for port, want := range r.want {
		if got[port] != want {
			t.Errorf("port %d: ID %#x in the snapshot, want %#x", port, got[port], want)
		}
		if _, ok := r.tab.Lookup(idKey(port), want); !ok {
			t.Errorf("port %d: Lookup finds no connection of ID %#x", port, want)
		}
		if _, ok := r.tab.Lookup(idKey(port), want^1<<32); ok {
			t.Errorf("port %d: Lookup finds ID %#x as %#x", port, want, want^1<<32)
		}
	}
	for port, want := range cold {
		if r.hasCold(t, port) != want {
			t.Errorf("port %d: cold record %v, want %v", port, !want, want)
		}
	}
}

// The clients' ports of the connections of TestIDEpochs, named by the
// order they open in.
const (
	portA uint16 = 40001 + iota
	portB
	portC
	portD
	portE
	portF
	portG
	portH
)

// TestIDEpochs opens connections on either side of 2^32 IDs and of 2^33,
// with Table.Apply and with lanes (applying at once, and in batches on two
// goroutines), all at the same capture time, so that the flush orders them
// by ID alone. A is alive across both boundaries, B is a half-open
// connection (64-bit ID of its own) made full after the first, C opens at
// 2^32 and lives across 2^33, D opens after 2^32 and gets a cold record of
// its own later (a retransmission), E is half-open throughout, F and G open
// before 2^33 and H at it. The views' cuts (EachSnapshotUpTo, EachChange)
// must fall between the right ones.
func TestIDEpochs(t *testing.T) { //nolint:funlen // one story, step by step
	for _, mode := range []string{"table", "lanes", "split lanes"} {
		t.Run(mode, func(t *testing.T) {
			r := newIDRig(mode)
			if r.l != nil {
				defer r.l.Close()
			}
			r.startAt(1<<32 - 3)
			r.apply('c', portA, PSH|ACK, 1001, 5001, 100, true) // 2^32-2
			r.apply('c', portB, SYN, 1000, 0, 0, true)          // 2^32-1
			r.apply('c', portC, PSH|ACK, 1001, 5001, 100, true) // 2^32
			r.apply('s', portA, ACK, 5001, 1101, 0, false)
			r.apply('s', portB, SYN|ACK, 5000, 1001, 0, false)
			r.apply('c', portD, PSH|ACK, 1001, 5001, 100, true)
			r.check(t, map[uint16]bool{portA: true, portB: true, portC: false, portD: false})
			r.apply('c', portD, PSH|ACK, 1001, 5001, 100, false) // resent: D's own cold record
			r.apply('c', portE, SYN, 1000, 0, 0, true)
			r.check(t, map[uint16]bool{portA: true, portB: true, portC: false, portD: true})
			if r.want[portC] != 1<<32 {
				t.Fatalf("C opened as %#x: the test does not straddle 2^32", r.want[portC])
			}
			checkCuts(t, r)

			r.startAt(1<<33 - 3)
			r.apply('c', portF, PSH|ACK, 1001, 5001, 100, true) // 2^33-2
			r.apply('c', portG, PSH|ACK, 1001, 5001, 100, true) // 2^33-1
			r.apply('c', portH, PSH|ACK, 1001, 5001, 100, true) // 2^33
			r.apply('c', portA, PSH|ACK, 1101, 5001, 100, false)
			r.apply('s', portC, ACK, 5001, 1101, 0, false)
			r.check(t, map[uint16]bool{portA: true, portB: true, portC: true, portD: true, portF: true, portG: true, portH: false})
			if r.want[portH] != 1<<33 {
				t.Fatalf("H opened as %#x: the test does not straddle 2^33", r.want[portH])
			}

			var ids []uint64
			var ports []uint16
			for _, rec := range r.tab.Flush() {
				ids, ports = append(ids, rec.ID), append(ports, rec.Client.Port())
			}
			if want := []uint16{portA, portB, portC, portD, portE, portF, portG, portH}; !slices.Equal(ports, want) {
				t.Errorf("flushed in the order of ports %v (IDs %#x), want %v", ports, ids, want)
			}
			for i, port := range ports {
				if ids[i] != r.want[port] {
					t.Errorf("port %d flushed with ID %#x, want %#x", port, ids[i], r.want[port])
				}
			}
		})
	}
}

// checkCuts takes a view's snapshot cut at B (the last ID below 2^32),
// then follows the changes cut at C (2^32), then at the end: each must
// give the connections up to its cut, and keep the others for the next.
func checkCuts(t *testing.T, r *idRig) {
	t.Helper()
	var got []uint16
	r.tab.EachSnapshotUpTo(r.want[portB], func(rec *Record) { got = append(got, rec.Client.Port()) })
	slices.Sort(got)
	if want := []uint16{portA, portB}; !slices.Equal(got, want) {
		t.Errorf("snapshot up to %#x: ports %v, want %v", r.want[portB], got, want)
	}
	for _, cut := range []struct {
		upto uint64
		want []uint16
	}{{r.want[portC], []uint16{portC}}, {r.want[portE], []uint16{portD, portE}}} {
		got = got[:0]
		ok := r.tab.EachChange(cut.upto, func(uint64) {}, func(rec *Record) { got = append(got, rec.Client.Port()) })
		slices.Sort(got)
		if !ok || !slices.Equal(got, cut.want) {
			t.Errorf("changes up to %#x: ports %v (complete %v), want %v", cut.upto, got, ok, cut.want)
		}
	}
}

// TestIDEpochFromGoroutines opens connections from four goroutines at
// once (Table.Apply, which is safe for concurrent use) across 2^32: each
// connection must keep the ID it opened with (the event of its opening
// has it), the IDs must be those handed out, each once, and the epoch
// must move on without a deadlock.
func TestIDEpochFromGoroutines(t *testing.T) {
	const per, workers = 64, 4
	var mu sync.Mutex
	opened := map[uint16]uint64{}
	tab := NewTable(Config{Shards: 8, OnChange: func(ev Event) {
		if ev.Kind == EventOpen {
			mu.Lock()
			opened[ev.Record.Client.Port()] = ev.Record.ID
			mu.Unlock()
		}
	}})
	const start = 1<<32 - per*workers/2
	tab.opened.Store(start)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				p := pkt('c', PSH|ACK, 1001, 5001, 100, ms(1))
				p.Tuple.SrcPort = uint16(20000 + w*per + i)
				tab.Apply(&p)
			}
		})
	}
	wg.Wait()
	recs := tab.Snapshot()
	var ids []uint64
	for _, rec := range recs {
		if rec.ID != opened[rec.Client.Port()] {
			t.Errorf("port %d: ID %#x, opened as %#x", rec.Client.Port(), rec.ID, opened[rec.Client.Port()])
		}
		ids = append(ids, rec.ID)
	}
	slices.Sort(ids)
	for i, id := range ids {
		if want := uint64(start + 1 + i); id != want {
			t.Fatalf("IDs %#x...: the %dth is %#x, want %#x", ids[0], i, id, want)
		}
	}
	if len(ids) != per*workers {
		t.Fatalf("%d connections, want %d", len(ids), per*workers)
	}
	if e := tab.cfg.cold.epoch.Load(); e != 1 {
		t.Errorf("epoch %d after 2^32 IDs, want 1", e)
	}
}

// TestColdRecordsAcross2To32 opens 3000 connections, 1000 of them before
// the table's 2^32nd ID, with Table.Apply and through two lanes, which
// take them in batches on two goroutines: the 1000 alive across the
// boundary each get a cold record for their ID, the 2000 after it none.
func TestColdRecordsAcross2To32(t *testing.T) {
	const before, after = 1000, 2000
	for _, mode := range []string{"table", "split lanes"} {
		t.Run(mode, func(t *testing.T) {
			r := newIDRig(mode)
			r.startAt(1<<32 - 1 - before)
			for i := range before + after {
				p := pkt('c', PSH|ACK, 1001, 5001, 100, ms(1))
				binary.BigEndian.PutUint32(p.Tuple.Src[12:], uint32(i))
				if r.l != nil {
					r.l.Apply(&p)
				} else {
					r.tab.Apply(&p)
				}
			}
			if r.l != nil {
				r.l.Close()
			}
			var old, cold int
			r.tab.eachShardLocked(func(sh *shard) {
				sh.m.eachConn(func(c *conn) {
					if id := c.ident(r.tab.cfg.cold); id < 1<<32 {
						old++
					}
					if c.cold != 0 {
						cold++
					}
				})
			})
			if old != before || cold != before {
				t.Errorf("%d connections of IDs below 2^32, %d cold records: want %d of each", old, cold, before)
			}
		})
	}
}

// TestIDEpochZeekTimers runs Zeek's inactivity timers of two connections
// opened either side of 2^32 IDs, one alive across it: a timer fires only
// for the connection of the ID it was queued with (zeekFire), so each
// must end with its own ID, and none be left.
func TestIDEpochZeekTimers(t *testing.T) {
	var out []Record
	tab := NewTable(Config{Zeek: true, OnRetire: func(recs []Record) { out = append(out, recs...) }})
	tab.opened.Store(1<<32 - 2)
	for i, port := range []uint16{portA, portC, portA} {
		p := pkt('c', PSH|ACK, 1001+100*uint32(i/2), 5001, 100, ms(1+i))
		p.Tuple.SrcPort = port
		tab.Apply(&p)
	}
	tab.Tick(t0.Add(time.Hour))
	got := map[uint16]uint64{}
	for _, r := range out {
		got[r.Client.Port()] = r.ID
	}
	if want := map[uint16]uint64{portA: 1<<32 - 1, portC: 1 << 32}; !maps.Equal(got, want) || tab.Len() != 0 {
		t.Errorf("retired %#v with %d left, want %#v", got, tab.Len(), want)
	}
}

// TestIDEpochReplacedInPlace opens the connection of ID 2^32 with a SYN
// that replaces the 4-tuple's connection of ID 2^32 - 1, in its memory and
// its index slot, while Table.Apply moves the epoch on (newIDEpoch, from
// newID with the shard's lock held): the old one must retire with its ID,
// and the new one, of the new epoch, must have no cold record.
func TestIDEpochReplacedInPlace(t *testing.T) {
	var out []Record
	r := &idRig{tab: NewTable(Config{OnRetire: func(recs []Record) { out = append(out, recs...) }}), want: map[uint16]uint64{}}
	r.startAt(1<<32 - 2)
	r.apply('c', portA, PSH|ACK, 1001, 5001, 100, true)
	old := r.want[portA]
	r.apply('c', portA, SYN, 77777, 0, 0, true)
	if len(out) != 1 || out[0].ID != old || out[0].End != EndReplaced {
		t.Errorf("retired %+v, want the connection of ID %#x, replaced", out, old)
	}
	r.check(t, map[uint16]bool{portA: false})
	if r.want[portA] != 1<<32 {
		t.Fatalf("the new connection opened as %#x, want 2^32", r.want[portA])
	}
}
