package export

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
// Metrics is a prometheus.Collector and is safe for concurrent use. Feed
// it with Change (flows.Config.OnChange), Retire (OnRetire) and Stop (the
// records of Table.Flush), and give it the table with SetTable.
type Metrics struct {
	capture func() CaptureStats
	ipfix   *IPFIX
	table   atomic.Pointer[flows.Table]
	reg     *prometheus.Registry

	rtt      prometheus.Histogram
	closed   *prometheus.CounterVec
	named    *prometheus.CounterVec // by name source: bounded by the sources
	byName   *prometheus.CounterVec // by name: bounded by TopNames + 1
	annotate local.Lookup
	topNames int
	namesMu  sync.Mutex // guards nameSeen
	nameSeen map[string]struct{}
	closedBy [EndLackOfResource + 1]prometheus.Counter
	retired  [2]atomic.Uint64 // retransmits of retired connections, c2s and s2c
	judge    *diag.Judge
	problems *prometheus.CounterVec // by kind and side: bounded by diag.NumKinds × 3

	rttMu   sync.Mutex          // guards rttSeen
	rttSeen map[uint64]struct{} // connections whose RTT was observed, until they retire

	mu        sync.Mutex // guards the following, for Collect
	snap      []flows.Record
	lastRetx  [2]uint64
	shownPair [nStates][nStates]bool // state pairs exported once, kept (at 0) so that series do not vanish
	shownKind diag.Set               // kinds exported once in dProblemConns, kept likewise

	dFrames, dBytes, dTCP, dOther, dMalformed, dDropped *prometheus.Desc
	dOpened, dConns, dRetx, dProblemConns               *prometheus.Desc
	dXMsgs, dXRecs, dXDropped, dXErrors                 *prometheus.Desc
}

// NewMetrics returns the metrics, registered with the Go runtime's and the
// process's own in the registry that Handler serves.
func NewMetrics(cfg MetricsConfig) *Metrics {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("flowtrack_"+name, help, labels, nil)
	}
	m := &Metrics{
		capture: cfg.Capture,
		ipfix:   cfg.IPFIX,
		rttSeen: make(map[uint64]struct{}),
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "flowtrack_handshake_rtt_seconds",
			Help: "Handshake round-trip time seen at the capture point (SYN to the ACK of the SYN-ACK), once per connection.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1,
				.25, .5, 1, 2.5, 5},
		}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowtrack_connections_closed_total",
			Help: "Connections retired (written out and forgotten), by IPFIX flowEndReason: end_of_flow (FIN or RST, or replaced on its 4-tuple), idle_timeout, forced_end (still open when the capture stopped), lack_of_resources (evicted from a full table).",
		}, []string{"reason"}),
		dFrames:    desc("capture_frames_total", "Frames read from the capture."),
		dBytes:     desc("capture_bytes_total", "Wire lengths of the frames read, summed."),
		dTCP:       desc("capture_tcp_packets_total", "Frames that gave a TCP packet."),
		dOther:     desc("capture_other_frames_total", "Well-formed frames that are not TCP."),
		dMalformed: desc("capture_malformed_frames_total", "Frames that could not be decoded."),
		dDropped:   desc("capture_dropped_frames_total", "Frames dropped before flowtrack read them, by the kernel (its buffer was full) or by the interface.", "by"),
		dOpened:    desc("connections_opened_total", "Connections seen (a new SYN on a 4-tuple starts a new one)."),
		dConns:     desc("connections", "Connections tracked now, by the inferred state of each endpoint.", "client_state", "server_state"),
		dRetx:      desc("retransmitted_segments_total", "Retransmitted segments, by direction: c2s from client to server, s2c back.", "direction"),
		dXMsgs:     desc("ipfix_messages_total", "IPFIX messages written to the collector."),
		dXRecs:     desc("ipfix_records_total", "IPFIX data records written to the collector."),
		dXDropped:  desc("ipfix_dropped_records_total", "IPFIX data records lost: the send queue was full, or writing failed."),
		dXErrors:   desc("ipfix_errors_total", "Failed writes and connection attempts to the IPFIX collector."),
	}
	for _, r := range []EndReason{EndOfFlow, EndIdle, EndForced, EndLackOfResource} {
		m.closedBy[r] = m.closed.WithLabelValues(r.String())
	}
	m.reg = prometheus.NewRegistry()
	if cfg.Annotate != nil {
		m.annotate, m.topNames = cfg.Annotate, cfg.TopNames
		m.named = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowtrack_connections_named_total",
			Help: "Connections retired, by where their name came from: sni (TLS ClientHello), host (HTTP/1 Host), dns (a DNS answer seen before the connection), none.",
		}, []string{"source"})
		m.reg.MustRegister(m.named)
		if m.topNames > 0 {
			m.nameSeen = make(map[string]struct{})
			m.byName = prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "flowtrack_connections_by_name_total",
				Help: "Connections retired, by the name their client asked for: the first names seen each get a series (--metrics-names), the rest are counted as (other).",
			}, []string{"server_name"})
			m.reg.MustRegister(m.byName)
		}
	}
	if cfg.Judge != nil {
		m.judge = cfg.Judge
		m.dProblemConns = desc("connections_with_problem", "Connections tracked now that have a problem of the kind (docs/problems.md), judged at the scrape.", "kind")
		m.problems = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowtrack_problems_total",
			Help: "Connections retired with a problem of the kind, by the side it is about (client or server): each connection counted once per kind and side, as its final verdict (docs/problems.md).",
		}, []string{"kind", "side"})
		m.reg.MustRegister(m.problems)
	}
	m.reg.MustRegister(m, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetTable gives the metrics the table to read at each scrape.
func (m *Metrics) SetTable(t *flows.Table) { m.table.Store(t) }

// Handler serves the metrics in Prometheus's exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
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
		m.rtt.Observe(ev.Record.RTT.Seconds())
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
// records Table.Flush returns).
func (m *Metrics) Stop(recs []flows.Record) {
	for i := range recs {
		m.end(&recs[i], Reason(&recs[i]))
	}
}

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
	m.named.WithLabelValues(src).Inc()
	if m.byName == nil || l.ServerName == "" {
		return
	}
	name := l.ServerName
	m.namesMu.Lock()
	if _, ok := m.nameSeen[name]; !ok {
		if len(m.nameSeen) < m.topNames {
			m.nameSeen[name] = struct{}{}
		} else {
			name = "(other)"
		}
	}
	m.namesMu.Unlock()
	m.byName.WithLabelValues(name).Inc()
}

// countProblems counts r's problems as of the table's time now.
func (m *Metrics) countProblems(r *flows.Record, now time.Time) {
	if m.judge == nil {
		return
	}
	var seen [diag.NumKinds][3]bool // a kind resting on both of two FINs, say, counts once
	for _, p := range m.judge.Problems(r, m.judge.Until(r, now), nil) {
		if p.Kind < diag.NumKinds && p.Side <= diag.SideService && !seen[p.Kind][p.Side] {
			seen[p.Kind][p.Side] = true
			m.problems.WithLabelValues(p.Kind.String(), p.Side.String()).Inc()
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
	m.closedBy[reason].Inc()
	m.rttMu.Lock()
	_, seen := m.rttSeen[r.ID]
	delete(m.rttSeen, r.ID)
	m.rttMu.Unlock()
	if !seen && r.RTT >= 0 {
		m.rtt.Observe(r.RTT.Seconds())
	}
}

// Describe sends the descriptions of all the metrics.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.dFrames, m.dBytes, m.dTCP, m.dOther, m.dMalformed, m.dDropped,
		m.dOpened, m.dConns, m.dRetx, m.dXMsgs, m.dXRecs, m.dXDropped, m.dXErrors} {
		ch <- d
	}
	if m.judge != nil {
		ch <- m.dProblemConns
	}
	m.rtt.Describe(ch)
	m.closed.Describe(ch)
}

// Collect reads the capture's totals, the table's snapshot and the
// exporter's totals, and sends the metrics.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if m.capture != nil {
		s := m.capture()
		counter(m.dFrames, s.Frames)
		counter(m.dBytes, s.Bytes)
		counter(m.dTCP, s.TCP)
		counter(m.dOther, s.NonTCP)
		counter(m.dMalformed, s.Malformed)
		counter(m.dDropped, s.KernelDrops, "kernel")
		counter(m.dDropped, s.InterfaceDrops, "interface")
	}
	m.rtt.Collect(ch)
	m.closed.Collect(ch)
	if t := m.table.Load(); t != nil {
		m.collectTable(t, ch)
	}
	if m.ipfix != nil {
		s := m.ipfix.Stats()
		counter(m.dXMsgs, s.Messages)
		counter(m.dXRecs, s.Records)
		counter(m.dXDropped, s.DroppedRecords)
		counter(m.dXErrors, s.Errors)
	}
}

// collectTable sends the metrics computed from a snapshot of t.
func (m *Metrics) collectTable(t *flows.Table, ch chan<- prometheus.Metric) {
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
	ch <- prometheus.MustNewConstMetric(m.dOpened, prometheus.CounterValue, float64(opened))
	for c := range nStates {
		for s := range nStates {
			if pairs[c][s] == 0 && !m.shownPair[c][s] {
				continue
			}
			m.shownPair[c][s] = true
			ch <- prometheus.MustNewConstMetric(m.dConns, prometheus.GaugeValue, float64(pairs[c][s]),
				flows.State(c).String(), flows.State(s).String())
		}
	}
	if m.judge != nil {
		for k := range diag.NumKinds {
			if kinds[k] == 0 && !m.shownKind.Has(k) {
				continue
			}
			m.shownKind = m.shownKind.Add(k)
			ch <- prometheus.MustNewConstMetric(m.dProblemConns, prometheus.GaugeValue, float64(kinds[k]), k.String())
		}
	}
	for i, dir := range []string{"c2s", "s2c"} {
		m.lastRetx[i] = max(m.lastRetx[i], retx[i])
		ch <- prometheus.MustNewConstMetric(m.dRetx, prometheus.CounterValue, float64(m.lastRetx[i]), dir)
	}
}
