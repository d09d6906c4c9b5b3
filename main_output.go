package main

import (
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/export"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// sink is where a headless run (-o) writes the connections: one
// implementation per output mode.
type sink interface {
	// hook sets cfg's OnChange and OnRetire to write connections as they
	// change or leave the table, as the mode does.
	hook(cfg *flows.Config)
	// end writes a batch of the connections still tracked when the capture
	// stopped (Table.FlushEach); now is the table's clock.
	end(batch []flows.Record, now time.Time) error
	// flush writes out what is buffered: a live capture's records come
	// out within a second.
	flush() error
	// close writes what is left; nothing is written after it.
	close() error
}

// newSink returns the sink of o's output mode (-o, --follow, --problems),
// writing to w. annotate, if set (a live capture), adds what this host
// knows of each connection's endpoints; judge says what is wrong with
// each.
func newSink(o *options, w io.Writer, annotate local.Lookup, judge *problemJudge) sink {
	switch {
	case o.problems:
		return &problemSink{w: w, json: o.output == "json", annotate: annotate, judge: judge}
	case o.follow:
		jw := export.NewJSON(w)
		jw.Annotate = annotate
		jw.Problems = func(r *flows.Record) []diag.Problem {
			return judge.judge.Problems(r, judge.judge.Until(r, judge.now()), judge.svc)
		}
		return newFollowSink(jw, judge)
	case o.output == "json":
		jw := export.NewBufferedJSON(w)
		if o.iface == "" {
			jw = export.NewAsyncJSON(w, runtime.GOMAXPROCS(0)) // a replay: encode beside the table's updates
		}
		jw.Annotate = annotate
		jw.Problems = judge.problems
		return jsonSink{jw}
	case o.output == "zeek":
		z := export.NewZeekLog(w, time.Now())
		z.Service = zeekService(annotate)
		return zeekSink{z}
	case o.output == "none":
		return noSink{}
	}
	return &tableSink{w: w, annotate: annotate, judge: judge}
}

// gcPercent is the garbage collector's goal (GOGC), unless the user set
// one. The table's connections, indexes and cold records are outside the
// Go heap (flows' slab), so what the heap holds is buffers and the
// garbage of records, a few megabytes: the default goal of twice that
// would be memory the table needs, and a collection of so small a heap
// costs little.
const gcPercent = 50

// setGC sets the garbage collector's goal, unless the user set GOGC.
func setGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// flushGCPercent is the garbage collector's goal (GOGC) while the table's
// last connections are written. The records, their problems and the
// encoders' buffers are garbage that would let the heap grow to twice
// what it holds, just when the table is at its largest (its connections
// are outside the heap and go as they are written, flows.Table.FlushEach);
// the heap is small then, so a collection costs little.
const flushGCPercent = 25

// flushGC sets the garbage collector's goal for the final flush, unless
// the user set GOGC, and returns what restores it. It also gives the
// heap's free pages back to the system: the heap's retained pages follow
// the run's larger goal, and the runtime would return them only slowly,
// while the flush's records come on top of the table at its largest.
func flushGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(flushGCPercent)
	debug.FreeOSMemory()
	return func() { debug.SetGCPercent(old) }
}

// jsonSink writes one NDJSON record per connection, when it leaves the
// table or at the end.
type jsonSink struct{ jw *export.JSON }

func (s jsonSink) hook(cfg *flows.Config) {
	cfg.OnRetire = func(r []flows.Record) { _ = s.jw.Write(r) }
}
func (s jsonSink) end(batch []flows.Record, _ time.Time) error { return s.jw.Write(batch) }
func (s jsonSink) flush() error                                { return s.jw.Flush() }
func (s jsonSink) close() error                                { return s.jw.Close() }

// tableSink gathers every connection and writes them as one table, by
// start time, at the end.
type tableSink struct {
	w        io.Writer
	annotate local.Lookup
	judge    *problemJudge
	recs     []flows.Record
}

func (s *tableSink) hook(cfg *flows.Config) {
	cfg.OnRetire = func(r []flows.Record) { s.recs = append(s.recs, r...) }
}

func (s *tableSink) end(batch []flows.Record, _ time.Time) error {
	s.recs = append(s.recs, batch...)
	return nil
}
func (s *tableSink) flush() error { return nil }

func (s *tableSink) close() error {
	flows.SortByStart(s.recs)
	return export.WriteTable(s.w, s.recs, s.annotate, s.judge.kinds)
}

// zeekSink writes Zeek's conn.log, a row per connection as it leaves the
// table (Zeek's order) and for those left at the end.
type zeekSink struct{ z *export.ZeekLog }

func (s zeekSink) hook(cfg *flows.Config) {
	cfg.OnRetire = func(r []flows.Record) { _ = s.z.Write(r) }
}
func (s zeekSink) end(batch []flows.Record, _ time.Time) error { return s.z.Write(batch) }
func (s zeekSink) flush() error                                { return s.z.Flush() }
func (s zeekSink) close() error                                { return s.z.Close(time.Now()) }

// zeekService names a connection's service as Zeek's conn.log does, from
// what the names decoder recognised: "ssl" for a TLS ClientHello, "http"
// for an HTTP/1 request's Host header; "" otherwise.
func zeekService(annotate local.Lookup) func(*flows.Record) string {
	if annotate == nil {
		return nil
	}
	return func(r *flows.Record) string {
		switch annotate(r).NameSource {
		case "sni":
			return "ssl"
		case "host":
			return "http"
		}
		return ""
	}
}

// noSink writes nothing: -o none, for a daemon that only exports.
type noSink struct{}

func (noSink) hook(*flows.Config)                  {}
func (noSink) end([]flows.Record, time.Time) error { return nil }
func (noSink) flush() error                        { return nil }
func (noSink) close() error                        { return nil }
