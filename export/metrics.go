package export

import (
	"bytes"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// CaptureStats are a capture's running totals, as Metrics reads them at
// each scrape.
type CaptureStats struct {
	Frames         uint64 // frames read
	Bytes          uint64 // their wire lengths, summed
	TCP            uint64 // frames that gave a TCP packet
	NonTCP         uint64 // well-formed frames that are not TCP
	Malformed      uint64 // frames that could not be decoded
	KernelDrops    uint64 // frames the kernel dropped (buffer full)
	InterfaceDrops uint64 // frames the interface or driver dropped
}

// MetricsConfig configures Metrics.
type MetricsConfig struct {
	// Capture returns the capture's totals; it is called at each scrape,
	// from the HTTP server's goroutine. Nil: no capture metrics.
	Capture func() CaptureStats
	// IPFIX, if set, is an exporter whose totals are exported too.
	IPFIX *IPFIX
	// Annotate, if set, names the connections that end: they are counted
	// by where their name came from (flowtrack_connections_named_total,
	// one series per source), and with TopNames > 0 by the name itself.
	Annotate local.Lookup
	// TopNames is how many server names get a series of their own in
	// flowtrack_connections_by_name_total; the first TopNames names seen
	// do, the others are counted as "(other)". 0: no such metric, so that
	// no label ever takes a value from the traffic.
	TopNames int
	// Judge, if set, judges the connections (docs/problems.md): those
	// that end are counted by problem kind and side
	// (flowtrack_problems_total), those tracked by kind at each scrape
	// (flowtrack_connections_with_problem). Judged without their
	// service's usual RTT, which a long run would have to keep for every
	// server: slow-connect counts only resent handshake segments.
	Judge *diag.Judge
}

// nStates is the number of endpoint states.
const nStates = int(flows.StateTimeWait) + 1

// rttName is the handshake RTT histogram's name.
const rttName = "flowtrack_handshake_rtt_seconds"

// rttBuckets are the upper bounds of the handshake RTT histogram's buckets.
var rttBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// endReasons are the values of flowtrack_connections_closed_total's reason.
var endReasons = [...]EndReason{EndOfFlow, EndIdle, EndForced, EndLackOfResource}

// Metrics are Prometheus metrics of one capture and its flow table:
// frames, bytes, drops and malformed frames; connections opened and closed
// (by flowEndReason); connections now tracked by client and server state;
// handshake RTTs; retransmitted segments per direction; and the IPFIX
// exporter's totals. No label has more values than there are states or
// reasons, so the number of series is bounded whatever the traffic.
//
// Gauges by state are computed from a snapshot of the table at each
// scrape, on the HTTP server's goroutine. The capture goroutine only
// updates atomic counters and the RTT histogram (through Change and
// Retire), so a slow scrape never holds it up.
//
// Metrics is safe for concurrent use. Feed it with Change
// (flows.Config.OnChange), Retire (OnRetire) and Stop (the records of
// Table.Flush), give it the table with SetTable, and serve Handler.
type Metrics struct {
	capture func() CaptureStats
	ipfix   *IPFIX
	table   atomic.Pointer[flows.Table]

	// rtt is a classic Prometheus histogram, alone in its set: the set
	// is only the means to write it.
	rtt    *metrics.PrometheusHistogram
	rttSet *metrics.Set

	closedBy [EndLackOfResource + 1]atomic.Uint64
	retired  [2]atomic.Uint64 // retransmits of retired connections, c2s and s2c

	annotate local.Lookup
	topNames int
	namesMu  sync.Mutex        // guards named, byName and nameSeen
	named    map[string]uint64 // by name source: bounded by the sources
	byName   map[string]uint64 // by name: bounded by TopNames + 1
	nameSeen map[string]struct{}

	judge    *diag.Judge
	problems [diag.NumKinds][diag.SideService + 1]atomic.Uint64 // by kind and side

	rttMu   sync.Mutex          // guards rttSeen
	rttSeen map[uint64]struct{} // connections whose RTT was observed, until they retire

	mu        sync.Mutex // guards the following, for WritePrometheus
	snap      []flows.Record
	lastRetx  [2]uint64
	shownPair [nStates][nStates]bool // state pairs exported once, kept (at 0) so that series do not vanish
	shownKind diag.Set               // kinds exported once in connections_with_problem, kept likewise
}

// NewMetrics returns the metrics, which Handler serves with the Go
// runtime's and the process's own.
func NewMetrics(cfg MetricsConfig) *Metrics {
	// The go_* and process_* metrics then carry their TYPE (and an empty
	// HELP). The switch is the library's only one, and global; our own
	// metrics are written with their HELP and TYPE whatever it says.
	metrics.ExposeMetadata(true)
	m := &Metrics{
		capture: cfg.Capture,
		ipfix:   cfg.IPFIX,
		rttSeen: make(map[uint64]struct{}),
		rttSet:  metrics.NewSet(),
		judge:   cfg.Judge,
	}
	m.rtt = m.rttSet.NewPrometheusHistogramExt(rttName, rttBuckets)
	if cfg.Annotate != nil {
		m.annotate, m.topNames = cfg.Annotate, cfg.TopNames
		m.named = make(map[string]uint64)
		if m.topNames > 0 {
			m.nameSeen = make(map[string]struct{})
			m.byName = make(map[string]uint64)
		}
	}
	return m
}

// SetTable gives the metrics the table to read at each scrape.
func (m *Metrics) SetTable(t *flows.Table) { m.table.Store(t) }

// Handler serves the metrics in Prometheus's text exposition format.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.WritePrometheus(w)
	})
}

// Change observes a connection's handshake RTT the first time one of its
// events carries it. Its signature fits flows.Config.OnChange.
func (m *Metrics) Change(ev flows.Event) {
	if ev.Record.RTT < 0 {
		return
	}
	m.rttMu.Lock()
	_, seen := m.rttSeen[ev.Record.ID]
	if !seen {
		m.rttSeen[ev.Record.ID] = struct{}{}
	}
	m.rttMu.Unlock()
	if !seen {
		m.rtt.Update(ev.Record.RTT.Seconds())
	}
}

// Retire counts connections the table retired. Its signature fits
// flows.Config.OnRetire.
func (m *Metrics) Retire(recs []flows.Record) {
	for i := range recs {
		m.end(&recs[i], Reason(&recs[i]))
	}
}

// Stop counts the connections still tracked when the capture stopped (the
// records Table.Flush returns), as Retire does: their reason says so.
func (m *Metrics) Stop(recs []flows.Record) { m.Retire(recs) }

// countName counts r's name, if the metrics name connections.
func (m *Metrics) countName(r *flows.Record) {
	if m.annotate == nil {
		return
	}
	l := m.annotate(r)
	src := l.NameSource
	if l.ServerName == "" {
		src = "none"
	}
	m.namesMu.Lock()
	defer m.namesMu.Unlock()
	m.named[src]++
	if m.byName == nil || l.ServerName == "" {
		return
	}
	name := l.ServerName
	if _, ok := m.nameSeen[name]; !ok {
		if len(m.nameSeen) < m.topNames {
			m.nameSeen[name] = struct{}{}
		} else {
			name = "(other)"
		}
	}
	m.byName[name]++
}

// countProblems counts r's problems as of the table's time now.
func (m *Metrics) countProblems(r *flows.Record, now time.Time) {
	if m.judge == nil {
		return
	}
	var seen [diag.NumKinds][diag.SideService + 1]bool // a kind resting on both of two FINs, say, counts once
	for _, p := range m.judge.Problems(r, m.judge.Until(r, now), nil) {
		if p.Kind < diag.NumKinds && p.Side <= diag.SideService && !seen[p.Kind][p.Side] {
			seen[p.Kind][p.Side] = true
			m.problems[p.Kind][p.Side].Add(1)
		}
	}
}

// now returns the table's capture time (zero without a table).
func (m *Metrics) now() time.Time {
	if t := m.table.Load(); t != nil {
		return t.Now()
	}
	return time.Time{}
}

func (m *Metrics) end(r *flows.Record, reason EndReason) {
	m.countName(r)
	m.countProblems(r, m.now())
	m.retired[0].Add(r.C2S.Retransmits)
	m.retired[1].Add(r.S2C.Retransmits)
	m.closedBy[reason].Add(1)
	m.rttMu.Lock()
	_, seen := m.rttSeen[r.ID]
	delete(m.rttSeen, r.ID)
	m.rttMu.Unlock()
	if !seen && r.RTT >= 0 {
		m.rtt.Update(r.RTT.Seconds())
	}
}

// WritePrometheus writes the metrics in Prometheus's text exposition
// format (version 0.0.4), then the Go runtime's and the process's own.
// It reads the capture's totals, the table's snapshot and the exporter's
// totals.
func (m *Metrics) WritePrometheus(w io.Writer) {
	var p expo
	m.writeCapture(&p)
	m.writeEnds(&p)
	if t := m.table.Load(); t != nil {
		m.writeTable(&p, t)
	}
	if m.ipfix != nil {
		s := m.ipfix.Stats()
		p.counter("ipfix_messages_total", "IPFIX messages written to the collector.", s.Messages)
		p.counter("ipfix_records_total", "IPFIX data records written to the collector.", s.Records)
		p.counter("ipfix_dropped_records_total", "IPFIX data records lost: the send queue was full, or writing failed.", s.DroppedRecords)
		p.counter("ipfix_errors_total", "Failed writes and connection attempts to the IPFIX collector.", s.Errors)
	}
	buf := bytes.NewBuffer(p.b)
	metrics.WriteProcessMetrics(buf)
	metrics.WriteFDMetrics(buf)
	_, _ = w.Write(buf.Bytes()) // a failed write is the scraper's to see
}

// writeCapture writes the capture's totals.
func (m *Metrics) writeCapture(p *expo) {
	if m.capture == nil {
		return
	}
	s := m.capture()
	p.counter("capture_frames_total", "Frames read from the capture.", s.Frames)
	p.counter("capture_bytes_total", "Wire lengths of the frames read, summed.", s.Bytes)
	p.counter("capture_tcp_packets_total", "Frames that gave a TCP packet.", s.TCP)
	p.counter("capture_other_frames_total", "Well-formed frames that are not TCP.", s.NonTCP)
	p.counter("capture_malformed_frames_total", "Frames that could not be decoded.", s.Malformed)
	p.family("capture_dropped_frames_total", "counter", "Frames dropped before flowtrack read them, by the kernel (its buffer was full) or by the interface.")
	p.sample("capture_dropped_frames_total", s.KernelDrops, "by", "kernel")
	p.sample("capture_dropped_frames_total", s.InterfaceDrops, "by", "interface")
}

// writeEnds writes what was counted as connections ended: the RTT
// histogram, and the connections closed, named and with problems.
func (m *Metrics) writeEnds(p *expo) {
	p.family(strings.TrimPrefix(rttName, "flowtrack_"), "histogram",
		"Handshake round-trip time seen at the capture point (SYN to the ACK of the SYN-ACK), once per connection.")
	var h bytes.Buffer
	m.rttSet.WritePrometheus(&h)
	p.samplesOf(h.Bytes())
	p.family("connections_closed_total", "counter", "Connections retired (written out and forgotten), by IPFIX flowEndReason: end_of_flow (FIN or RST, or replaced on its 4-tuple), idle_timeout, forced_end (still open when the capture stopped), lack_of_resources (evicted from a full table).")
	for _, r := range endReasons {
		p.sample("connections_closed_total", m.closedBy[r].Load(), "reason", r.String())
	}
	if m.annotate != nil {
		m.namesMu.Lock()
		named, byName := sorted(m.named), sorted(m.byName)
		m.namesMu.Unlock()
		p.family("connections_named_total", "counter", "Connections retired, by where their name came from: sni (TLS ClientHello), host (HTTP/1 Host), dns (a DNS answer seen before the connection), none.")
		for _, kv := range named {
			p.sample("connections_named_total", kv.n, "source", kv.label)
		}
		if m.byName != nil {
			p.family("connections_by_name_total", "counter", "Connections retired, by the name their client asked for: the first names seen each get a series (--metrics-names), the rest are counted as (other).")
			for _, kv := range byName {
				p.sample("connections_by_name_total", kv.n, "server_name", kv.label)
			}
		}
	}
	if m.judge != nil {
		p.family("problems_total", "counter", "Connections retired with a problem of the kind, by the side it is about (client or server): each connection counted once per kind and side, as its final verdict (docs/problems.md).")
		for k := range diag.NumKinds {
			for s := range diag.SideService + 1 {
				// A series appears at its first count; as a counter
				// never goes back, it never vanishes.
				if n := m.problems[k][s].Load(); n > 0 {
					p.sample("problems_total", n, "kind", k.String(), "side", s.String())
				}
			}
		}
	}
}

// labelCount is a label value and its count.
type labelCount struct {
	label string
	n     uint64
}

// sorted returns m's counts in the order of their labels.
func sorted(m map[string]uint64) []labelCount {
	out := make([]labelCount, 0, len(m))
	for l, n := range m {
		out = append(out, labelCount{l, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].label < out[j].label })
	return out
}

// writeTable writes the metrics computed from a snapshot of t.
func (m *Metrics) writeTable(p *expo, t *flows.Table) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Read the retired totals before the snapshot: a connection retired
	// before this read left the table before it, so it is not counted
	// twice. One retired in between is missed, and the counter would dip;
	// it is kept from going back instead, and catches up at the next
	// scrape.
	retx := [2]uint64{m.retired[0].Load(), m.retired[1].Load()}
	opened := t.Opened()
	m.snap = t.AppendSnapshot(m.snap[:0])
	var pairs [nStates][nStates]uint64
	var kinds [diag.NumKinds]uint64
	now := t.Now()
	for i := range m.snap {
		r := &m.snap[i]
		if int(r.ClientState) < nStates && int(r.ServerState) < nStates {
			pairs[r.ClientState][r.ServerState]++
		}
		retx[0] += r.C2S.Retransmits
		retx[1] += r.S2C.Retransmits
		if m.judge != nil {
			for _, k := range m.judge.Kinds(r, now, nil).Kinds() {
				kinds[k]++
			}
		}
	}
	if cap(m.snap) > 1<<16 {
		m.snap = nil // do not keep a huge table's copy between scrapes
	}
	p.counter("connections_opened_total", "Connections seen (a new SYN on a 4-tuple starts a new one).", opened)
	p.family("connections", "gauge", "Connections tracked now, by the inferred state of each endpoint.")
	for c := range nStates {
		for s := range nStates {
			if pairs[c][s] == 0 && !m.shownPair[c][s] {
				continue
			}
			m.shownPair[c][s] = true
			p.sample("connections", pairs[c][s], "client_state", flows.State(c).String(), "server_state", flows.State(s).String())
		}
	}
	if m.judge != nil {
		p.family("connections_with_problem", "gauge", "Connections tracked now that have a problem of the kind (docs/problems.md), judged at the scrape.")
		for k := range diag.NumKinds {
			if kinds[k] == 0 && !m.shownKind.Has(k) {
				continue
			}
			m.shownKind = m.shownKind.Add(k)
			p.sample("connections_with_problem", kinds[k], "kind", k.String())
		}
	}
	p.family("retransmitted_segments_total", "counter", "Retransmitted segments, by direction: c2s from client to server, s2c back.")
	for i, dir := range []string{"c2s", "s2c"} {
		m.lastRetx[i] = max(m.lastRetx[i], retx[i])
		p.sample("retransmitted_segments_total", m.lastRetx[i], "direction", dir)
	}
}

// expo builds flowtrack's metrics in the text exposition format: each
// family's HELP and TYPE, then its samples. A family without samples is
// left out, HELP and TYPE too, as client_golang did. The names it is
// given lack the "flowtrack_" prefix, which it adds.
type expo struct {
	b       []byte
	pending []byte // the HELP and TYPE of a family whose first sample is still to come
}

// family starts the metric family name of type typ.
func (p *expo) family(name, typ, help string) {
	p.pending = append(p.pending[:0], "# HELP flowtrack_"...)
	p.pending = append(p.pending, name...)
	p.pending = append(p.pending, ' ')
	p.pending = appendEscaped(p.pending, help, false)
	p.pending = append(p.pending, "\n# TYPE flowtrack_"...)
	p.pending = append(p.pending, name...)
	p.pending = append(p.pending, ' ')
	p.pending = append(p.pending, typ...)
	p.pending = append(p.pending, '\n')
}

// header writes the pending family's HELP and TYPE, if it has not yet.
func (p *expo) header() {
	p.b = append(p.b, p.pending...)
	p.pending = p.pending[:0]
}

// counter writes a counter without labels, family and sample.
func (p *expo) counter(name, help string, v uint64) {
	p.family(name, "counter", help)
	p.sample(name, v)
}

// sample writes a sample of name with the labels given as pairs of name
// and value.
func (p *expo) sample(name string, v uint64, labels ...string) {
	p.header()
	p.b = append(p.b, "flowtrack_"...)
	p.b = append(p.b, name...)
	for i := 0; i+1 < len(labels); i += 2 {
		if i == 0 {
			p.b = append(p.b, '{')
		} else {
			p.b = append(p.b, ',')
		}
		p.b = append(p.b, labels[i]...)
		p.b = append(p.b, `="`...)
		// Prometheus refuses a whole scrape for one label value that is
		// not UTF-8; the names flowtrack reads are host names, but a
		// label is no place to find out.
		p.b = appendEscaped(p.b, strings.ToValidUTF8(labels[i+1], "\uFFFD"), true)
		p.b = append(p.b, '"')
	}
	if len(labels) >= 2 {
		p.b = append(p.b, '}')
	}
	p.b = append(p.b, ' ')
	p.b = strconv.AppendUint(p.b, v, 10)
	p.b = append(p.b, '\n')
}

// samplesOf copies the sample lines of text, which the library wrote,
// leaving out its comments: the family's own HELP and TYPE are written
// before, whether or not the library writes its own.
func (p *expo) samplesOf(text []byte) {
	for line := range bytes.Lines(text) {
		if !bytes.HasPrefix(line, []byte("#")) {
			p.header()
			p.b = append(p.b, line...)
		}
	}
}

// appendEscaped appends s as the text format escapes it: a backslash and
// a line feed in a HELP text, and a double quote too in a label value.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
