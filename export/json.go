package export

import (
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// Local is what the local kernel says of a connection whose endpoint is on
// this host: the process that owns the socket, and the kernel's own state
// for each local endpoint ("" when not local or not known).
type Local struct {
	PID                        int
	Process                    string
	KernelClient, KernelServer string
}

// JSON writes records as NDJSON, one object per connection, in the field
// order of the README's contract. It is safe for concurrent use.
type JSON struct {
	// Annotate, if set, adds "pid", "process", "kernel_client_state" and
	// "kernel_server_state" to each record (live captures).
	Annotate func(*flows.Record) Local

	mu       sync.Mutex // guards the following
	w        io.Writer
	buffered bool
	buf      []byte
	err      error
}

// NewJSON returns a writer to w that writes each call's records at once.
func NewJSON(w io.Writer) *JSON { return &JSON{w: w} }

// NewBufferedJSON returns a writer to w that gathers records and writes
// them in pieces of about 256 KiB, and when Flush is called: one write per
// record was a large cost when records leave one at a time (evictions
// under a SYN flood).
func NewBufferedJSON(w io.Writer) *JSON { return &JSON{w: w, buffered: true} }

// Flush writes the records gathered so far.
func (j *JSON) Flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil && len(j.buf) > 0 {
		_, j.err = j.w.Write(j.buf)
		j.buf = j.buf[:0]
	}
	return j.err
}

// Write writes one line per record. It returns the first write error, after
// which it writes nothing more.
func (j *JSON) Write(recs []flows.Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	if !j.buffered {
		j.buf = j.buf[:0]
	}
	for i := range recs {
		j.buf = j.appendRecord(append(j.buf, '{'), &recs[i])
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
	j.buf = j.appendRecord(j.buf, r)
	j.buf = append(j.buf, '\n')
	_, j.err = j.w.Write(j.buf)
	j.buf = j.buf[:0]
	return j.err
}

// AppendJSON appends r as one JSON object (without a newline) to b.
func AppendJSON(b []byte, r *flows.Record) []byte {
	return appendFields(append(b, '{'), r)
}

// appendRecord appends r's fields, with the annotation if there is one,
// and the closing brace.
func (j *JSON) appendRecord(b []byte, r *flows.Record) []byte {
	if j.Annotate != nil {
		l := j.Annotate(r)
		b = append(b, `"pid":`...)
		if l.PID > 0 {
			b = strconv.AppendInt(b, int64(l.PID), 10)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"process":`...)
		b = strconv.AppendQuote(b, l.Process)
		b = append(b, ',')
		for _, f := range []struct{ name, v string }{{"kernel_client_state", l.KernelClient}, {"kernel_server_state", l.KernelServer}} {
			if f.v != "" {
				b = append(b, '"')
				b = append(b, f.name...)
				b = append(b, `":`...)
				b = strconv.AppendQuote(b, f.v)
				b = append(b, ',')
			}
		}
	}
	return appendFields(b, r)
}

// appendFields appends r's fields and the closing brace.
func appendFields(b []byte, r *flows.Record) []byte {
	// Every string here is plain ASCII without quotes or backslashes
	// (addresses, state names, Zeek's codes and history letters): they are
	// written between quotes as they are, which strconv.AppendQuote made a
	// measurable part of writing a million records.
	key := func(name string) {
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":"`...)
	}
	str := func(name, v string) {
		key(name)
		b = append(b, v...)
		b = append(b, `",`...)
	}
	num := func(name string, v uint64) {
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
		b = strconv.AppendUint(b, v, 10)
		b = append(b, ',')
	}
	str("proto", "tcp")
	key("client")
	b = append(r.Client.AppendTo(b), `",`...)
	key("server")
	b = append(r.Server.AppendTo(b), `",`...)
	str("client_state", r.ClientState.String())
	str("server_state", r.ServerState.String())
	b = append(b, `"midstream":`...)
	b = strconv.AppendBool(b, r.Midstream)
	b = append(b, ',')
	str("role", r.Role.String())
	num("packets_c2s", r.C2S.Packets)
	num("packets_s2c", r.S2C.Packets)
	num("bytes_c2s", r.C2S.Bytes)
	num("bytes_s2c", r.S2C.Bytes)
	num("payload_c2s", r.C2S.Payload)
	num("payload_s2c", r.S2C.Payload)
	num("retransmits_c2s", r.C2S.Retransmits)
	num("retransmits_s2c", r.S2C.Retransmits)
	num("gaps_c2s", r.C2S.Gaps)
	num("gaps_s2c", r.S2C.Gaps)
	b = append(b, `"rtt_ms":`...)
	if r.RTT >= 0 {
		b = strconv.AppendFloat(b, float64(r.RTT)/float64(time.Millisecond), 'f', -1, 64)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, ',')
	key("first_seen")
	b = append(r.FirstSeen.AppendFormat(b, time.RFC3339Nano), `",`...)
	key("last_seen")
	b = append(r.LastSeen.AppendFormat(b, time.RFC3339Nano), `",`...)
	str("conn_state", r.ConnState())
	str("history", r.History())
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
	b[len(b)-1] = '}'
	return b
}
