package export

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// JSON writes records as NDJSON, one object per connection, with the
// fields in the order docs/json.md lists them. It is safe for concurrent
// use.
type JSON struct {
	// Annotate, if set, adds the name fields ("server_name",
	// "name_source", "alpn", "ech", "dns_chain") when there is a name,
	// and with Info.Sockets "pid", "process", the owner's fields,
	// "kernel_client_state" and "kernel_server_state" (live captures). An
	// async writer calls it from its encoders' goroutines, at once.
	Annotate local.Lookup
	// Problems, if set, returns what is wrong with a connection, written
	// as "problems" when there is anything (docs/problems.md). It is
	// called under the writer's lock, in the order records are written,
	// so that a judge that learns from each record (diag.Services) sees
	// them in that order.
	Problems func(*flows.Record) []diag.Problem

	mu       sync.Mutex // guards the following
	w        io.Writer
	buffered bool
	buf      []byte
	err      error
	tt       recordTimes
	async    *asyncJSON // NewAsyncJSON's
}

// asyncJSON hands records to goroutines that encode them, each batch on
// one of them, and a goroutine that writes the encoded batches in order.
type asyncJSON struct {
	pending *jsonBatch      // records not yet handed over
	full    chan *jsonBatch // to the dispatcher, in order; nil asks for everything to be written and an answer on done
	free    chan *jsonBatch
	done    chan error // the writer's answer to a flush
	stopped bool

	errMu sync.Mutex // guards err: the writer's first write error
	err   error
}

// jsonBatch is records to encode, with their problems (judged in order
// before they were handed over) when JSON.Problems is set.
type jsonBatch struct {
	recs  []flows.Record
	probs [][]diag.Problem
}

// asyncJob is a batch of records being encoded; out receives its bytes,
// or nil for a flush.
type asyncJob struct {
	recs *jsonBatch
	out  chan []byte
}

func (a *asyncJSON) failed() error {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return a.err
}

// asyncBatchLen is the records in a batch handed to an encoder. At the end
// of a replay a dozen batches are on the heap at once, with their encoded
// lines, on top of a table at its largest: 64 records (of 528 bytes, about
// 34 KiB of lines) keep the encoders busy without adding to the peak.
const asyncBatchLen = 64

// asyncDirectWrite is the least an encoded batch holds for the writer to
// write it at once: a full batch is about 34 KiB. Smaller ones (a live
// capture's, flushed every second) are gathered.
const asyncDirectWrite = 16 << 10

// NewJSON returns a writer to w that writes each call's records at once.
func NewJSON(w io.Writer) *JSON { return &JSON{w: w} }

// NewBufferedJSON returns a writer to w that gathers records and writes
// them in pieces of about 256 KiB, and when Flush is called: records that
// leave one at a time (evictions under a SYN flood) would otherwise cost a
// write each.
func NewBufferedJSON(w io.Writer) *JSON { return &JSON{w: w, buffered: true} }

// NewAsyncJSON is NewBufferedJSON encoding and writing on goroutines of
// its own, so that a replay's table updates and its output use every
// core: under a SYN flood every eviction writes a record, which then is
// not encoded on the updating goroutine, and a replay's final flush is
// encoded on several cores rather than one. Batches of records are
// encoded on up to encoders goroutines (at least 1) and written in order.
// Write copies the records and returns; Flush waits until everything
// before it is written; Close flushes and stops the goroutines. Records
// come out in the order written.
func NewAsyncJSON(w io.Writer, encoders int) *JSON {
	encoders = max(1, encoders)
	j := &JSON{w: w, buffered: true}
	a := &asyncJSON{
		full: make(chan *jsonBatch, 4),
		free: make(chan *jsonBatch, 4+2*encoders),
		done: make(chan error),
	}
	for range cap(a.free) {
		a.free <- &jsonBatch{} // its records' room is made when first used (Write)
	}
	a.pending = <-a.free
	j.async = a
	jobs := make(chan asyncJob, encoders)
	order := make(chan asyncJob, 2*encoders)
	bufs := make(chan []byte, 4*encoders) // encoded batches' buffers, for reuse
	for range encoders {
		go j.encode(jobs, bufs)
	}
	go j.dispatch(jobs, order)
	go j.write(order, bufs)
	return j
}

// dispatch hands each batch to an encoder, and to the writer to wait for
// in order.
func (j *JSON) dispatch(jobs, order chan asyncJob) {
	defer close(jobs)
	defer close(order)
	for recs := range j.async.full {
		job := asyncJob{recs: recs, out: make(chan []byte, 1)}
		if recs != nil {
			jobs <- job
		}
		order <- job
	}
}

// encode is an encoder's goroutine.
func (j *JSON) encode(jobs chan asyncJob, bufs chan []byte) {
	var tt recordTimes
	for job := range jobs {
		var buf []byte
		select {
		case buf = <-bufs:
		default:
		}
		bt := job.recs
		for i := range bt.recs {
			var probs []diag.Problem
			if bt.probs != nil {
				probs = bt.probs[i]
			}
			buf = j.appendRecord(append(buf, '{'), &bt.recs[i], &tt, probs)
			buf = append(buf, '\n')
		}
		clear(bt.recs) // let go of transition logs
		clear(bt.probs)
		bt.recs, bt.probs = bt.recs[:0], bt.probs[:0]
		j.async.free <- bt
		job.out <- buf
	}
}

// write is the writer's goroutine. It alone writes to w until a flush has
// been answered; it never takes j.mu, which a Write waiting for room holds.
func (j *JSON) write(order chan asyncJob, bufs chan []byte) {
	a := j.async
	var err error
	var out []byte // gathered for a write of about 256 KiB
	for job := range order {
		if job.recs == nil {
			if err == nil && len(out) > 0 {
				_, err = j.w.Write(out)
				out = out[:0]
			}
			a.done <- err
			continue
		}
		b := <-job.out
		switch {
		case err != nil:
		case len(out) == 0 && len(b) >= asyncDirectWrite:
			// A full batch is written as it is: gathered, it would keep
			// a buffer of a quarter megabyte for nothing.
			_, err = j.w.Write(b)
		default:
			out = append(out, b...)
			if len(out) >= 256<<10 {
				_, err = j.w.Write(out)
				out = out[:0]
			}
		}
		select {
		case bufs <- b[:0]:
		default:
		}
		if err != nil {
			a.errMu.Lock()
			a.err = err
			a.errMu.Unlock()
		}
	}
}

// handOver sends the pending records to the encoder. j.mu is held.
func (a *asyncJSON) handOver() {
	if len(a.pending.recs) > 0 {
		a.full <- a.pending
		a.pending = <-a.free
	}
}

// Flush writes the records gathered so far.
func (j *JSON) Flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if a := j.async; a != nil {
		if a.stopped {
			return j.err
		}
		a.handOver()
		a.full <- nil
		err := <-a.done
		if j.err == nil {
			j.err = err
		}
		return j.err
	}
	if j.err == nil && len(j.buf) > 0 {
		_, j.err = j.w.Write(j.buf)
		j.buf = j.buf[:0]
	}
	return j.err
}

// Close flushes, and stops an async writer's goroutine; nothing may be
// written after it.
func (j *JSON) Close() error {
	err := j.Flush()
	j.mu.Lock()
	defer j.mu.Unlock()
	if a := j.async; a != nil && !a.stopped {
		a.stopped = true
		close(a.full)
	}
	return err
}

// Write writes one line per record. It returns the first write error, after
// which it writes nothing more.
func (j *JSON) Write(recs []flows.Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	if a := j.async; a != nil {
		if a.stopped {
			return errors.New("export: JSON records written after Close")
		}
		if err := a.failed(); err != nil {
			j.err = err
			return err
		}
		for i := range recs {
			bt := a.pending
			if bt.recs == nil {
				// Batches get their room only when they are needed: a
				// replay whose connections mostly stay until the end
				// uses one or two until its final flush.
				bt.recs = make([]flows.Record, 0, asyncBatchLen)
			}
			bt.recs = append(bt.recs, recs[i])
			if j.Problems != nil {
				bt.probs = append(bt.probs, j.Problems(&recs[i]))
			}
			if len(bt.recs) == asyncBatchLen {
				a.handOver()
			}
		}
		return nil
	}
	if !j.buffered {
		j.buf = j.buf[:0]
	}
	for i := range recs {
		j.buf = j.appendRecord(append(j.buf, '{'), &recs[i], &j.tt, j.problems(&recs[i]))
		j.buf = append(j.buf, '\n')
		if len(j.buf) >= 256<<10 { // write in pieces: a million records would be half a gigabyte
			if _, j.err = j.w.Write(j.buf); j.err != nil {
				return j.err
			}
			j.buf = j.buf[:0]
		}
	}
	if len(j.buf) > 0 && !j.buffered {
		_, j.err = j.w.Write(j.buf)
		j.buf = j.buf[:0]
	}
	return j.err
}

// WriteEvent writes one event line: the record's fields after "event" (as
// given: "open", "state", "close" or "end") and "ts" (capture time).
func (j *JSON) WriteEvent(event string, ts time.Time, r *flows.Record) error {
	if j.async != nil {
		// Events are written at once: the records before them first.
		if err := j.Flush(); err != nil {
			return err
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	if j.buffered && len(j.buf) > 0 {
		if _, j.err = j.w.Write(j.buf); j.err != nil {
			return j.err
		}
	}
	j.buf = append(j.buf[:0], `{"event":`...)
	j.buf = strconv.AppendQuote(j.buf, event)
	j.buf = append(j.buf, `,"ts":"`...)
	j.buf = ts.UTC().AppendFormat(j.buf, time.RFC3339Nano)
	j.buf = append(j.buf, `",`...)
	j.buf = j.appendRecord(j.buf, r, &j.tt, j.problems(r))
	j.buf = append(j.buf, '\n')
	_, j.err = j.w.Write(j.buf)
	j.buf = j.buf[:0]
	return j.err
}

// WriteProblem writes a "problem" event line: the event, "ts" (when the
// problem began), the problem's fields and then the record's (without
// its "problems").
func (j *JSON) WriteProblem(p *diag.Problem, r *flows.Record) error {
	if j.async != nil {
		if err := j.Flush(); err != nil {
			return err
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	if j.buffered && len(j.buf) > 0 {
		if _, j.err = j.w.Write(j.buf); j.err != nil {
			return j.err
		}
	}
	j.buf = append(j.buf[:0], `{"event":"problem","ts":"`...)
	j.buf = p.Since.UTC().AppendFormat(j.buf, time.RFC3339Nano)
	j.buf = append(j.buf, `",`...)
	j.buf = appendProblemFields(j.buf, p)
	j.buf = append(j.buf, ',')
	j.buf = j.appendRecord(j.buf, r, &j.tt, nil)
	j.buf = append(j.buf, '\n')
	_, j.err = j.w.Write(j.buf)
	j.buf = j.buf[:0]
	return j.err
}

// problems returns r's problems, if the writer judges them. j.mu is held.
func (j *JSON) problems(r *flows.Record) []diag.Problem {
	if j.Problems == nil {
		return nil
	}
	return j.Problems(r)
}

// AppendJSON appends r as one JSON object (without a newline) to b, with
// its problems if any.
func AppendJSON(b []byte, r *flows.Record, problems []diag.Problem) []byte {
	return appendFields(append(b, '{'), r, nil, nil, problems)
}

// appendRecord appends r's fields, with the annotation if there is one,
// its problems, and the closing brace.
func (j *JSON) appendRecord(b []byte, r *flows.Record, tt *recordTimes, problems []diag.Problem) []byte {
	if j.Annotate == nil {
		return appendFields(b, r, tt, nil, problems)
	}
	l := j.Annotate(r)
	if l.Sockets {
		b = appendLocal(b, &l)
	}
	return appendFields(b, r, tt, &l, problems)
}

// appendLocal appends what this host knows of the connection's endpoints:
// "pid" and "process" (null and "" when unknown), the owner's fields, and
// the kernel's state of each endpoint it lists.
func appendLocal(b []byte, l *local.Info) []byte {
	b = append(b, `"pid":`...)
	if l.PID > 0 {
		b = strconv.AppendInt(b, int64(l.PID), 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"process":`...)
	b = strconv.AppendQuote(b, l.Process) // a command name may hold anything
	b = append(b, ',')
	if l.PID > 0 {
		b = appendOwner(b, l)
	}
	if l.KernelClient.Known {
		b = appendString(b, "kernel_client_state", l.KernelClient.State.String())
	}
	if l.KernelServer.Known {
		b = appendString(b, "kernel_server_state", l.KernelServer.State.String())
	}
	return b
}

// appendName appends the name fields of l, if it has a name. Names are
// host names (letters, digits, '-', '_', '.') and ALPN protocols
// printable ASCII without quotes or backslashes (package peek checks), but
// they came from the wire: they are quoted all the same.
func appendName(b []byte, l *local.Info) []byte {
	if l == nil || l.ServerName == "" && l.ALPN == "" && !l.ECH {
		return b
	}
	if l.ServerName != "" {
		b = append(b, `"server_name":`...)
		b = appendQuoted(b, l.ServerName)
		b = append(b, `,"name_source":`...)
		b = appendQuoted(b, l.NameSource)
		b = append(b, ',')
	}
	if l.ALPN != "" {
		b = appendQuotedList(b, "alpn", strings.Split(l.ALPN, ","))
	}
	if l.ECH {
		b = append(b, `"ech":true,`...)
	}
	if len(l.DNSChain) > 1 {
		b = appendQuotedList(b, "dns_chain", l.DNSChain)
	}
	return b
}

// appendQuoted appends v quoted as strconv.AppendQuote quotes it. A name
// from the wire is almost always printable ASCII without a quote or a
// backslash, which AppendQuote leaves as it is: such a string is copied
// between quotes without AppendQuote's per-rune work.
func appendQuoted(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' || c > '~' || c == '"' || c == '\\' {
			return strconv.AppendQuote(b, v)
		}
	}
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}

// appendQuotedList appends the field name, a list of quoted strings.
func appendQuotedList(b []byte, name string, list []string) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":[`...)
	for i, v := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, v)
	}
	return append(b, "],"...)
}

// appendOwner appends "uid", and "user", "container" or "cgroup" where
// known, each followed by a comma.
func appendOwner(b []byte, l *local.Info) []byte {
	b = append(b, `"uid":`...)
	b = strconv.AppendUint(b, uint64(l.UID), 10)
	b = append(b, ',')
	for _, f := range [...]struct{ name, v string }{{"user", l.User}, {"container", l.Container}, {"cgroup", l.Cgroup}} {
		if f.v != "" {
			b = append(b, '"')
			b = append(b, f.name...)
			b = append(b, `":`...)
			b = strconv.AppendQuote(b, f.v)
			b = append(b, ',')
		}
		if f.name == "container" && f.v != "" {
			break // the container says more than its cgroup's path
		}
	}
	return b
}

// appendFields appends r's fields, l's name fields after the server's
// address (if l is not nil), its problems (if any), and the closing brace.
func appendFields(b []byte, r *flows.Record, tt *recordTimes, l *local.Info, problems []diag.Problem) []byte {
	b = appendString(b, "proto", "tcp")
	b = append(r.Client.AppendTo(appendKey(b, "client")), `",`...)
	b = append(r.Server.AppendTo(appendKey(b, "server")), `",`...)
	b = appendName(b, l)
	b = appendString(b, "client_state", r.ClientState.String())
	b = appendString(b, "server_state", r.ServerState.String())
	// Present only when false: a state the packets cannot tell for sure.
	if r.ClientDoubt != flows.DoubtNone {
		b = append(b, `"client_state_certain":false,`...)
	}
	if r.ServerDoubt != flows.DoubtNone {
		b = append(b, `"server_state_certain":false,`...)
	}
	b = append(b, `"midstream":`...)
	b = strconv.AppendBool(b, r.Midstream)
	b = append(b, ',')
	b = appendString(b, "role", r.Role.String())
	b = appendCounters(b, r)
	b = appendTimes(b, r, tt)
	b = appendString(b, "conn_state", r.ConnState())
	b = append(r.AppendHistory(appendKey(b, "history")), `",`...)
	if r.End == flows.EndEvicted {
		b = append(b, `"evicted":true,`...)
	}
	if tags := r.Key.VLAN.Tags(); len(tags) > 0 {
		b = append(b, `"vlan":[`...)
		for i, t := range tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(t), 10)
		}
		b = append(b, "],"...)
	}
	if len(problems) > 0 {
		b = appendProblems(b, "problems", problems)
	}
	b[len(b)-1] = '}'
	return b
}

// appendCounters appends the packets, bytes, payload bytes, retransmitted
// segments and gaps of each direction.
func appendCounters(b []byte, r *flows.Record) []byte {
	for _, f := range [...]struct {
		name string
		c2s  uint64
		s2c  uint64
	}{
		{"packets", r.C2S.Packets, r.S2C.Packets},
		{"bytes", r.C2S.Bytes, r.S2C.Bytes},
		{"payload", r.C2S.Payload, r.S2C.Payload},
		{"retransmits", r.C2S.Retransmits, r.S2C.Retransmits},
		{"gaps", r.C2S.Gaps, r.S2C.Gaps},
	} {
		b = appendNumber(b, f.name, "_c2s", f.c2s)
		b = appendNumber(b, f.name, "_s2c", f.s2c)
	}
	return b
}

// appendTimes appends the handshake RTT and the first and last times the
// connection was seen; tt, if not nil, remembers the last times formatted.
func appendTimes(b []byte, r *flows.Record, tt *recordTimes) []byte {
	b = append(b, `"rtt_ms":`...)
	if r.RTT >= 0 {
		b = appendMillis(b, r.RTT)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, ',')
	var first, last *timeText // nil: formatted without remembering
	if tt != nil {
		first, last = &tt[0], &tt[1]
	}
	b = append(first.append(appendKey(b, "first_seen"), r.FirstSeen), `",`...)
	b = append(last.append(appendKey(b, "last_seen"), r.LastSeen), `",`...)
	return b
}

// appendMillis appends d in milliseconds as strconv.AppendFloat writes
// float64(d)/1e6 with format 'f' and precision -1: the shortest decimal
// that reads back as that float. Below 10^15 ns the exact decimal (at
// most 15 significant digits, whose neighbours of as many digits or
// fewer are further apart than the float's precision) is that shortest
// one, and is written without formatting a float.
func appendMillis(b []byte, d time.Duration) []byte {
	if d < 0 || d >= 1e15 {
		return strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', -1, 64)
	}
	b = strconv.AppendUint(b, uint64(d/time.Millisecond), 10)
	frac := uint64(d % time.Millisecond)
	if frac == 0 {
		return b
	}
	return appendFraction(b, frac, 6)
}

// Every string value of a record is plain ASCII without quotes or
// backslashes (addresses, state names, Zeek's codes and history letters),
// so appendKey and appendString write it between quotes as it is, without
// the cost of strconv.AppendQuote's escaping on the hot path.

// appendKey appends `"name":"`, the start of a string field.
func appendKey(b []byte, name string) []byte {
	b = append(b, '"')
	b = append(b, name...)
	return append(b, `":"`...)
}

// appendString appends a string field and a comma.
func appendString(b []byte, name, v string) []byte {
	b = append(appendKey(b, name), v...)
	return append(b, `",`...)
}

// appendNumber appends the number field name+suffix and a comma.
func appendNumber(b []byte, name, suffix string, v uint64) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, suffix...)
	b = append(b, `":`...)
	b = strconv.AppendUint(b, v, 10)
	return append(b, ',')
}
