package flows

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
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
			cfg := Config{
				Shards: tc.shards, MaxConns: tc.maxConns, Changes: true,
				TimeWait: time.Hour, HandshakeTimeout: time.Hour,
				ClosedTimeout: 50 * time.Microsecond, IdleTimeout: 3 * time.Millisecond,
				SweepEvery: 100 * time.Microsecond,
			}
			tab := NewTable(cfg)
			if tc.name == "overflow" {
				tab.chgMax = 64
			}
			rng := rand.New(rand.NewPCG(uint64(tc.maxConns), uint64(tc.tuples)))
			view := map[uint64]Record{}
			ts := time.Unix(1e9, 0).UnixNano()
			seqs := map[[2]int]uint32{}
			full, listed := 0, 0
			for cp := range tc.checkpnts {
				burst := 12
				if tc.name == "overflow" && cp%4 == 0 {
					burst = 200
				}
				for range 1 + rng.IntN(burst) {
					tu := rng.IntN(tc.tuples)
					fromServer := rng.IntN(2) == 1
					var p Packet
					c4 := [4]byte{10, 0, byte(tu >> 8), byte(tu)}
					s4 := [4]byte{10, 1, 0, 1}
					cp, sp := uint16(40000+tu), uint16(80)
					if fromServer {
						p.Tuple.SetV4(s4[:], c4[:])
						p.Tuple.SrcPort, p.Tuple.DstPort = sp, cp
					} else {
						p.Tuple.SetV4(c4[:], s4[:])
						p.Tuple.SrcPort, p.Tuple.DstPort = cp, sp
					}
					dir := [2]int{tu, int(b2i(fromServer))}
					seq := seqs[dir]
					switch rng.IntN(10) {
					case 0, 1: // a SYN: a new connection, or one resent
						if fromServer {
							p.Flags = SYN | ACK
						} else {
							p.Flags = SYN
						}
						if rng.IntN(3) > 0 {
							seq = rng.Uint32()
						}
					case 2:
						p.Flags = FIN | ACK
					case 3:
						p.Flags = RST
					default:
						p.Flags = ACK
						p.PayloadLen = uint32(rng.IntN(3) * 100)
					}
					p.Seq = seq
					p.Ack = seqs[[2]int{tu, 1 - dir[1]}]
					seqs[dir] = seq + p.PayloadLen + uint32(b2i(p.Flags&(SYN|FIN) != 0))
					p.Window, p.WScale = 1000, -1
					ts += int64(rng.IntN(4)) * int64(10*time.Microsecond)
					p.TS, p.FrameLen = ts, 54+p.PayloadLen
					tab.Apply(&p)
				}
				upto := tab.Opened()
				if cp%3 == 1 {
					upto -= uint64(rng.IntN(3)) // some new ones wait for the next call
				}
				ok := tab.EachChange(upto,
					func(id uint64) { delete(view, id) },
					func(r *Record) {
						if r.ID > upto {
							t.Fatalf("record %d above the mark %d", r.ID, upto)
						}
						view[r.ID] = *r
						listed++
					})
				if !ok {
					full++
					clear(view)
					tab.EachSnapshot(func(r *Record) { view[r.ID] = *r })
					continue
				}
				if upto != tab.Opened() {
					continue
				}
				snap := map[uint64]Record{}
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
