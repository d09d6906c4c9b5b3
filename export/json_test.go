package export

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/flows"
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
