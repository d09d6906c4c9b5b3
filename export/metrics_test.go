package export

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// scrape fetches url and returns its samples, keyed by name and labels as
// written ("flowtrack_connections{client_state=\"CLOSED\",...}").
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	parseExposition(t, string(body)) // fails on anything Prometheus would not parse
	samples := make(map[string]float64)
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		samples[line[:i]] = v
	}
	return samples
}

// sum adds the samples of a metric over all its label values.
func sum(samples map[string]float64, name string) float64 {
	var s float64
	for k, v := range samples {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// TestMetricsDuringReplay replays a capture, scraping the metrics while it
// runs and after it, and checks them against the table.
func TestMetricsDuringReplay(t *testing.T) {
	for _, c := range []struct {
		pcap  string
		every int // scrape every this many packets
	}{
		{"ssh-many.pcap", 500},          // retransmissions; connections all closed at the end
		{"wikipedia.pcap", 20},          // connections still open at the end
		{"port-reuse-gtp-sip.pcap", 10}, // one 4-tuple reused, IPv6
	} {
		t.Run(c.pcap, func(t *testing.T) { testMetricsReplay(t, "../pcaps/"+c.pcap, c.every) })
	}
}

func testMetricsReplay(t *testing.T, pcap string, every int) {
	src, err := capture.OpenFile(pcap, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	mr := newMetricsReplay(t)
	defer mr.srv.Close()
	scrapes, applied := 0, 0
	apply := func(p *flows.Packet) {
		mr.table.Apply(p)
		if applied++; applied%every == 0 { // a few times during the replay
			mr.check(fmt.Sprintf("after %d packets", applied))
			scrapes++
		}
	}
	if err := capture.Run(context.Background(), src, capture.NewDecoder(), &mr.counters, 0, capture.PacketFunc(apply)); err != nil {
		t.Fatal(err)
	}
	if scrapes < 3 {
		t.Fatalf("%d scrapes during the replay, want at least 3", scrapes)
	}
	mr.check("at the end of the replay")

	rest := mr.table.Flush()
	mr.m.Stop(rest)
	mr.retired = append(mr.retired, rest...)
	s := mr.check("after the last records")
	if got := sum(s, "flowtrack_connections_closed_total"); got != float64(mr.table.Opened()) {
		t.Errorf("%v connections closed, want all %d", got, mr.table.Opened())
	}
	forced := 0
	for _, r := range rest {
		done := func(s flows.State) bool { return s == flows.StateClosed || s == flows.StateTimeWait }
		if !done(r.ClientState) || !done(r.ServerState) {
			forced++
		}
	}
	if got := s[`flowtrack_connections_closed_total{reason="forced_end"}`]; got != float64(forced) {
		t.Errorf("%v connections forced to end, want %d (of %d left at the end)", got, forced, len(rest))
	}
	if _, ok := s["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

// metricsReplay is a table fed by a replay, with its metrics served, and
// what it retired: the truth the metrics are checked against.
type metricsReplay struct {
	t         *testing.T
	counters  capture.Counters
	table     *flows.Table
	retired   []flows.Record
	m         *Metrics
	srv       *httptest.Server
	seenPairs map[string]bool // state pairs scraped so far
}

func newMetricsReplay(t *testing.T) *metricsReplay {
	mr := &metricsReplay{t: t, seenPairs: make(map[string]bool)}
	cfg := flows.Config{}
	cfg.OnRetire = func(recs []flows.Record) {
		mr.retired = append(mr.retired, recs...)
		mr.m.Retire(recs)
	}
	cfg.OnChange = func(ev flows.Event) { mr.m.Change(ev) }
	mr.m = NewMetrics(MetricsConfig{Capture: func() CaptureStats {
		c := &mr.counters
		return CaptureStats{Frames: c.Frames.Load(), Bytes: c.Bytes.Load(), TCP: c.TCP.Load(),
			NonTCP: c.NonTCP.Load(), Malformed: c.Malformed.Load()}
	}})
	mr.table = flows.NewTable(cfg)
	mr.m.SetTable(mr.table)
	mr.srv = httptest.NewServer(mr.m.Handler())
	return mr
}

// captured returns the capture's counters as their metrics.
func (mr *metricsReplay) captured() map[string]float64 {
	c := &mr.counters
	return map[string]float64{
		"flowtrack_capture_frames_total":           float64(c.Frames.Load()),
		"flowtrack_capture_bytes_total":            float64(c.Bytes.Load()),
		"flowtrack_capture_tcp_packets_total":      float64(c.TCP.Load()),
		"flowtrack_capture_other_frames_total":     float64(c.NonTCP.Load()),
		"flowtrack_capture_malformed_frames_total": float64(c.Malformed.Load()),
	}
}

// check scrapes the metrics and compares them with the table and what it
// retired, and returns them. The capture's counters run ahead of the
// table (a file is decoded on a goroutine of its own): they are checked
// between their values before and after the scrape.
func (mr *metricsReplay) check(when string) map[string]float64 {
	t := mr.t
	t.Helper()
	lo := mr.captured()
	s := scrape(t, mr.srv.URL+"/metrics")
	hi := mr.captured()
	for k := range lo {
		if got := s[k]; got < lo[k] || got > hi[k] {
			t.Errorf("%s: %s is %v, want between %v and %v", when, k, got, lo[k], hi[k])
		}
	}
	live := mr.table.Snapshot()
	for k, v := range mr.want(live) {
		if got := sum(s, k); got != v {
			t.Errorf("%s: %s is %v, want %v", when, k, got, v)
		}
	}
	mr.checkPairs(when, s, live)
	return s
}

// want returns the totals the metrics must show, counted from the live
// and retired records.
func (mr *metricsReplay) want(live []flows.Record) map[string]float64 {
	want := map[string]float64{
		"flowtrack_connections_opened_total":                      float64(mr.table.Opened()),
		"flowtrack_connections":                                   float64(len(live)),
		"flowtrack_connections_closed_total":                      float64(len(mr.retired)),
		"flowtrack_handshake_rtt_seconds_count":                   0,
		`flowtrack_retransmitted_segments_total{direction="c2s"}`: 0,
		`flowtrack_retransmitted_segments_total{direction="s2c"}`: 0,
	}
	rtts := make(map[uint64]bool)
	for _, recs := range [][]flows.Record{live, mr.retired} {
		for _, r := range recs {
			want[`flowtrack_retransmitted_segments_total{direction="c2s"}`] += float64(r.C2S.Retransmits)
			want[`flowtrack_retransmitted_segments_total{direction="s2c"}`] += float64(r.S2C.Retransmits)
			if r.RTT >= 0 && !rtts[r.ID] {
				rtts[r.ID] = true
				want["flowtrack_handshake_rtt_seconds_count"]++
			}
		}
	}
	return want
}

// checkPairs checks the connections by pair of states: one series each,
// none that vanishes once seen, at most one per pair of states.
func (mr *metricsReplay) checkPairs(when string, s map[string]float64, live []flows.Record) {
	t := mr.t
	t.Helper()
	pairs := make(map[string]float64)
	for _, r := range live {
		pairs[fmt.Sprintf(`flowtrack_connections{client_state="%v",server_state="%v"}`, r.ClientState, r.ServerState)]++
	}
	for k, v := range pairs {
		if s[k] != v {
			t.Errorf("%s: %s is %v, want %v", when, k, s[k], v)
		}
		mr.seenPairs[k] = true
	}
	for k := range mr.seenPairs {
		if _, ok := s[k]; !ok {
			t.Errorf("%s: the series %s, seen before, vanished", when, k)
		}
	}
	n := 0
	for k := range s {
		if strings.HasPrefix(k, "flowtrack_connections{") {
			n++
		}
	}
	if n > nStates*nStates {
		t.Errorf("%s: %d series of flowtrack_connections", when, n)
	}
}

// TestMetricsNames: connections are counted by name source always, and by
// name only with TopNames, in at most TopNames+1 series.
func TestMetricsNames(t *testing.T) {
	names := []string{"a.example", "b.example", "c.example", "a.example", "", "d.example"}
	recs := make([]flows.Record, len(names))
	for i := range recs {
		recs[i].ID = uint64(i + 1)
		recs[i].RTT = -1
	}
	annotate := func(r *flows.Record) local.Info {
		n := names[r.ID-1]
		if n == "" {
			return local.Info{}
		}
		return local.Info{ServerName: n, NameSource: "sni"}
	}
	for _, top := range []int{0, 2} {
		m := NewMetrics(MetricsConfig{Annotate: annotate, TopNames: top})
		m.Retire(recs)
		srv := httptest.NewServer(m.Handler())
		s := scrape(t, srv.URL+"/metrics")
		srv.Close()
		if s[`flowtrack_connections_named_total{source="sni"}`] != 5 || s[`flowtrack_connections_named_total{source="none"}`] != 1 {
			t.Errorf("top %d: by source %v", top, s)
		}
		series := 0
		for k := range s {
			if strings.HasPrefix(k, "flowtrack_connections_by_name_total{") {
				series++
			}
		}
		switch top {
		case 0:
			if series != 0 {
				t.Errorf("%d series by name without TopNames", series)
			}
		default:
			want := map[string]float64{"a.example": 2, "b.example": 1, "(other)": 2}
			for n, v := range want {
				if got := s[`flowtrack_connections_by_name_total{server_name="`+n+`"}`]; got != v {
					t.Errorf("by name %s: %v, want %v", n, got, v)
				}
			}
			if series != top+1 {
				t.Errorf("%d series by name, want %d", series, top+1)
			}
		}
	}
}

// TestMetricsProblems replays captures of pcaps/problems (real kernel
// sockets made to fail: tools/netns-problems) and finds the problems their
// design makes (SCENARIOS.tsv) counted by kind and side when the
// connections end, and, while they are still tracked, in the gauge of the
// connections with each kind. port-pressure, a service's problem, is not a
// connection's.
func TestMetricsProblems(t *testing.T) {
	quick := diag.Config{CloseWait: 2 * time.Second, FinWait2: 2 * time.Second, TrendStep: time.Second}
	for _, c := range []struct {
		pcap string
		cfg  diag.Config
		open map[string]float64 // connections_with_problem by kind, before the flush
		want map[string]float64 // problems_total by kind/side, after it
	}{
		{"clean", diag.Config{}, nil, nil},
		// A closed connection stays tracked for a while (--closed-timeout).
		{"refused", diag.Config{}, map[string]float64{"refused": 1}, map[string]float64{"refused/server": 1}},
		{"close-wait", quick, map[string]float64{"close-wait": 4, "fin-wait-2": 4},
			map[string]float64{"close-wait/server": 4, "fin-wait-2/client": 4}},
		{"half-open", diag.Config{}, map[string]float64{"half-open": 1, "timeout-retransmit": 1, "loss": 1},
			map[string]float64{"half-open/server": 1, "timeout-retransmit/client": 1, "loss/client": 1}},
		{"port-pressure", diag.Config{}, map[string]float64{"early-reuse": 4}, map[string]float64{"early-reuse/client": 4}},
	} {
		t.Run(c.pcap, func(t *testing.T) {
			m := NewMetrics(MetricsConfig{Judge: diag.New(c.cfg)})
			tab := flows.NewTable(flows.Config{OnRetire: m.Retire})
			m.SetTable(tab)
			replayInto(t, "../pcaps/problems/"+c.pcap+".pcap", tab)
			srv := httptest.NewServer(m.Handler())
			defer srv.Close()
			s := scrape(t, srv.URL+"/metrics")
			got := samplesOf(t, s, "flowtrack_connections_with_problem", func(l map[string]string) string { return l["kind"] })
			if !maps.Equal(got, nonzero(c.open)) {
				t.Errorf("connections with a problem at the end of the capture: %v, want %v", got, c.open)
			}
			m.Stop(tab.Flush())
			s = scrape(t, srv.URL+"/metrics")
			got = samplesOf(t, s, "flowtrack_problems_total", func(l map[string]string) string { return l["kind"] + "/" + l["side"] })
			if !maps.Equal(got, nonzero(c.want)) {
				t.Errorf("problems counted: %v, want %v", got, c.want)
			}
			if g := samplesOf(t, s, "flowtrack_connections_with_problem", func(l map[string]string) string { return l["kind"] }); len(g) != 0 {
				t.Errorf("connections with a problem after the flush: %v, want none", g)
			}
		})
	}
}

func nonzero(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// samplesOf returns metric name's nonzero samples keyed by key(labels),
// and fails on a label value that is not a problem kind or a side: the
// labels stay bounded whatever the traffic.
func samplesOf(t *testing.T, s map[string]float64, name string, key func(map[string]string) string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for k, v := range s {
		rest, ok := strings.CutPrefix(k, name+"{")
		if !ok {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
			n, val, _ := strings.Cut(kv, "=")
			labels[n] = strings.Trim(val, `"`)
		}
		if _, ok := diag.ParseKind(labels["kind"]); !ok {
			t.Errorf("%s: kind %q", k, labels["kind"])
		}
		if sd, ok := labels["side"]; ok && sd != "client" && sd != "server" && sd != "service" {
			t.Errorf("%s: side %q", k, sd)
		}
		if len(labels) > 2 {
			t.Errorf("%s: more labels than kind and side", k)
		}
		if v != 0 {
			out[key(labels)] = v
		}
	}
	return out
}

// replayInto applies the TCP packets of a capture file to tab.
func replayInto(t *testing.T, path string, tab interface{ Apply(*flows.Packet) }) {
	t.Helper()
	src, err := capture.OpenFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d := capture.NewDecoder()
	var p flows.Packet
	for {
		data, ci, link, err := src.Next()
		if err != nil {
			break
		}
		if d.Decode(link, data, ci, &p) == capture.ResultTCP {
			tab.Apply(&p)
		}
	}
}
