package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/export"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// exportOptions are the flags that feed the systems aggregating a fleet's
// connections: an IPFIX collector and Prometheus.
type exportOptions struct {
	ipfix         string        // collector: HOST:PORT (UDP), udp://HOST:PORT or tcp://HOST:PORT
	activeTimeout time.Duration // periodic records of long connections, capture time
	metrics       string        // listen address of /metrics
	metricsNames  int           // server names with a series of their own (0: none)
	judge         *diag.Judge   // judges the connections for both (main sets it from the problems' flags)
}

// addFlags registers --ipfix, --ipfix-active-timeout and --metrics.
func (e *exportOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.ipfix, "ipfix", "", "export an IPFIX record per connection to the collector at `HOST:PORT` (UDP; tcp://HOST:PORT for TCP)")
	fs.DurationVar(&e.activeTimeout, "ipfix-active-timeout", time.Minute, "with --ipfix: report a connection still open every this long of capture time (0: only when it ends)")
	fs.StringVar(&e.metrics, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (e.g. :9464)")
	fs.IntVar(&e.metricsNames, "metrics-names", 0, "with --metrics: count connections by server name for the first `N` names seen (the rest as \"(other)\"); 0: no label takes a name")
}

// check validates the flags' values.
func (e *exportOptions) check() error {
	if e.ipfix != "" {
		if _, _, err := export.ParseIPFIXAddr(e.ipfix); err != nil {
			return err
		}
	}
	if e.activeTimeout < 0 {
		return errors.New("--ipfix-active-timeout must be positive (e.g. 60s), or 0 to report connections only when they end")
	}
	if e.metricsNames < 0 || e.metricsNames > 10000 {
		return errors.New("--metrics-names takes 0 to 10000 names: each is a series in every scrape")
	}
	if e.metrics != "" {
		if _, _, err := net.SplitHostPort(e.metrics); err != nil {
			return fmt.Errorf("--metrics %q: want [HOST]:PORT, such as :9464 or 127.0.0.1:9464", e.metrics)
		}
	}
	return nil
}

// exporters feeds one capture's connections to an IPFIX collector and
// serves its Prometheus metrics, as the options ask. A nil *exporters (no
// export flag given) does nothing and passes everything through.
type exporters struct {
	ipfix   *export.IPFIX
	metrics *export.Metrics
	server  *http.Server
	served  chan struct{} // closed when the server has stopped
	addr    string        // the metrics listener's address
	table   *flows.Table
	capture *captureStats // what the metrics say of the capture
	replay  bool
	stderr  io.Writer
}

// startExporters dials the IPFIX collector and starts serving the metrics,
// as o asks; it returns nil if o asks for neither. A replay is never in a
// hurry: its records wait for the network rather than being dropped.
func startExporters(o *exportOptions, replay bool, annotate local.Lookup, stderr io.Writer) (*exporters, error) {
	if o.ipfix == "" && o.metrics == "" {
		return nil, nil
	}
	x := &exporters{replay: replay, stderr: stderr}
	if o.ipfix != "" {
		active := o.activeTimeout
		if active == 0 {
			active = -1 // never
		}
		ipfix, err := export.DialIPFIX(o.ipfix, export.IPFIXConfig{
			ActiveTimeout: active,
			Replay:        replay,
			Annotate:      annotate,
			Judge:         o.judge,
		})
		if err != nil {
			return nil, err
		}
		x.ipfix = ipfix
	}
	if o.metrics != "" {
		ln, err := net.Listen("tcp", o.metrics)
		if err != nil {
			if x.ipfix != nil {
				_ = x.ipfix.Close()
			}
			return nil, fmt.Errorf("--metrics: %w", err)
		}
		x.capture = &captureStats{}
		x.metrics = export.NewMetrics(export.MetricsConfig{IPFIX: x.ipfix, Capture: x.capture.stats,
			Annotate: annotate, TopNames: o.metricsNames, Judge: o.judge})
		mux := http.NewServeMux()
		mux.Handle("/metrics", x.metrics.Handler())
		x.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		x.addr = ln.Addr().String()
		x.served = make(chan struct{})
		go func() {
			defer close(x.served)
			_ = x.server.Serve(ln)
		}()
	}
	return x, nil
}

// hook makes cfg's OnRetire and OnChange also feed the exporters, after
// whatever they already do. Call it once the other hooks are set, before
// flows.NewTable(*cfg).
func (x *exporters) hook(cfg *flows.Config) {
	if x == nil {
		return
	}
	retire, change := cfg.OnRetire, cfg.OnChange
	cfg.OnRetire = func(recs []flows.Record) {
		if retire != nil {
			retire(recs)
		}
		if x.ipfix != nil {
			x.ipfix.Retire(recs)
		}
		if x.metrics != nil {
			x.metrics.Retire(recs)
		}
	}
	if x.metrics != nil {
		cfg.OnChange = func(ev flows.Event) {
			if change != nil {
				change(ev)
			}
			x.metrics.Change(ev)
		}
	}
}

// attach hands the exporters the table made with the hooked configuration
// and the capture's counters, before the capture starts. It returns the
// source to read instead of src (for a live capture, it reads the kernel's
// drop counters on the capture goroutine, as a Source is not safe for
// concurrent use) and the sink the capture goes to: sink, then the IPFIX
// active timeout on capture time.
func (x *exporters) attach(t *flows.Table, c *capture.Counters, src capture.Source, sink capture.Sink) (capture.Source, capture.Sink) {
	if x == nil {
		return src, sink
	}
	x.table = t
	if x.metrics != nil {
		x.capture.counters.Store(c)
		if !x.replay { // a file has no drops, and is read faster unwrapped
			p := capture.NewPolled(src, true)
			x.capture.polled.Store(p)
			src = p
		}
		x.metrics.SetTable(t)
	}
	if x.ipfix == nil {
		return src, sink
	}
	return src, ipfixSink{next: sink, t: t, ipfix: x.ipfix}
}

// ipfixSink hands the capture on to next (the table or its lanes) and runs
// the IPFIX active timeout on the capture time of every frame.
type ipfixSink struct {
	next  capture.Sink
	t     *flows.Table
	ipfix *export.IPFIX
}

func (s ipfixSink) Apply(p *flows.Packet) {
	s.next.Apply(p)
	s.ipfix.Tick(s.t, p.TS)
}

func (s ipfixSink) Advance(ts int64) {
	s.next.Advance(ts)
	s.ipfix.Tick(s.t, ts)
}

// perPacket reports whether an exporter of a replay must see the table as
// each packet leaves it: the IPFIX active timeout runs on capture time,
// and a replay's look at the table happens at the packet. (A live
// capture's look runs on a goroutine of the exporter's, at no particular
// packet: the lanes change nothing there.)
func (x *exporters) perPacket() bool { return x != nil && x.ipfix != nil }

// flushed exports a batch of the connections still tracked when the
// capture stopped (Table.FlushEach); finish(nil) then ends the export.
func (x *exporters) flushed(batch []flows.Record) {
	if x == nil {
		return
	}
	if x.metrics != nil {
		x.metrics.Stop(batch)
	}
	if x.ipfix != nil {
		x.ipfix.Retire(batch)
	}
}

// finish exports rest (the connections still tracked when the capture
// stopped, if not already handed to flushed), sends what is left to the
// collector, stops serving the metrics, and prints a line about the export
// to stderr.
func (x *exporters) finish(rest []flows.Record) {
	if x == nil {
		return
	}
	if x.metrics != nil {
		x.metrics.Stop(rest)
	}
	if x.ipfix != nil {
		err := x.ipfix.Stop(rest)
		st := x.ipfix.Stats()
		network, addr := x.ipfix.Addr()
		fmt.Fprintf(x.stderr, "ipfix: %d records in %d messages to %s://%s", st.Records, st.Messages, network, addr)
		if err != nil {
			fmt.Fprintf(x.stderr, "; %v", err)
		}
		fmt.Fprintln(x.stderr)
	}
	if x.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = x.server.Shutdown(ctx)
		<-x.served
	}
}

// captureStats is what the metrics say of the capture. Its sources are
// set before the capture starts, and read by scrapes on other goroutines.
type captureStats struct {
	counters atomic.Pointer[capture.Counters]
	polled   atomic.Pointer[capture.Polled] // a live capture's drops; nil for a replay
}

// stats returns the capture's totals.
func (d *captureStats) stats() export.CaptureStats {
	var s export.CaptureStats
	if p := d.polled.Load(); p != nil {
		s.KernelDrops, s.InterfaceDrops = p.Drops()
	}
	if c := d.counters.Load(); c != nil {
		s.Frames, s.Bytes, s.TCP = c.Frames.Load(), c.Bytes.Load(), c.TCP.Load()
		s.NonTCP, s.Malformed = c.NonTCP.Load(), c.Malformed.Load()
	}
	return s
}
