package export

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// zeekConn applies one HTTP-like exchange between an IPv6 client and a
// server to a Zeek table and returns its record: handshake at t0, 100
// bytes from the client at +10 ms, 200 back at +20 ms, the client's FIN at
// +30 ms (ACKing the data), the server's at +40 ms, the last ACK at +50 ms.
func zeekConn(t *testing.T, t0 time.Time) flows.Record {
	t.Helper()
	tab := flows.NewTable(flows.Config{Zeek: true})
	cli, srv := [16]byte{0xfd, 15: 1}, [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
	send := func(fromClient bool, flags flows.Flags, seq, ack, n uint32, at time.Duration) {
		var p flows.Packet
		p.Tuple.V6 = true
		p.Tuple.Src, p.Tuple.Dst, p.Tuple.SrcPort, p.Tuple.DstPort = cli, srv, 40000, 8080
		if !fromClient {
			p.Tuple.Src, p.Tuple.Dst, p.Tuple.SrcPort, p.Tuple.DstPort = srv, cli, 8080, 40000
		}
		p.Flags, p.Seq, p.Ack, p.PayloadLen, p.IPLen, p.FrameLen = flags, seq, ack, n, 60+n, 74+n
		p.WScale, p.Window, p.TS = -1, 1000, t0.Add(at).UnixNano()
		tab.Apply(&p)
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	send(true, flows.SYN, 1000, 0, 0, 0)
	send(false, flows.SYN|flows.ACK, 5000, 1001, 0, ms(1))
	send(true, flows.ACK, 1001, 5001, 0, ms(2))
	send(true, flows.PSH|flows.ACK, 1001, 5001, 100, ms(10))
	send(false, flows.PSH|flows.ACK, 5001, 1101, 200, ms(20))
	send(true, flows.FIN|flows.ACK, 1101, 5201, 0, ms(30))
	send(false, flows.FIN|flows.ACK, 5201, 1102, 0, ms(40))
	send(true, flows.ACK, 1102, 5202, 0, ms(50))
	recs := tab.Flush()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	return recs[0]
}

// TestZeekLogFormat checks the conn.log's framing as Zeek's ASCII writer
// makes it (header lines, #fields and #types of the same length, a row of
// as many fields, #close last) and a row worked out by hand: the duration
// stops at the second FIN (both sides closed), the sizes are the sequence
// space less SYN and FIN, fd00::/8 is local and 2001:db8::/32 (in
// Site::private_address_space) too, the service comes from Service; the
// server sends no pure ACK, so no 'a'.
func TestZeekLogFormat(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)
	rec := zeekConn(t, t0)
	var out bytes.Buffer
	z := NewZeekLog(&out, time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC))
	z.Service = func(*flows.Record) string { return "http" }
	if err := z.Write([]flows.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(time.Date(2026, 3, 4, 6, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	head := []string{"#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-", "#path\tconn", "#open\t2026-03-04-05-00-00"}
	for i, h := range head {
		if lines[i] != h {
			t.Errorf("line %d %q, want %q", i+1, lines[i], h)
		}
	}
	fields := strings.Split(strings.TrimPrefix(lines[6], "#fields\t"), "\t")
	types := strings.Split(strings.TrimPrefix(lines[7], "#types\t"), "\t")
	row := strings.Split(lines[8], "\t")
	if len(fields) != 22 || len(types) != 22 || len(row) != 22 {
		t.Fatalf("%d fields, %d types, %d values; want 22 each", len(fields), len(types), len(row))
	}
	if lines[9] != "#close\t2026-03-04-06-00-00" || len(lines) != 10 {
		t.Errorf("after the row: %q, want only #close", lines[9:])
	}
	if !regexp.MustCompile(`^C[0-9A-Za-z]{12,20}$`).MatchString(row[1]) {
		t.Errorf("uid %q is not Zeek's form", row[1])
	}
	want := "1772600767.123456 fd00::1 40000 2001:db8::2 8080 tcp http 0.040000 100 200 SF T T 0 ShADdFf 5 400 3 380 - 6"
	if got := strings.Join(append(row[:1:1], row[2:]...), " "); got != want {
		t.Errorf("row (without uid):\n%s\nwant:\n%s", got, want)
	}
}

// TestZeekLogUID checks that uids are the same for the same record and
// differ between records.
func TestZeekLogUID(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	a, b := zeekConn(t, t0), zeekConn(t, t0.Add(time.Second))
	uid := func(r flows.Record) string { return string(appendZeekUID(nil, &r)) }
	if uid(a) != uid(zeekConn(t, t0)) {
		t.Error("one record, two uids")
	}
	if uid(a) == uid(b) {
		t.Errorf("two records, one uid %s", uid(a))
	}
}

// TestZeekLogNeedsZeekTable: a record from a table without Config.Zeek has
// no Zeek fields, and writing it is an error that says so.
func TestZeekLogNeedsZeekTable(t *testing.T) {
	z := NewZeekLog(&bytes.Buffer{}, time.Now())
	err := z.Write(synRecords(1))
	if err == nil || !strings.Contains(err.Error(), "Config.Zeek") {
		t.Fatalf("error %v, want one naming Config.Zeek", err)
	}
}
