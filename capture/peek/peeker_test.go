package peek

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/flowtrack/flowtrack/flows"
)

// conv drives a Peeker and a flows.Table with the same hand-built
// segments, so that the connections named are the ones flows tracks.
type conv struct {
	t     *testing.T
	k     *Peeker
	table *flows.Table
	recs  []flows.Record
	ts    int64
}

func newConv(t *testing.T, cfg Config) *conv {
	c := &conv{t: t, k: New(cfg), ts: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()}
	c.table = flows.NewTable(flows.Config{OnRetire: func(r []flows.Record) { c.recs = append(c.recs, r...) }})
	return c
}

// endpoints of one connection: client and server address:port.
type ends struct{ cl, sv netip.AddrPort }

func tuple(from, to netip.AddrPort) flows.Tuple {
	var t flows.Tuple
	if from.Addr().Is4() {
		a, b := from.Addr().As4(), to.Addr().As4()
		t.SetV4(a[:], b[:])
	} else {
		a, b := from.Addr().As16(), to.Addr().As16()
		t.SetV6(a[:], b[:])
	}
	t.SrcPort, t.DstPort = from.Port(), to.Port()
	return t
}

// seg sends one segment, dt after the previous one; toServer picks the
// direction.
func (c *conv) seg(e ends, toServer bool, fl flows.Flags, seq, ack uint32, payload []byte, dt time.Duration) {
	c.ts += int64(dt)
	p := flows.Packet{TS: c.ts, Seq: seq, Ack: ack, Flags: fl, PayloadLen: uint32(len(payload)), FrameLen: uint32(54 + len(payload)), Window: 65535, WScale: -1}
	if toServer {
		p.Tuple = tuple(e.cl, e.sv)
	} else {
		p.Tuple = tuple(e.sv, e.cl)
	}
	c.k.TCP(&p, payload)
	c.table.Apply(&p)
	// TCP skips its probe when no slot is in use: the count must be exact.
	used := 0
	for _, tag := range c.k.tags {
		if tag != 0 {
			used++
		}
	}
	if used != c.k.live {
		c.t.Fatalf("%d slots in use, the Peeker counts %d", used, c.k.live)
	}
	// and skips it for a set whose bit in inUse is clear: the bits must be
	// exact too.
	for set := range len(c.k.tags) / pendingWays {
		busy := [pendingWays]uint32(c.k.tags[set*pendingWays:]) != [pendingWays]uint32{}
		if bit := c.k.inUse[set/64]&(1<<(set%64)) != 0; bit != busy {
			c.t.Fatalf("set %d: in use %v, its bit says %v", set, busy, bit)
		}
	}
}

// handshake opens a connection with client ISN isn and server ISN 9000.
func (c *conv) handshake(e ends, isn uint32) {
	c.seg(e, true, flows.SYN, isn, 0, nil, time.Millisecond)
	c.seg(e, false, flows.SYN|flows.ACK, 9000, isn+1, nil, time.Millisecond)
	c.seg(e, true, flows.ACK, isn+1, 9001, nil, time.Millisecond)
}

// names flushes the table and returns each record's name, in start order.
func (c *conv) names() []Name {
	c.k.Flush()
	c.table.FlushEach(func(b []flows.Record) { c.recs = append(c.recs, b...) })
	flows.SortByStart(c.recs)
	out := make([]Name, len(c.recs))
	for i := range c.recs {
		out[i] = c.k.Store().Lookup(&c.recs[i])
	}
	return out
}

func (c *conv) dns(msg []byte, dt time.Duration) {
	c.ts += int64(dt)
	c.k.DNS(c.ts, msg, false)
}

var (
	client = netip.MustParseAddrPort("10.0.0.2:40000")
	web    = netip.MustParseAddrPort("198.51.100.7:443")
)

func sameNames(t *testing.T, got, want []Name) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d names %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].Server != want[i].Server || got[i].Source != want[i].Source || got[i].ALPN != want[i].ALPN ||
			got[i].ECH != want[i].ECH || !slices.Equal(got[i].Chain, want[i].Chain) {
			t.Errorf("connection %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestHelloOverSegments sends a real post-quantum ClientHello in two and
// in five segments, in order, out of order and with a retransmission.
func TestHelloOverSegments(t *testing.T) {
	raw := clientHello(t, &tls.Config{ServerName: "pq.example", NextProtos: []string{"h2", "http/1.1"}, CurvePreferences: []tls.CurveID{tls.X25519MLKEM768}})
	want := Name{Server: "pq.example", Source: SourceSNI, ALPN: "h2,http/1.1"}
	cuts := func(n int) [][2]int {
		var out [][2]int
		for i := 0; i < n; i++ {
			out = append(out, [2]int{len(raw) * i / n, len(raw) * (i + 1) / n})
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		order []int
		parts [][2]int
	}{
		{"two in order", []int{0, 1}, cuts(2)},
		{"two reversed", []int{1, 0}, cuts(2)},
		{"five, one resent", []int{0, 1, 1, 2, 3, 4}, cuts(5)},
		{"five shuffled", []int{3, 0, 4, 2, 1}, cuts(5)},
		{"overlapping resend", []int{0, 1}, [][2]int{{0, 700}, {300, len(raw)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConv(t, Config{})
			e := ends{client, web}
			c.handshake(e, 1000)
			for _, i := range tc.order {
				p := tc.parts[i]
				c.seg(e, true, flows.ACK|flows.PSH, 1001+uint32(p[0]), 9001, raw[p[0]:p[1]], time.Millisecond)
			}
			sameNames(t, c.names(), []Name{want})
			if c.k.busy != 0 {
				t.Errorf("%d reassembly buffers still taken", c.k.busy)
			}
		})
	}
}

// TestHelloCutBySnaplen: a ClientHello whose segment the snapshot length
// cut is read as far as it was captured, at once.
func TestHelloCutBySnaplen(t *testing.T) {
	raw := clientHello(t, &tls.Config{ServerName: "cut.example"})
	c := newConv(t, Config{})
	e := ends{client, web}
	c.handshake(e, 1000)
	p := flows.Packet{TS: c.ts + 1, Tuple: tuple(client, web), Seq: 1001, Ack: 9001, Flags: flows.ACK, PayloadLen: uint32(len(raw))}
	c.k.TCP(&p, raw[:200]) // SNI is early in crypto/tls's hello
	c.table.Apply(&p)
	if c.k.busy != 0 {
		t.Fatal("a cut segment must not wait for more")
	}
	sameNames(t, c.names(), []Name{{Server: "cut.example", Source: SourceSNI}})
}

func dnsAnswer(t testing.TB, q string, chain []string, addr netip.Addr, ttl uint32) []byte {
	return response(t, q, func(b *dnsmessage.Builder) {
		for i := 0; i+1 < len(chain); i++ {
			_ = b.CNAMEResource(rh(chain[i]+".", ttl), dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(chain[i+1] + ".")})
		}
		_ = b.AResource(rh(chain[len(chain)-1]+".", ttl), dnsmessage.AResource{A: addr.As4()})
	})
}

// TestPrecedence: SNI over Host over DNS, a CNAME chain's head, ECH, and
// the name of each incarnation of a reused 4-tuple.
func TestPrecedence(t *testing.T) {
	c := newConv(t, Config{})
	wiki := []string{"en.wikipedia.org", "dyna.wikimedia.org"}
	c.dns(dnsAnswer(t, "en.wikipedia.org.", wiki, web.Addr(), 300), 0)

	e := ends{client, web}
	c.handshake(e, 1000) // 1: TLS with a server name from the DNS chain
	c.seg(e, true, flows.ACK|flows.PSH, 1001, 9001, clientHello(t, &tls.Config{ServerName: "en.wikipedia.org"}), time.Millisecond)
	c.seg(e, true, flows.ACK|flows.FIN, 5000, 9001, nil, time.Millisecond)
	c.seg(e, false, flows.ACK|flows.FIN, 9001, 5001, nil, time.Millisecond)
	c.seg(e, true, flows.ACK, 5001, 9002, nil, time.Millisecond)

	c.handshake(e, 70000) // 2: the same 4-tuple, a new connection: SSH says no name, DNS does
	c.seg(e, true, flows.ACK|flows.PSH, 70001, 9001, []byte("SSH-2.0-OpenSSH_9.6\r\n"), time.Millisecond)

	e3 := ends{netip.MustParseAddrPort("10.0.0.2:40001"), netip.MustParseAddrPort("198.51.100.7:80")}
	c.handshake(e3, 5) // 3: HTTP Host over DNS
	c.seg(e3, true, flows.ACK|flows.PSH, 6, 9001, []byte("GET / HTTP/1.1\r\nHost: other.example\r\n\r\n"), time.Millisecond)

	e4 := ends{netip.MustParseAddrPort("10.0.0.2:40002"), web}
	c.handshake(e4, 5) // 4: ECH with a public name not among the DNS names: DNS wins
	c.seg(e4, true, flows.ACK|flows.PSH, 6, 9001, recordOf(hello(sni("public.example"), ext(extECH, []byte{0, 0, 1})), 1), time.Millisecond)

	e5 := ends{netip.MustParseAddrPort("10.0.0.2:40003"), web}
	c.handshake(e5, 5) // 5: ECH (GREASE) with the real name: SNI stays
	c.seg(e5, true, flows.ACK|flows.PSH, 6, 9001, recordOf(hello(sni("en.wikipedia.org"), ext(extECH, []byte{0, 0, 1})), 1), time.Millisecond)

	e6 := ends{netip.MustParseAddrPort("10.0.0.2:40004"), netip.MustParseAddrPort("203.0.113.9:443")}
	c.handshake(e6, 5) // 6: ECH with no DNS answer: the only name there is
	c.seg(e6, true, flows.ACK|flows.PSH, 6, 9001, recordOf(hello(sni("public.example"), ext(extECH, []byte{0, 0, 1})), 1), time.Millisecond)

	sameNames(t, c.names(), []Name{
		{Server: "en.wikipedia.org", Source: SourceSNI, Chain: wiki},
		{Server: "en.wikipedia.org", Source: SourceDNS, Chain: wiki},
		{Server: "other.example", Source: SourceHost},
		{Server: "en.wikipedia.org", Source: SourceDNS, ECH: true, Chain: wiki},
		{Server: "en.wikipedia.org", Source: SourceSNI, ECH: true, Chain: wiki},
		{Server: "public.example", Source: SourceSNI, ECH: true},
	})
}

// recordOf frames a handshake message in one TLS record.
func recordOf(msg []byte, minor byte) []byte {
	return append([]byte{22, 3, minor, byte(len(msg) >> 8), byte(len(msg))}, msg...)
}

// TestDNSExpiry: an answer names connections that start within its TTL
// (at least minLifetime), and a newer answer for the address wins.
func TestDNSExpiry(t *testing.T) {
	c := newConv(t, Config{})
	c.dns(dnsAnswer(t, "old.example.", []string{"old.example"}, web.Addr(), 600), 0)
	e1 := ends{netip.MustParseAddrPort("10.0.0.2:1001"), web}
	c.handshake(e1, 1)
	c.dns(dnsAnswer(t, "new.example.", []string{"new.example"}, web.Addr(), 1), time.Second)
	e2 := ends{netip.MustParseAddrPort("10.0.0.2:1002"), web}
	c.handshake(e2, 1)
	e3 := ends{netip.MustParseAddrPort("10.0.0.2:1003"), web}
	c.seg(e3, true, flows.SYN, 1, 0, nil, time.Duration(minLifetime)+time.Second) // new.example expired; old.example still valid
	e4 := ends{netip.MustParseAddrPort("10.0.0.2:1004"), web}
	c.seg(e4, true, flows.SYN, 1, 0, nil, 700*time.Second) // both expired
	sameNames(t, c.names(), []Name{
		{Server: "old.example", Source: SourceDNS, Chain: Chain{"old.example"}},
		{Server: "new.example", Source: SourceDNS, Chain: Chain{"new.example"}},
		{Server: "old.example", Source: SourceDNS, Chain: Chain{"old.example"}},
		{},
	})
}

// TestDNSAnswerReadLate: the answers for two names of one address, and a
// connection after each named by DNS alone. The second answer is read
// after the second connection's first payload, as a fanout group's
// reader of another socket may read it, though it came before the SYN:
// held back until the other readers have read past its SYN (SetSettled),
// the connection still gets the second name, not the first.
func TestDNSAnswerReadLate(t *testing.T) {
	c := newConv(t, Config{})
	var readPast int64 // how far the other readers have read
	c.k.SetSettled(func(ts int64) bool { return ts <= readPast })
	c.dns(dnsAnswer(t, "plain.example.", []string{"plain.example"}, web.Addr(), 300), 0)
	readPast = c.ts
	e1 := ends{netip.MustParseAddrPort("10.0.0.2:41003"), web}
	c.handshake(e1, 1)
	readPast = c.ts
	c.seg(e1, true, flows.ACK|flows.PSH, 2, 9001, []byte("hello\r\n\r\n"), time.Millisecond)
	c.ts += int64(time.Millisecond)
	answered := c.ts
	e2 := ends{netip.MustParseAddrPort("10.0.0.2:41007"), web}
	c.handshake(e2, 1)
	c.seg(e2, true, flows.ACK|flows.PSH, 2, 9001, []byte("hello\r\n\r\n"), time.Millisecond)
	c.k.DNS(answered, dnsAnswer(t, "raw.example.", []string{"raw.example"}, web.Addr(), 300), false)
	readPast = c.ts
	c.k.Retry()
	if n, _ := c.k.Store().Len(); n != 2 {
		t.Errorf("%d connections named once the other readers read past their SYNs, want 2", n)
	}
	sameNames(t, c.names(), []Name{
		{Server: "plain.example", Source: SourceDNS, Chain: Chain{"plain.example"}},
		{Server: "raw.example", Source: SourceDNS, Chain: Chain{"raw.example"}},
	})
}

// TestPendingBound: a full table of connections waiting for their first
// payload evicts the oldest of a set, counted; the newest still get named.
func TestPendingBound(t *testing.T) {
	c := newConv(t, Config{Pending: 8})
	raw := clientHello(t, &tls.Config{ServerName: "late.example"})
	var es []ends
	for i := range 100 {
		e := ends{netip.AddrPortFrom(client.Addr(), uint16(20000+i)), web}
		es = append(es, e)
		c.seg(e, true, flows.SYN, 1, 0, nil, time.Millisecond)
	}
	if n := c.k.Stats.Evicted.Load(); n < 92 {
		t.Fatalf("%d evictions of 100 SYNs into 8 slots", n)
	}
	last := es[len(es)-1]
	c.seg(last, false, flows.SYN|flows.ACK, 9000, 2, nil, time.Millisecond)
	c.seg(last, true, flows.ACK|flows.PSH, 2, 9001, raw, time.Millisecond)
	names := c.names()
	if n := names[len(names)-1]; n.Server != "late.example" {
		t.Fatalf("the newest connection: %+v", n)
	}
}

// TestReassemblyBound: with every reassembly buffer taken, a first
// payload that spans segments is read from its first segment alone.
func TestReassemblyBound(t *testing.T) {
	c := newConv(t, Config{Pending: 4 * maxReassembling})
	raw := clientHello(t, &tls.Config{ServerName: "many.example", CurvePreferences: []tls.CurveID{tls.X25519MLKEM768}})
	for i := range maxReassembling + 10 {
		e := ends{netip.AddrPortFrom(client.Addr(), uint16(20000+i)), netip.AddrPortFrom(web.Addr(), uint16(1+i))}
		c.handshake(e, 1)
		c.seg(e, true, flows.ACK, 2, 9001, raw[:600], time.Millisecond)
	}
	if c.k.busy != maxReassembling || c.k.Stats.Unreassembled.Load() != 10 {
		t.Fatalf("busy %d, unreassembled %d", c.k.busy, c.k.Stats.Unreassembled.Load())
	}
	for _, n := range c.names() {
		if n.Server != "many.example" {
			t.Fatalf("got %+v", n)
		}
	}
}

// TestRelease: once the capture has ended, Release gives back the table of
// connections waiting for their first payload; the names found stay, and
// a connection seen after it is still named from its ClientHello.
func TestRelease(t *testing.T) {
	c := newConv(t, Config{})
	before := ends{client, web}
	c.handshake(before, 1)
	c.seg(before, true, flows.ACK|flows.PSH, 2, 9001, clientHello(t, &tls.Config{ServerName: "before.example"}), time.Millisecond)
	waiting := ends{netip.AddrPortFrom(client.Addr(), 40001), web}
	c.handshake(waiting, 1)
	c.k.Flush()
	if len(c.k.pend) <= pendingWays {
		t.Fatalf("a table of %d slots before Release", len(c.k.pend))
	}
	c.k.Release()
	if len(c.k.pend) != pendingWays || len(c.k.tags) != pendingWays || c.k.live != 0 {
		t.Fatalf("after Release: %d slots (%d tags), %d live; want one set of %d, none live", len(c.k.pend), len(c.k.tags), c.k.live, pendingWays)
	}
	after := ends{netip.AddrPortFrom(client.Addr(), 40002), web}
	c.handshake(after, 1)
	c.seg(after, true, flows.ACK|flows.PSH, 2, 9001, clientHello(t, &tls.Config{ServerName: "after.example"}), time.Millisecond)
	sameNames(t, c.names(), []Name{{Server: "before.example", Source: SourceSNI}, {}, {Server: "after.example", Source: SourceSNI}})
}

// TestGrowingTableSameAsFull: a Peeker's table of waiting connections
// starts small and grows (firstSets, grow); it must name and evict
// exactly as a table that starts at its full size (Config.Pending), the
// set-associative cache that bounds it. Both are fed the same interleaved
// SYNs and first requests, up to twice as many waiting at once as the
// bound, so that the full table evicts.
func TestGrowingTableSameAsFull(t *testing.T) {
	for _, c := range []struct {
		conns, window int // connections, and how many SYNs before a connection's request
		wantEvicted   bool
	}{
		{3000, 40, false},  // a few dozen waiting: the table stays small
		{3000, 2048, true}, // twice the bound waiting: evictions
	} {
		grown, full := newConv(t, Config{Pending: 1024}), newConv(t, Config{Pending: 1024})
		full.k.sized(int(full.k.maxMask) + 1)
		if len(grown.k.tags) >= len(full.k.tags) {
			t.Fatalf("the table starts at %d slots, as large as the full %d", len(grown.k.tags), len(full.k.tags))
		}
		rng := rand.New(rand.NewPCG(1, uint64(c.window)))
		// Connection i's SYN comes at step 2i, its request at 2(i+d)+1, d
		// from 1 to window: about window/2 wait at once, at most window.
		order := make([]int, 0, 2*c.conns) // i: SYN of connection i; -1-i: its request
		at := make(map[int]int, 2*c.conns)
		for i := range c.conns {
			order = append(order, i, -1-i)
			at[i], at[-1-i] = 2*i, 2*(i+1+rng.IntN(c.window))+1
		}
		slices.SortFunc(order, func(a, b int) int { return at[a] - at[b] })
		for _, cv := range []*conv{grown, full} {
			for _, o := range order {
				i := max(o, -1-o)
				e := ends{netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(20000+i)), web}
				if o >= 0 {
					cv.seg(e, true, flows.SYN, 1, 0, nil, time.Millisecond)
					continue
				}
				req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: h%d.example\r\n\r\n", i)
				cv.seg(e, true, flows.ACK|flows.PSH, 2, 9001, []byte(req), time.Millisecond)
			}
		}
		ev := grown.k.Stats.Evicted.Load()
		if ev != full.k.Stats.Evicted.Load() || (ev > 0) != c.wantEvicted {
			t.Errorf("window %d: %d evicted by the grown table, %d by the full one; want evictions: %v", c.window, ev, full.k.Stats.Evicted.Load(), c.wantEvicted)
		}
		if !c.wantEvicted && len(grown.k.tags) >= len(full.k.tags) {
			t.Errorf("window %d: the table grew to its full %d slots", c.window, len(grown.k.tags))
		}
		g, f := grown.names(), full.names()
		named := 0
		for i := range g {
			if !reflect.DeepEqual(g[i], f[i]) {
				t.Fatalf("window %d: connection %d named %+v by the grown table, %+v by the full one", c.window, i, g[i], f[i])
			}
			if g[i].Server != "" {
				named++
			}
		}
		if want := c.conns; !c.wantEvicted && named != want {
			t.Errorf("window %d: %d of %d connections named", c.window, named, want)
		}
	}
}
