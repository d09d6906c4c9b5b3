package export

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// synRecords returns n records: n connections that each sent one SYN.
func synRecords(n int) []flows.Record {
	tab := flows.NewTable(flows.Config{})
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range n {
		var p flows.Packet
		src := [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
		dst := [4]byte{192, 0, 2, 1}
		p.Tuple.SetV4(src[:], dst[:])
		p.Tuple.SrcPort, p.Tuple.DstPort = 40000, 443
		p.Flags, p.Seq, p.FrameLen, p.WScale, p.TS = flows.SYN, uint32(i), 74, 7, t0+int64(i)*1000
		tab.Apply(&p)
	}
	return tab.Flush()
}

// TestAsyncJSONMatchesBuffered: the async writer writes the same bytes, in
// the same order, as the buffered one, across batches, flushes and an
// event line.
func TestAsyncJSONMatchesBuffered(t *testing.T) {
	recs := synRecords(3000)
	run := func(j *JSON) {
		for i := range recs {
			if err := j.Write(recs[i : i+1]); err != nil {
				t.Fatal(err)
			}
			switch i {
			case 700:
				if err := j.Flush(); err != nil {
					t.Fatal(err)
				}
			case 1500:
				if err := j.WriteEvent("open", time.Unix(0, 0), &recs[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := j.Write(recs[:100]); err != nil { // a batch of many
			t.Fatal(err)
		}
	}
	var want bytes.Buffer
	b := NewBufferedJSON(&want)
	run(b)
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Count(want.Bytes(), []byte("\n")); lines != 3101 {
		t.Fatalf("buffered writer wrote %d lines, want 3101", lines)
	}
	for _, encoders := range []int{1, 3} {
		var got bytes.Buffer
		a := NewAsyncJSON(&got, encoders)
		run(a)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("%d encoders: async output differs: %d bytes, want %d", encoders, got.Len(), want.Len())
		}
		if err := a.Write(recs[:1]); err == nil {
			t.Fatal("a Write after Close was accepted")
		}
	}
}

// writeSizes records the size of every write.
type writeSizes struct {
	bytes.Buffer
	sizes []int
}

func (w *writeSizes) Write(b []byte) (int, error) {
	w.sizes = append(w.sizes, len(b))
	return w.Buffer.Write(b)
}

// TestAsyncJSONWritesBatches: the async writer writes each full batch as
// it was encoded, in order, rather than gathering them into a larger
// buffer it would keep: no write holds more than a batch's lines.
func TestAsyncJSONWritesBatches(t *testing.T) {
	recs := synRecords(5000)
	var want bytes.Buffer
	if err := NewJSON(&want).Write(recs); err != nil {
		t.Fatal(err)
	}
	w := &writeSizes{}
	a := NewAsyncJSON(w, 2)
	for i := 0; i < len(recs); i += 10 {
		if err := a.Write(recs[i : i+10]); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bytes(), want.Bytes()) {
		t.Fatalf("async output differs: %d bytes, want %d", w.Len(), want.Len())
	}
	lines := bytes.SplitAfter(want.Bytes(), []byte("\n"))
	most := 0
	for i := 0; i+asyncBatchLen <= len(lines); i++ {
		n := 0
		for _, l := range lines[i : i+asyncBatchLen] {
			n += len(l)
		}
		most = max(most, n)
	}
	if len(w.sizes) < len(recs)/asyncBatchLen || slices.Max(w.sizes) > most {
		t.Errorf("%d writes, the largest %d bytes: want one per batch of %d records, at most %d bytes", len(w.sizes), slices.Max(w.sizes), asyncBatchLen, most)
	}
}

type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(b []byte) (int, error) {
	if f.n -= len(b); f.n < 0 {
		return 0, f.err
	}
	return len(b), nil
}

// TestAsyncJSONReportsWriteError: a failed write reaches the caller, at
// the latest at Close, and nothing more is written.
func TestAsyncJSONReportsWriteError(t *testing.T) {
	recs := synRecords(5000)
	broken := errors.New("broken pipe")
	w := &failAfter{n: 300 << 10, err: broken}
	a := NewAsyncJSON(w, 3)
	var first error
	for i := range recs {
		if err := a.Write(recs[i : i+1]); err != nil && first == nil {
			first = err
		}
	}
	if err := a.Close(); !errors.Is(err, broken) {
		t.Fatalf("Close: %v, want %v", err, broken)
	}
	if first != nil && !errors.Is(first, broken) {
		t.Fatalf("Write: %v, want %v", first, broken)
	}
}

// TestAnnotate: a live capture's records carry the local process, its
// owner, and the kernel's states of the endpoints that are this host's
// sockets (docs/json.md: "pid" null when unknown, a kernel state only where
// the kernel lists the socket), and the table gets a Process column.
func TestAnnotate(t *testing.T) {
	recs := synRecords(2)
	lookup := func(r *flows.Record) local.Info {
		if r.Client.Addr().As4()[3] == 0 {
			return local.Info{Sockets: true, PID: 42, Process: "curl", UID: 1000, User: "alice",
				KernelClient: local.Kernel{State: flows.StateSynSent, Known: true}}
		}
		return local.Info{Sockets: true}
	}
	var out bytes.Buffer
	j := NewBufferedJSON(&out)
	j.Annotate = lookup
	if err := j.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), out.String())
	}
	want := []string{
		`{"pid":42,"process":"curl","uid":1000,"user":"alice","kernel_client_state":"SYN_SENT","proto":"tcp","client":"10.0.0.0:40000"`,
		`{"pid":null,"process":"","proto":"tcp","client":"10.0.0.1:40000"`,
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %s\nwant it to start with %s", i+1, lines[i], w)
		}
		if strings.Contains(lines[i], "kernel_server_state") {
			t.Errorf("line %d has the state of a socket the kernel does not list: %s", i+1, lines[i])
		}
	}
	out.Reset()
	if err := WriteTable(&out, []*flows.Record{&recs[0], &recs[1]}, lookup, nil); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(rows) != 3 || !strings.HasSuffix(rows[0], "Process") || !strings.HasSuffix(rows[1], " curl[42]") || !strings.HasSuffix(rows[2], " -") {
		t.Errorf("table:\n%s", out.String())
	}
}

// FuzzAppendQuoted: the fast path for plain names writes what
// strconv.AppendQuote writes, for any string.
func FuzzAppendQuoted(f *testing.F) {
	for _, s := range []string{"", "example.com", "h2", `a"b`, `a\b`, "tab\there", "caf\u00e9", "\x7f", "\xff\xfe", "~ !"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := appendQuoted([]byte("x"), s), strconv.AppendQuote([]byte("x"), s); !bytes.Equal(got, want) {
			t.Fatalf("appendQuoted(%q) = %s, want %s", s, got, want)
		}
	})
}

// FuzzAppendMillis: a duration in milliseconds is written as
// strconv.AppendFloat writes float64(d)/1e6 ('f', -1), for any duration.
func FuzzAppendMillis(f *testing.F) {
	for _, d := range []int64{0, 1, 999, 1000, 22685000, 999999, 1000000, 123456789012345, 999999999999999, 1e15, 1e15 + 1, 1<<53 + 1, 1<<63 - 1, -1} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, d int64) {
		want := strconv.AppendFloat([]byte("x"), float64(d)/float64(time.Millisecond), 'f', -1, 64)
		if got := appendMillis([]byte("x"), time.Duration(d)); !bytes.Equal(got, want) {
			t.Fatalf("appendMillis(%d) = %s, want %s", d, got, want)
		}
	})
}
