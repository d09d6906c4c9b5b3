package diag

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// pk is one packet of a hand-built sequence between cliAP and srvAP.
type pk struct {
	from     byte // 'c' or 's'
	flags    flows.Flags
	seq, ack uint32
	n        uint32        // payload bytes
	at       time.Duration // since t0
	win      int           // 0: 1000; -1: a zero window
	ttl      uint8         // 0: 64
	ts       uint32        // TSval; 0: none
	port     uint16        // client port; 0: 40000
}

var (
	cliAP = netip.MustParseAddrPort("10.0.0.1:40000")
	srvAP = netip.MustParseAddrPort("10.0.0.2:80")
	t0    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

const (
	S = flows.SYN
	A = flows.ACK
	F = flows.FIN
	R = flows.RST
	P = flows.PSH
)

func (x pk) packet() flows.Packet {
	cli := cliAP
	if x.port != 0 {
		cli = netip.AddrPortFrom(cliAP.Addr(), x.port)
	}
	src, dst := cli, srvAP
	if x.from == 's' {
		src, dst = srvAP, cli
	}
	var p flows.Packet
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	p.Tuple.SetV4(s4[:], d4[:])
	p.Tuple.SrcPort, p.Tuple.DstPort = src.Port(), dst.Port()
	p.Flags, p.Seq, p.Ack, p.PayloadLen = x.flags, x.seq, x.ack, x.n
	p.FrameLen, p.IPLen = 54+x.n, 40+x.n
	p.Window, p.WScale = 1000, -1
	switch {
	case x.win < 0:
		p.Window = 0
	case x.win > 0:
		p.Window = uint16(x.win)
	}
	p.TTL = x.ttl
	if p.TTL == 0 {
		p.TTL = 64
	}
	p.TSVal, p.HasTS = x.ts, x.ts != 0
	p.TS = t0.Add(x.at).UnixNano()
	return p
}

// records applies the packets to a new table and returns every record,
// retired ones first, and the table's time at the end.
func records(pkts []pk) ([]flows.Record, time.Time) {
	var out []flows.Record
	tab := flows.NewTable(flows.Config{OnRetire: func(r []flows.Record) { out = append(out, r...) }})
	for _, x := range pkts {
		p := x.packet()
		tab.Apply(&p)
	}
	now := tab.Now()
	return append(out, tab.Flush()...), now
}

// judged returns the problems of the last record of pkts as of the
// capture's end plus extra.
func judged(t *testing.T, cfg Config, extra time.Duration, pkts []pk) []Problem {
	t.Helper()
	recs, now := records(pkts)
	j := New(cfg)
	r := &recs[len(recs)-1]
	ps := j.Problems(r, now.Add(extra), nil)
	checkProblems(t, j, r, now.Add(extra), ps)
	return ps
}

// checkProblems checks what holds of any judgement: Kinds agrees with
// Problems, the most severe comes first, and each is bounded.
func checkProblems(t *testing.T, j *Judge, r *flows.Record, now time.Time, ps []Problem) {
	t.Helper()
	var set Set
	for i, p := range ps {
		set = set.Add(p.Kind)
		if i > 0 && MoreSevere(p.Kind, ps[i-1].Kind) {
			t.Errorf("%v listed after the less severe %v", p.Kind, ps[i-1].Kind)
		}
		if len(p.Evidence) > 4 || len(p.Detail) > 400 || p.Detail == "" || p.Since.IsZero() {
			t.Errorf("%v: %d evidence packets, %q since %v", p.Kind, len(p.Evidence), p.Detail, p.Since)
		}
	}
	if k := j.Kinds(r, now, nil); k != set {
		t.Errorf("Kinds %v, Problems %v", k, set)
	}
}

func kindsOf(ps []Problem) string {
	var names []string
	for _, p := range ps {
		names = append(names, p.Kind.String()+"/"+p.Side.String())
	}
	return strings.Join(names, " ")
}

var handshake = []pk{
	{from: 'c', flags: S, seq: 1000},
	{from: 's', flags: S | A, seq: 5000, ack: 1001, at: ms(1)},
	{from: 'c', flags: A, seq: 1001, ack: 5001, at: ms(2)},
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func join(parts ...[]pk) []pk {
	var out []pk
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// closeByClient is a clean exchange and close, the client closing first.
var closeByClient = []pk{
	{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(3)},
	{from: 's', flags: P | A, seq: 5001, ack: 1101, n: 1000, at: ms(4)},
	{from: 'c', flags: F | A, seq: 1101, ack: 6001, at: ms(5)},
	{from: 's', flags: F | A, seq: 6001, ack: 1102, at: ms(6)},
	{from: 'c', flags: A, seq: 1102, ack: 6002, at: ms(7)},
}

// Each rule, from hand-built sequences whose verdicts follow from what
// the packets show (RFC 793, RFC 5961, Linux's timers), with a sequence
// just short of each rule for the none.
func TestJudgeRules(t *testing.T) { //nolint:funlen // a table of cases: data, not steps
	syns := func(times ...time.Duration) []pk {
		var out []pk
		for _, at := range times {
			out = append(out, pk{from: 'c', flags: S, seq: 1000, at: at})
		}
		return out
	}
	s := time.Second
	cases := []struct {
		name  string
		cfg   Config
		extra time.Duration // judged this long after the last packet
		pkts  []pk
		want  string
	}{
		{"clean", Config{}, time.Hour, join(handshake, closeByClient), ""},
		{"refused", Config{}, 0, []pk{{from: 'c', flags: S, seq: 1000}, {from: 's', flags: R | A, ack: 1001, at: ms(1)}}, "refused/server"},
		{"one SYN, not yet due", Config{}, ms(900), syns(0), ""},
		{"unanswered, retrying", Config{}, ms(500), syns(0, s, 2*s), "unanswered/server"},
		{"unanswered, the application gave up", Config{}, 10 * s, syns(0, s), "unanswered/server"},
		{"unanswered, gave up on schedule", Config{}, 65 * s, syns(0, s, 2*s, 3*s, 4*s, 5*s, 7*s, 11*s, 19*s, 35*s, 67*s), "unanswered/server"},
		{"slow-connect: lost SYN", Config{}, 0, join(syns(0, s), []pk{
			{from: 's', flags: S | A, seq: 5000, ack: 1001, at: s + ms(1)},
			{from: 'c', flags: A, seq: 1001, ack: 5001, at: s + ms(2)}}), "slow-connect/client"},
		{"slow-connect: lost SYN-ACK", Config{}, 0, []pk{
			{from: 'c', flags: S, seq: 1000},
			{from: 's', flags: S | A, seq: 5000, ack: 1001, at: ms(1)},
			{from: 'c', flags: S, seq: 1000, at: s},
			{from: 's', flags: S | A, seq: 5000, ack: 1001, at: s + ms(1)},
			{from: 'c', flags: A, seq: 1001, ack: 5001, at: s + ms(2)}}, "slow-connect/server"},
		{"slow-connect: lost final ACK", Config{}, 0, join(handshake, []pk{
			{from: 's', flags: S | A, seq: 5000, ack: 1001, at: s},
			{from: 'c', flags: A, seq: 1001, ack: 5001, at: s + ms(1)}}), "slow-connect/server"},
		{"timeout-retransmit", Config{}, 0, join(handshake, []pk{
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(3)},
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(303)},
			{from: 's', flags: A, seq: 5001, ack: 1101, at: ms(304)}}), "timeout-retransmit/client"},
		{"timeout-retransmit, under a longer threshold", Config{Stall: 400 * time.Millisecond}, 0, join(handshake, []pk{
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(3)},
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(303)},
			{from: 's', flags: A, seq: 5001, ack: 1101, at: ms(304)}}), ""},
		{"zero window, 2 s", Config{}, 0, join(handshake, []pk{
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(3)},
			{from: 's', flags: A, seq: 5001, ack: 1101, at: ms(4), win: -1},
			{from: 's', flags: A, seq: 5001, ack: 1101, at: 2*s + ms(4)}}), "zero-window/server"},
		{"zero window, half a second", Config{}, 0, join(handshake, []pk{
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(3)},
			{from: 's', flags: A, seq: 5001, ack: 1101, at: ms(4), win: -1},
			{from: 's', flags: A, seq: 5001, ack: 1101, at: ms(504)}}), ""},
		{"zero window still open", Config{}, 3 * s, join(handshake, []pk{
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(3)},
			{from: 's', flags: A, seq: 5001, ack: 1101, at: ms(4), win: -1}}), "zero-window/server"},
		{"close-wait and fin-wait-2", Config{}, 61 * s, join(handshake, closeByClient[:3], closeByClient[4:4], []pk{
			{from: 's', flags: A, seq: 6001, ack: 1102, at: ms(6)}}), "close-wait/server fin-wait-2/client"},
		{"close-wait, not yet", Config{}, 59 * s, join(handshake, closeByClient[:3], []pk{
			{from: 's', flags: A, seq: 6001, ack: 1102, at: ms(6)}}), ""},
		{"last-ack-retransmit", Config{}, 0, join(handshake, closeByClient[:4], []pk{
			{from: 's', flags: F | A, seq: 6001, ack: 1102, at: ms(206)},
			{from: 'c', flags: A, seq: 1102, ack: 6002, at: ms(207)}}), "last-ack-retransmit/server"},
		{"abort", Config{}, 0, join(handshake, []pk{
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(3)},
			{from: 's', flags: R | A, seq: 5001, ack: 1101, at: ms(4)}}), "abort/server"},
		{"abort without ACK", Config{}, 0, join(handshake, []pk{
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(3)},
			{from: 's', flags: R, seq: 5001, at: ms(4)}}), "abort/server"},
		{"half-open: reset, and the peer goes on", Config{}, 0, join(handshake, []pk{
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(3)},
			{from: 's', flags: R, seq: 5001, at: ms(4)},
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(204)},
			{from: 's', flags: R, seq: 5001, at: ms(205)},
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(604)},
			{from: 's', flags: R, seq: 5001, at: ms(605)},
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(1404)},
			{from: 's', flags: R, seq: 5001, at: ms(1405)},
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(3004)}}), "half-open/server timeout-retransmit/client loss/client"},
		{"half-open: vanished", Config{}, 0, join(handshake, []pk{
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(3)},
			{from: 's', flags: A, seq: 5001, ack: 1001, at: ms(4)},
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(204)},
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(604)},
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(1404)},
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(3004)}}), "half-open/server timeout-retransmit/client loss/client"},
		{"reset-after-close", Config{}, 0, join(handshake, []pk{
			{from: 's', flags: F | A, seq: 5001, ack: 1001, at: ms(3)},
			{from: 'c', flags: A, seq: 1001, ack: 5002, at: ms(4)},
			{from: 'c', flags: P | A, seq: 1001, ack: 5002, n: 10, at: ms(10)},
			{from: 's', flags: R, seq: 5002, at: ms(11)}}), "reset-after-close/server"},
		{"reset-ignored", Config{}, 0, join(handshake, []pk{
			{from: 's', flags: R, seq: 900000, at: ms(3)}}), "reset-ignored/server"},
		{"reset-suspect", Config{}, 0, join(handshake, []pk{
			{from: 'c', flags: P | A, seq: 1001, ack: 5001, n: 100, at: ms(3)},
			{from: 's', flags: R | A, seq: 5001, ack: 1101, at: ms(4), ttl: 41}}), "reset-suspect/server abort/server"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := kindsOf(judged(t, c.cfg, c.extra, c.pkts))
			want := strings.Fields(c.want)
			gotf := strings.Fields(got)
			slices.Sort(want)
			slices.Sort(gotf)
			if !slices.Equal(gotf, want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// A 4-tuple reused into the server's TIME_WAIT: Linux accepts the SYN
// when its timestamp is newer (whatever its ISN), or without
// timestamps when its ISN is above the old connection's next; the
// problem says which.
func TestJudgeEarlyReuse(t *testing.T) {
	closed := join(handshake, []pk{
		{from: 's', flags: F | A, seq: 5001, ack: 1001, at: ms(10), ts: 900},
		{from: 'c', flags: F | A, seq: 1001, ack: 5002, at: ms(11), ts: 100},
		{from: 's', flags: A, seq: 5002, ack: 1002, at: ms(12), ts: 901},
	})
	for _, c := range []struct {
		name     string
		seq, ts  uint32
		accepted bool
	}{
		{"ISN and timestamp above", 90000, 5000, true},
		{"ISN below, timestamp above", 10, 5000, true},
		{"ISN above, timestamp older", 90000, 50, false},
	} {
		ps := judged(t, Config{}, 0, join(closed, []pk{{from: 'c', flags: S, seq: c.seq, at: 5 * time.Second, ts: c.ts}}))
		if len(ps) != 1 || ps[0].Kind != EarlyReuse || ps[0].Side != SideClient {
			t.Fatalf("%s: %s", c.name, kindsOf(ps))
		}
		if got := strings.Contains(ps[0].Detail, "Linux takes it"); got != c.accepted {
			t.Errorf("%s: %s", c.name, ps[0].Detail)
		}
	}
}
