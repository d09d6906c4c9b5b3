package diag

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// conn returns the packets of one connection from client port port,
// opened at start with the given handshake RTT (SYN to ACK), exchanging
// a request and a response; the client closes first if closeFirst, the
// server never closes if leak (it stays in CLOSE_WAIT), and an RST
// refuses it if refused.
func conn(port uint16, start, rtt time.Duration, how string) []pk {
	at := func(d time.Duration) time.Duration { return start + d }
	if how == "refused" {
		return []pk{{from: 'c', flags: S, seq: 1000, at: at(0), port: port},
			{from: 's', flags: R | A, ack: 1001, at: at(rtt / 2), port: port}}
	}
	synack := rtt / 2
	if how == "slow client" {
		synack = ms(1) // the server answers at once; the client's ACK is late
	}
	out := []pk{
		{from: 'c', flags: S, seq: 1000, at: at(0), port: port},
		{from: 's', flags: S | A, seq: 5000, ack: 1001, at: at(synack), port: port},
		{from: 'c', flags: A, seq: 1001, ack: 5001, at: at(rtt), port: port},
		{from: 'c', flags: F | A, seq: 1001, ack: 5001, at: at(rtt + ms(1)), port: port},
		{from: 's', flags: A, seq: 5001, ack: 1002, at: at(rtt + ms(2)), port: port},
	}
	if how == "leak" {
		return out
	}
	return append(out,
		pk{from: 's', flags: F | A, seq: 5001, ack: 1002, at: at(rtt + ms(3)), port: port},
		pk{from: 'c', flags: A, seq: 1002, ack: 5002, at: at(rtt + ms(4)), port: port})
}

// judgeAll judges every record through one Services, as the JSON output
// does, and returns the problems by client port.
func judgeAll(cfg Config, pkts []pk) (*Services, map[uint16][]Problem) {
	recs, now := records(pkts)
	flows.SortByStart(recs)
	svc := NewServices(New(cfg))
	out := map[uint16][]Problem{}
	for i := range recs {
		out[recs[i].Client.Port()] = svc.Judge(&recs[i], now)
	}
	return svc, out
}

// A service's RTT median and 99th percentile, refused rate and resets;
// a handshake far slower than the service's usual is slow-connect once
// the service has had 20 handshakes, not before.
func TestServicesRTTAndRates(t *testing.T) {
	var pkts []pk
	for i := range 99 {
		pkts = append(pkts, conn(uint16(41000+i), time.Duration(i)*time.Second, ms(10)+time.Duration(i)*time.Microsecond, "")...)
	}
	pkts = append(pkts, conn(42000, 100*time.Second, ms(500), "slow client")...)
	pkts = append(pkts, conn(40999, 0, ms(500), "")...) // as slow, but the first
	pkts = append(pkts, conn(42001, 101*time.Second, ms(2), "refused")...)
	svc, ps := judgeAll(Config{}, pkts)
	if got := kindsOf(ps[42000]); got != "slow-connect/client" {
		t.Errorf("the slow handshake: %q, want slow-connect/client (its client leg took 499 ms)", got)
	}
	if got := kindsOf(ps[40999]); got != "" {
		t.Errorf("the first handshake, with no usual to compare: %q", got)
	}
	sums := svc.Summaries()
	if len(sums) != 1 {
		t.Fatalf("%d services", len(sums))
	}
	sm := sums[0]
	if sm.Conns != 102 || sm.Attempts != 102 || sm.Refused != 1 || sm.Resets != 0 || sm.RTTs != 101 {
		t.Errorf("summary %+v", sm)
	}
	if math.Abs(sm.RefusedRate()-1.0/102) > 1e-9 {
		t.Errorf("refused rate %v", sm.RefusedRate())
	}
	// The RTTs: 10.000-10.098 ms (99), and two of 500 ms: the median is
	// 10.05 ms, the 99th percentile (the 100th of 101) 500 ms; the
	// histogram holds them to 5%.
	within := func(got, want time.Duration) bool { return math.Abs(float64(got-want)) <= 0.05*float64(want) }
	if !within(sm.RTTMedian, ms(10)) || !within(sm.RTTP99, ms(500)) {
		t.Errorf("RTT median %v, p99 %v; want about 10 ms and 500 ms", sm.RTTMedian, sm.RTTP99)
	}
	if sm.Counts[SlowConnect] != 1 || sm.Counts[Refused] != 1 {
		t.Errorf("counts %v", sm.Counts)
	}
	// Judging the kinds alone (a table's column) finds the same, the
	// slow handshake against the same usual RTT.
	recs, now := records(pkts)
	flows.SortByStart(recs)
	kinds := NewServices(New(Config{}))
	for i := range recs {
		var want Set
		for _, p := range ps[recs[i].Client.Port()] {
			want = want.Add(p.Kind)
		}
		if got := kinds.JudgeKinds(&recs[i], now); got != want {
			t.Errorf("port %d: JudgeKinds %v, Judge %v", recs[i].Client.Port(), got, want)
		}
	}
	if got := kinds.Summaries(); !reflect.DeepEqual(got, sums) {
		t.Errorf("JudgeKinds' summaries %+v, Judge's %+v", got, sums)
	}
}

// A service whose connections are left in CLOSE_WAIT one after another
// leaks: its count grows at every sample. One that closes them does not.
func TestServicesCloseWaitTrend(t *testing.T) {
	var leak, fine []pk
	for i := range 6 {
		leak = append(leak, conn(uint16(41000+i), time.Duration(i)*time.Second+ms(500), ms(1), "leak")...)
		fine = append(fine, conn(uint16(41000+i), time.Duration(i)*time.Second+ms(500), ms(1), "")...)
	}
	cfg := Config{TrendStep: time.Second}
	svc, _ := judgeAll(cfg, leak)
	sm := svc.Summaries()[0]
	// Samples at whole seconds 1-5 (the capture ends at 5.5 s): 1 to 5
	// sockets in CLOSE_WAIT.
	if !sm.Leaking || len(sm.CloseWait) != 5 || sm.CloseWait[0] != 1 || sm.CloseWait[4] != 5 {
		t.Errorf("leaking service: %v, leaking %v", sm.CloseWait, sm.Leaking)
	}
	svc, _ = judgeAll(cfg, fine)
	if sm := svc.Summaries()[0]; sm.Leaking || sm.CloseWait[len(sm.CloseWait)-1] != 0 {
		t.Errorf("a service that closes: %v, leaking %v", sm.CloseWait, sm.Leaking)
	}
}

// A client holding PortPressure TIME_WAIT sockets to one service at once
// has its ports running short; fewer, or spread over more than the
// TIME_WAIT period, is not.
func TestServicesPortPressure(t *testing.T) {
	var pkts []pk
	for i := range 10 {
		pkts = append(pkts, conn(uint16(41000+i), time.Duration(i)*ms(100), ms(1), "")...)
	}
	for _, c := range []struct {
		limit int
		want  bool
	}{{10, true}, {11, false}} {
		svc, _ := judgeAll(Config{PortPressure: c.limit}, pkts)
		sm := svc.Summaries()[0]
		if got := sm.Counts[PortPressure] == 1 && len(sm.Problems) == 1; got != c.want {
			t.Errorf("10 TIME_WAIT sockets against a limit of %d: port-pressure %v (%+v)", c.limit, got, sm.Problems)
		}
	}
	// Ten connections a TIME_WAIT period apart hold one socket at a time.
	var spread []pk
	for i := range 10 {
		spread = append(spread, conn(uint16(41000+i), time.Duration(i)*61*time.Second, ms(1), "")...)
	}
	svc, _ := judgeAll(Config{PortPressure: 2}, spread)
	if sm := svc.Summaries()[0]; sm.Counts[PortPressure] != 0 {
		t.Errorf("one TIME_WAIT socket at a time: %+v", sm.Problems)
	}
}

// twSock is a connection its client closes first: its end enters
// TIME_WAIT when the server's FIN comes, at fin.
type twSock struct {
	client netip.Addr
	port   uint16
	fin    time.Duration // since t0
}

// applyWith applies x, a packet of a connection between client and the
// service at srvAP, to tab.
func applyWith(tab *flows.Table, client netip.Addr, x pk) {
	p := x.packet()
	cl, sv := client.As4(), srvAP.Addr().As4()
	if x.from == 's' {
		p.Tuple.SetV4(sv[:], cl[:])
	} else {
		p.Tuple.SetV4(cl[:], sv[:])
	}
	tab.Apply(&p)
}

// twJudge judges the connections of socks (from a service at srvAP, each
// as conn builds it, its server's FIN 4 ms after its start) in the order
// they started, as the JSON output does, with cfg.
func twJudge(cfg Config, socks []twSock) *Services {
	type cpk struct {
		client netip.Addr
		pk
	}
	var pkts []cpk
	for _, s := range socks {
		for _, x := range conn(s.port, s.fin-ms(4), ms(1), "") {
			pkts = append(pkts, cpk{s.client, x})
		}
	}
	slices.SortStableFunc(pkts, func(a, b cpk) int { return cmp.Compare(a.at, b.at) })
	var recs []flows.Record
	tab := flows.NewTable(flows.Config{OnRetire: func(r []flows.Record) { recs = append(recs, r...) }})
	for _, x := range pkts {
		applyWith(tab, x.client, x.pk)
	}
	recs = append(recs, tab.Flush()...)
	flows.SortByStart(recs)
	svc := NewServices(New(cfg))
	for i := range recs {
		svc.Judge(&recs[i], tab.Now())
	}
	return svc
}

// twPressure is port-pressure counted from the sockets themselves: going
// through them as they entered TIME_WAIT, the first that finds its client
// holding limit of them at once (each held for a TimeWait from its FIN,
// gone at its end), the client and how many it held then; ok false if
// none does.
func twPressure(socks []twSock, tw time.Duration, limit int) (at twSock, held int, ok bool) {
	for k, s := range socks {
		n := 0
		for _, o := range socks[:k+1] {
			if o.client == s.client && o.fin <= s.fin && s.fin < o.fin+tw {
				n++
			}
		}
		if n >= limit {
			return s, n, true
		}
	}
	return twSock{}, 0, false
}

// A service names the first client to hold PortPressure TIME_WAIT sockets
// at once, when, and how many it held, as counting every socket's
// TIME_WAIT period finds: a socket is held from its FIN until TimeWait
// later, not at that instant (Linux's TIME_WAIT timer), so sockets
// exactly TimeWait apart are held one at a time and a nanosecond less
// two. Once a service has port-pressure it keeps no client's count.
func TestServicesPortPressureCounted(t *testing.T) {
	const tw = time.Minute
	a, b := netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("10.0.1.2")
	cases := map[string][]twSock{
		"TimeWait apart": {{a, 1000, tw}, {a, 1001, 2 * tw}, {a, 1002, 3 * tw}, {b, 1003, 3*tw + 1}},
		"a ns less":      {{a, 1000, tw}, {b, 1001, 2*tw - 1}, {a, 1002, 2*tw - 1 + 1}, {a, 1003, 2*tw - 2}},
	}
	rng := rand.New(rand.NewPCG(17, 2))
	for trial := range 40 {
		// Four clients, 30 connections each over 4 minutes, at distinct
		// times (whole milliseconds and a microsecond each), often in
		// TIME_WAIT together.
		var socks []twSock
		for i := range 120 {
			c := netip.AddrFrom4([4]byte{10, 0, 2, byte(rng.IntN(4))})
			fin := tw + time.Duration(rng.IntN(240_000))*time.Millisecond + time.Duration(i)*time.Microsecond
			socks = append(socks, twSock{c, uint16(2000 + i), fin})
		}
		cases[fmt.Sprintf("random %d", trial)] = socks
	}
	for name, socks := range cases {
		slices.SortFunc(socks, func(x, y twSock) int { return cmp.Compare(x.fin, y.fin) })
		limit := 2
		if strings.HasPrefix(name, "random") {
			limit = 4 + int(socks[0].fin%13)
		}
		svc := twJudge(Config{PortPressure: limit, TimeWait: tw}, socks)
		sm := svc.Summaries()[0]
		at, held, want := twPressure(socks, tw, limit)
		if !want {
			if sm.Counts[PortPressure] != 0 || len(sm.Problems) != 0 {
				t.Errorf("%s (limit %d): port-pressure %+v, want none", name, limit, sm.Problems)
			}
			continue
		}
		detail := fmt.Sprintf("client %v held %d TIME_WAIT sockets ", at.client, held)
		if sm.Counts[PortPressure] != 1 || len(sm.Problems) != 1 || !sm.Problems[0].Since.Equal(t0.Add(at.fin)) ||
			!strings.HasPrefix(sm.Problems[0].Detail, detail) {
			t.Errorf("%s (limit %d): port-pressure %+v, want since %v: %q", name, limit, sm.Problems, t0.Add(at.fin), detail)
		}
		if sv := svc.m[srvAP]; len(sv.clients) != 0 {
			t.Errorf("%s: %d clients' counts kept after port-pressure", name, len(sv.clients))
		}
	}
}

// A service keeps TIME_WAIT counts only for clients that have TIME_WAIT
// sockets, and forgets those whose sockets all ended once it keeps
// maxTWClients: a SYN flood from spoofed addresses, or a long run of
// clients each closing once, leaves the map bounded.
func TestServicesForgetClients(t *testing.T) {
	const n = maxTWClients + 5000
	for _, how := range []string{"flood", "closes"} {
		var recs []flows.Record
		tab := flows.NewTable(flows.Config{OnRetire: func(r []flows.Record) { recs = append(recs, r...) }})
		for i := range n {
			c := netip.AddrFrom4([4]byte{10, byte(1 + i>>16), byte(i >> 8), byte(i)})
			start := time.Duration(i) * time.Millisecond
			pkts := conn(40000, start, ms(1), "")
			if how == "flood" {
				pkts = pkts[:1]
			}
			for _, x := range pkts {
				applyWith(tab, c, x)
			}
		}
		recs = append(recs, tab.Flush()...)
		flows.SortByStart(recs)
		svc := NewServices(New(Config{}))
		for i := range recs {
			svc.Judge(&recs[i], tab.Now())
		}
		sv := svc.m[srvAP]
		if sv == nil || sv.conns != n {
			t.Fatalf("%s: %d records, the service counted some other number of connections, want %d", how, len(recs), n)
		}
		switch got := len(sv.clients); {
		case how == "flood" && got != 0:
			t.Errorf("a SYN flood left %d clients with TIME_WAIT counts", got)
		case how == "closes" && (got == 0 || got > maxTWClients):
			t.Errorf("%d clients closing once, 1 ms apart: %d kept (want some, at most %d)", n, got, maxTWClients)
		}
		if sv.pressure {
			t.Errorf("%s: port-pressure from clients holding one socket each", how)
		}
	}
}

// The median kept as RTTs come is the one a walk over the buckets finds,
// after every RTT: spread over many buckets, piled in one, and coming in
// rising, falling and random order.
func TestRTTMedianKept(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 1))
	for name, rtt := range map[string]func(i int) time.Duration{
		"random":  func(int) time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Second))) },
		"rising":  func(i int) time.Duration { return time.Duration(i) * 37 * time.Microsecond },
		"falling": func(i int) time.Duration { return time.Duration(3000-i) * 37 * time.Microsecond },
		"one":     func(int) time.Duration { return 10 * time.Millisecond },
		"tiny":    func(i int) time.Duration { return time.Duration(i%3) * 700 * time.Nanosecond },
	} {
		var h rttHist
		for i := range 3000 {
			h.add(rtt(i))
			if got, want := h.median(), h.quantile(0.5); got != want {
				t.Fatalf("%s: after %d RTTs the median kept is %v, the buckets' %v", name, i+1, got, want)
			}
		}
	}
}
