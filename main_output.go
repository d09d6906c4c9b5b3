package main

import (
	"cmp"
	"io"
	"runtime"
	"slices"
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
// start time, at the end. The records are kept in chunks of a fixed size
// and sorted through pointers: a million records are half a gigabyte,
// which one growing slice would copy at every doubling and a sort in
// place would copy again.
type tableSink struct {
	w        io.Writer
	annotate local.Lookup
	judge    *problemJudge
	chunks   [][]flows.Record
}

// tableChunk is the records in a chunk of tableSink's (about 2 MiB).
const tableChunk = 4096

func (s *tableSink) hook(cfg *flows.Config) {
	cfg.OnRetire = func(r []flows.Record) { s.keep(r) }
}

// keep adds recs to the last chunk, and new ones as it fills.
func (s *tableSink) keep(recs []flows.Record) {
	for len(recs) > 0 {
		n := len(s.chunks)
		if n == 0 || len(s.chunks[n-1]) == tableChunk {
			s.chunks = append(s.chunks, make([]flows.Record, 0, tableChunk))
			n++
		}
		c := s.chunks[n-1]
		k := min(len(recs), tableChunk-len(c))
		s.chunks[n-1] = append(c, recs[:k]...)
		recs = recs[k:]
	}
}

func (s *tableSink) end(batch []flows.Record, _ time.Time) error {
	s.keep(batch)
	return nil
}
func (s *tableSink) flush() error { return nil }

func (s *tableSink) close() error {
	return export.WriteTable(s.w, s.sorted(), s.annotate, s.judge.kinds)
}

// sorted returns the records by start time, then ID (flows.SortByStart's
// order).
func (s *tableSink) sorted() []*flows.Record {
	type key struct {
		first int64
		id    uint64
		r     *flows.Record
	}
	n := 0
	for _, c := range s.chunks {
		n += len(c)
	}
	keys := make([]key, 0, n)
	for _, c := range s.chunks {
		for i := range c {
			keys = append(keys, key{c[i].FirstSeen.UnixNano(), c[i].ID, &c[i]})
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(a.first, b.first); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	recs := make([]*flows.Record, len(keys))
	for i := range keys {
		recs[i] = keys[i].r
	}
	return recs
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
