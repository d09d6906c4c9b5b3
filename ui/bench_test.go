package ui

import (
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
	"github.com/flowtrack/flowtrack/sockets"
)

// bigTable is a flow table of a million connections, built once: clients
// 10.x.y.z on 60 server ports of 40 servers, in a mix of states.
var bigTable = sync.OnceValue(func() *flows.Table {
	const n = 1_000_000
	tab := flows.NewTable(flows.Config{Changes: true})
	send := sender(tab)
	base := t0.UnixNano()
	for i := range n {
		c := [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
		s := [4]byte{192, 168, 0, byte(i % 40)}
		cp, sp := uint16(32768+i%28000), uint16(80+i%60)
		ts := base + int64(i)*1000
		send(c, s, cp, sp, flows.SYN, 1000, 0, 0, ts)
		switch i % 4 {
		case 0: // SYN_SENT
		case 1: // refused
			send(s, c, sp, cp, flows.RST|flows.ACK, 0, 1001, 0, ts+10)
		default: // established, with data
			send(s, c, sp, cp, flows.SYN|flows.ACK, 5000, 1001, 0, ts+10)
			send(c, s, cp, sp, flows.ACK|flows.PSH, 1001, 5001, uint32(i%1400), ts+20)
			if i%4 == 3 { // the client closes
				send(c, s, cp, sp, flows.FIN|flows.ACK, 1001+uint32(i%1400), 5001, 0, ts+30)
			}
		}
	}
	return tab
})

// BenchmarkFrame measures one refresh of the UI with a million
// connections: the builder's snapshot, merge, filter and sort, then the
// drawing of the visible page of the connection table (200x50). The
// resort cases are what a new sort or filter costs (no new snapshot), and
// draw what redrawing the page costs (a key press, scrolling);
// flows-snapshot-alone is the part of a snapshot frame spent in
// flows.Table.EachSnapshot. The incremental cases are what the UI does
// once a table is large (incremental.go): each frame, n established
// connections get a packet and n/20 new ones open, and the frame is built
// from the table's changes; they run last, as they add to the table.
func BenchmarkFrame(b *testing.B) {
	tab := bigTable()
	// One builder for every case, its double buffers warmed up once:
	// each case then starts with one untimed frame of its own.
	bl := newBuilder(&Config{Table: tab}, func() time.Time { return t0 })
	for range 2 {
		bl.commit(bl.full(&request{sort: colAge, desc: true}))
	}
	lookup := socketsLookup(b)
	for _, bc := range frameCases {
		b.Run(bc.name, func(b *testing.B) {
			if bc.local {
				bl.local = lookup
				defer func() { bl.local = nil }()
			}
			benchFrame(b, bl, tab, bc)
		})
	}
}

// frameCase is one case of BenchmarkFrame.
type frameCase struct {
	name  string
	mode  int // 4: incremental, 3: flows' EachSnapshot alone, 2: new snapshot, 1: new sort or filter, 0: draw only
	n     int // for mode 4, connections changed per frame
	req   request
	local bool // with the Process column's lookups
}

var frameCases = []frameCase{
	{"flows-snapshot-alone", 3, 0, request{}, false},
	{"snapshot/by-age", 2, 0, request{sort: colAge, desc: true}, false},
	{"snapshot/by-bytes", 2, 0, request{sort: colBytes, desc: true}, false},
	{"snapshot/by-server", 2, 0, request{sort: colServer}, false},
	{"snapshot/filtered", 2, 0, request{sort: colAge, desc: true, filter: "192.168.0.7:8 wait"}, false},
	{"snapshot/with-process", 2, 0, request{sort: colAge, desc: true}, true},
	{"resort/by-bytes", 1, 0, request{sort: colBytes, desc: true}, false},
	{"resort/filtered", 1, 0, request{sort: colAge, desc: true, filter: "192.168.0.7:8 wait"}, false},
	{"resort/services", 1, 0, request{view: viewServices, sort: colAge, svcSort: scConns, svcDesc: true}, false},
	{"draw", 0, 0, request{sort: colAge, desc: true}, false},
	{"incremental/1k-changed/by-age", 4, 1000, request{sort: colAge, desc: true}, false},
	{"incremental/10k-changed/by-age", 4, 10_000, request{sort: colAge, desc: true}, false},
	{"incremental/50k-changed/by-age", 4, 50_000, request{sort: colAge, desc: true}, false},
	{"incremental/10k-changed/by-rate", 4, 10_000, request{sort: colRate, desc: true}, false},
	{"incremental/10k-changed/filtered", 4, 10_000, request{sort: colAge, desc: true, filter: "192.168.0.6:8 est"}, false},
	{"incremental/10k-changed/services", 4, 10_000, request{view: viewServices, sort: colAge, desc: true, svcSort: scConns, svcDesc: true}, false},
}

// socketsLookup is the Process column's lookup of a live capture: each
// row looked up in this host's sockets, as main's does (two lookups, both
// missing: the million connections are not this host's).
func socketsLookup(b *testing.B) local.Lookup {
	res := sockets.New()
	if err := res.Refresh(); err != nil {
		b.Log(err)
	}
	return func(r *flows.Record) local.Info {
		c, cok := res.Lookup(r.Client, r.Server)
		s, sok := res.Lookup(r.Server, r.Client)
		var l local.Info
		if cok {
			l.PID, l.Process = c.PID, c.Comm
		} else if sok {
			l.PID, l.Process = s.PID, s.Comm
		}
		return l
	}
}

// benchFrame runs one case: its untimed first frame, then frames as the
// case's mode builds them, each drawn on a 200x50 screen.
func benchFrame(b *testing.B, bl *builder, tab *flows.Table, bc frameCase) {
	u := &ui{theme: newTheme(false)}
	u.conns = newConnTable(u)
	u.conns.SetRect(0, 0, 200, 50)
	screen := tcell.NewSimulationScreen("UTF-8")
	if err := screen.Init(); err != nil {
		b.Fatal(err)
	}
	defer screen.Fini()
	screen.SetSize(200, 50)
	req := bc.req
	traffic := func() {}
	switch bc.mode {
	case 2:
		bl.commit(bl.full(&req))
	case 4:
		bl.inc.min, bl.inc.fullEvery = 0, time.Hour
		bl.commit(bl.full(&req))
		traffic = frameTraffic(tab, bc.n)
		traffic()
		bl.commit(bl.refresh(&req)) // the first copies the rows whole
	default:
		bl.commit(bl.derived(&req))
	}
	fulls := bl.inc.fulls
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if bc.mode == 3 {
			n := 0
			tab.EachSnapshot(func(*flows.Record) { n++ })
			continue
		}
		f := bl.shown
		switch bc.mode {
		case 2:
			f = bl.full(&req)
		case 1:
			f = bl.derived(&req)
		case 4:
			b.StopTimer()
			traffic()
			b.StartTimer()
			f = bl.refresh(&req)
		}
		bl.commit(f)
		u.frame = f
		u.conns.setFrame(f)
		u.followConn()
		u.conns.Draw(screen)
	}
	b.ReportMetric(float64(len(bl.shown.order)), "rows")
	if bc.mode == 4 && bl.inc.fulls != fulls {
		b.Errorf("%d full frames among the incremental ones", bl.inc.fulls-fulls)
	}
}

// sender returns a function that applies one IPv4 segment to tab.
func sender(tab *flows.Table) func(src, dst [4]byte, sp, dp uint16, flags flows.Flags, seq, ack, length uint32, ts int64) {
	var p flows.Packet
	return func(src, dst [4]byte, sp, dp uint16, flags flows.Flags, seq, ack, length uint32, ts int64) {
		p = flows.Packet{Flags: flags, Seq: seq, Ack: ack, PayloadLen: length, FrameLen: 54 + length, Window: 1000, WScale: -1, TS: ts}
		p.Tuple.SetV4(src[:], dst[:])
		p.Tuple.SrcPort, p.Tuple.DstPort = sp, dp
		tab.Apply(&p)
	}
}

// frameTraffic returns a function that plays one frame's worth of traffic
// on bigTable's connections: a data segment on each of n established
// connections, taken in turn, and n/20 new handshakes, 100 ms of capture
// time after the last frame's.
func frameTraffic(tab *flows.Table, n int) func() {
	send := sender(tab)
	ts := tab.Now().UnixNano()
	next, fresh := 0, 0
	sent := map[int]uint32{}
	return func() {
		ts += int64(100 * time.Millisecond)
		for range n {
			i := 4*next + 2 // established, not closing (see bigTable)
			next = (next + 1) % 250_000
			c := [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
			s := [4]byte{192, 168, 0, byte(i % 40)}
			cp, sp := uint16(32768+i%28000), uint16(80+i%60)
			seq := 1001 + uint32(i%1400) + sent[i]
			send(c, s, cp, sp, flows.ACK|flows.PSH, seq, 5001, 500, ts)
			sent[i] += 500
		}
		for range n / 20 {
			i := 1<<24 + fresh
			fresh++
			c := [4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)}
			send(c, [4]byte{192, 168, 1, 1}, uint16(32768+fresh%28000), 443, flows.SYN, 1, 0, 0, ts)
		}
	}
}
