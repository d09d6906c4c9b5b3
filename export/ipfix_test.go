package export

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// The tests decode what the exporter sends with a decoder of their own,
// written from RFC 7011 rather than from the encoder: it learns the
// templates from the wire, as a collector does.

// ie names an information element: its enterprise number (0 for IANA) and
// its id.
type ie struct {
	pen uint32
	id  uint16
}

var (
	ieNameSrc = ie{PENDocumentation, 7}
	ieName    = ie{PENDocumentation, 6}
	ieSrc4    = ie{0, 8}
	ieDst4    = ie{0, 12}
	ieSrc6    = ie{0, 27}
	ieDst6    = ie{0, 28}
	ieSport   = ie{0, 7}
	ieDport   = ie{0, 11}
	ieProto   = ie{0, 4}
	ieBiDir   = ie{0, 239}
	ieStart   = ie{0, 152}
	ieEnd     = ie{0, 153}
	ieOctets  = ie{0, 1}
	iePackets = ie{0, 2}
	ieROctets = ie{29305, 1}
	ieRPacket = ie{29305, 2}
	ieFlags   = ie{0, 6}
	ieRFlags  = ie{29305, 6}
	ieReason  = ie{0, 136}
	ieVlan    = ie{0, 58}
	ieCVlan   = ie{0, 245}
	ieCState  = ie{32473, 1}
	ieSState  = ie{32473, 2}
	ieRTT     = ie{32473, 3}
	ieRetx    = ie{32473, 4}
	ieRRetx   = ie{32473, 4 | 0x4000}
	ieFtFlags = ie{32473, 5}
)

// wireField is a field specifier as read from a template.
type wireField struct {
	ie
	length int
}

// message is one decoded IPFIX message.
type message struct {
	length    int
	export    time.Time
	seq       uint32
	domain    uint32
	templates map[uint16][]wireField // template records it carried
	records   []wireRecord           // data records, in order
}

// wireRecord is one decoded data record: its template and its fields'
// values.
type wireRecord struct {
	template uint16
	v        map[ie][]byte
}

func (r wireRecord) uint(e ie) uint64 {
	var n uint64
	for _, c := range r.v[e] {
		n = n<<8 | uint64(c)
	}
	return n
}

func (r wireRecord) addr(e ie) netip.Addr {
	a, _ := netip.AddrFromSlice(r.v[e])
	return a
}

// client and server return the record's source and destination.
func (r wireRecord) client() netip.AddrPort {
	if _, ok := r.v[ieSrc6]; ok {
		return netip.AddrPortFrom(r.addr(ieSrc6), uint16(r.uint(ieSport)))
	}
	return netip.AddrPortFrom(r.addr(ieSrc4), uint16(r.uint(ieSport)))
}

func (r wireRecord) server() netip.AddrPort {
	if _, ok := r.v[ieDst6]; ok {
		return netip.AddrPortFrom(r.addr(ieDst6), uint16(r.uint(ieDport)))
	}
	return netip.AddrPortFrom(r.addr(ieDst4), uint16(r.uint(ieDport)))
}

// decoder decodes the messages of one transport session.
type decoder struct {
	templates map[uint16][]wireField
}

func newDecoder() *decoder { return &decoder{templates: make(map[uint16][]wireField)} }

// decode decodes one message, which must be exactly b.
func (d *decoder) decode(b []byte) (*message, error) {
	be := binary.BigEndian
	if len(b) < 16 {
		return nil, fmt.Errorf("message of %d bytes: shorter than a header", len(b))
	}
	m := &message{
		length:    int(be.Uint16(b[2:])),
		export:    time.Unix(int64(be.Uint32(b[4:])), 0),
		seq:       be.Uint32(b[8:]),
		domain:    be.Uint32(b[12:]),
		templates: make(map[uint16][]wireField),
	}
	if v := be.Uint16(b); v != 10 {
		return nil, fmt.Errorf("version %d, want 10", v)
	}
	if m.length != len(b) {
		return nil, fmt.Errorf("header says %d bytes, message has %d", m.length, len(b))
	}
	for off := 16; off < len(b); {
		if off+4 > len(b) {
			return nil, fmt.Errorf("set header at %d cut short", off)
		}
		id, l := be.Uint16(b[off:]), int(be.Uint16(b[off+2:]))
		if l < 4 || off+l > len(b) {
			return nil, fmt.Errorf("set %d at %d: bad length %d", id, off, l)
		}
		body := b[off+4 : off+l]
		var err error
		switch {
		case id == 2:
			err = d.templateSet(m, body)
		case id >= 256:
			err = d.dataSet(m, id, body)
		default:
			err = fmt.Errorf("unexpected set ID %d", id)
		}
		if err != nil {
			return nil, err
		}
		off += l
	}
	return m, nil
}

// templateSet decodes the templates of a template set (ID 2) into m and
// remembers them for the session.
func (d *decoder) templateSet(m *message, body []byte) error {
	be := binary.BigEndian
	for len(body) > 0 {
		if len(body) < 4 {
			return errors.New("template record header cut short")
		}
		tid, n := be.Uint16(body), int(be.Uint16(body[2:]))
		body = body[4:]
		var fs []wireField
		for range n {
			if len(body) < 4 {
				return fmt.Errorf("template %d cut short", tid)
			}
			f := wireField{ie: ie{id: be.Uint16(body)}, length: int(be.Uint16(body[2:]))}
			body = body[4:]
			if f.id&0x8000 != 0 {
				if len(body) < 4 {
					return fmt.Errorf("template %d: enterprise number cut short", tid)
				}
				f.id &^= 0x8000
				f.pen = be.Uint32(body)
				body = body[4:]
			}
			fs = append(fs, f)
		}
		d.templates[tid], m.templates[tid] = fs, fs
	}
	return nil
}

// dataSet decodes the records of data set id, by its template, into m.
func (d *decoder) dataSet(m *message, id uint16, body []byte) error {
	fs, ok := d.templates[id]
	if !ok {
		return fmt.Errorf("data set %d before its template", id)
	}
	// The smallest record: a variable-length field (length 65535, RFC
	// 7011 section 7) takes one byte at least.
	size := 0
	for _, f := range fs {
		size += f.length
		if f.length == 0xffff {
			size += 1 - 0xffff
		}
	}
	for len(body) >= size {
		r := wireRecord{template: id, v: make(map[ie][]byte)}
		for _, f := range fs {
			v, rest, err := fieldValue(f, body)
			if err != nil {
				return fmt.Errorf("data set %d: %w", id, err)
			}
			r.v[f.ie], body = v, rest
		}
		m.records = append(m.records, r)
	}
	if len(body) >= 4 { // RFC 7011 allows padding shorter than a record only
		return fmt.Errorf("data set %d: %d bytes left over", id, len(body))
	}
	return nil
}

// fieldValue takes the value of field f from the start of body: f.length
// bytes, or for a variable-length field (RFC 7011 section 7) as many as
// its one- or three-byte length says.
func fieldValue(f wireField, body []byte) (v, rest []byte, err error) {
	n := f.length
	if n == 0xffff {
		if len(body) < 1 {
			return nil, nil, errors.New("variable-length field cut short")
		}
		n, body = int(body[0]), body[1:]
		if n == 255 {
			if len(body) < 2 {
				return nil, nil, errors.New("variable length cut short")
			}
			n, body = int(binary.BigEndian.Uint16(body)), body[2:]
		}
	}
	if len(body) < n {
		return nil, nil, fmt.Errorf("field %d cut short", f.id)
	}
	return body[:n], body[n:], nil
}

// udpCollector is a UDP socket on loopback that collects messages.
type udpCollector struct {
	t    *testing.T
	conn net.PacketConn
	dec  *decoder
}

func newUDPCollector(t *testing.T) *udpCollector {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &udpCollector{t: t, conn: conn, dec: newDecoder()}
}

// exporter returns an exporter to the collector.
func (c *udpCollector) exporter(cfg IPFIXConfig) *IPFIX {
	c.t.Helper()
	x, err := DialIPFIX(c.conn.LocalAddr().String(), cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { x.Close() })
	return x
}

// read returns the next message, failing the test after a while without
// one; with soft, it returns nil then.
func (c *udpCollector) read(soft bool) *message {
	c.t.Helper()
	buf := make([]byte, 65536)
	_ = c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := c.conn.ReadFrom(buf)
	if err != nil {
		if soft {
			return nil
		}
		c.t.Fatalf("no IPFIX message: %v", err)
	}
	m, err := c.dec.decode(buf[:n])
	if err != nil {
		c.t.Fatalf("bad IPFIX message: %v", err)
	}
	return m
}

// conversation builds the packets of one connection for a table.
type conversation struct {
	t        *flows.Table
	x        *IPFIX // if set, ticked after each packet
	cli, srv netip.AddrPort
	vlan     []uint16
	start    time.Time
}

// send applies a packet from the client (c2s) or the server at offset at.
func (cv *conversation) send(c2s bool, flags flows.Flags, seq, ack, payload uint32, at time.Duration) {
	var p flows.Packet
	src, dst := cv.cli, cv.srv
	if !c2s {
		src, dst = dst, src
	}
	if src.Addr().Is4() {
		s, d := src.Addr().As4(), dst.Addr().As4()
		p.Tuple.SetV4(s[:], d[:])
	} else {
		s, d := src.Addr().As16(), dst.Addr().As16()
		p.Tuple.SetV6(s[:], d[:])
	}
	for _, v := range cv.vlan {
		p.Tuple.VLAN.Push(v)
	}
	p.Tuple.SrcPort, p.Tuple.DstPort = src.Port(), dst.Port()
	p.TS = cv.start.Add(at).UnixNano()
	p.Flags, p.Seq, p.Ack, p.PayloadLen = flags, seq, ack, payload
	p.FrameLen = 54 + payload // Ethernet, IP and TCP headers
	p.IPLen = 40 + payload
	if p.Tuple.V6 {
		p.FrameLen, p.IPLen = 74+payload, 60+payload
	}
	p.Window = 1000
	p.WScale = -1
	cv.t.Apply(&p)
	if cv.x != nil {
		cv.x.Tick(cv.t, p.TS)
	}
}

// handshake opens the connection at offset at: SYN, SYN-ACK, ACK 2 ms
// apart (client ISN 1000, server ISN 5000).
func (cv *conversation) handshake(at time.Duration) {
	cv.send(true, flows.SYN, 1000, 0, 0, at)
	cv.send(false, flows.SYN|flows.ACK, 5000, 1001, 0, at+time.Millisecond)
	cv.send(true, flows.ACK, 1001, 5001, 0, at+2*time.Millisecond)
}

// exchange sends a request of n bytes and its answer of 2n at offset at,
// with the client's and the server's next sequence numbers cs and ss.
func (cv *conversation) exchange(cs, ss, n uint32, at time.Duration) {
	cv.send(true, flows.PSH|flows.ACK, cs, ss, n, at)
	cv.send(false, flows.PSH|flows.ACK, ss, cs+n, 2*n, at+time.Millisecond)
}

// close closes the connection at offset at, the client first, with the
// next sequence numbers cs and ss.
func (cv *conversation) close(cs, ss uint32, at time.Duration) {
	cv.send(true, flows.FIN|flows.ACK, cs, ss, 0, at)
	cv.send(false, flows.FIN|flows.ACK, ss, cs+1, 0, at+time.Millisecond)
	cv.send(true, flows.ACK, cs+1, ss+1, 0, at+2*time.Millisecond)
}

var epoch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func TestIPFIXWire(t *testing.T) {
	col := newUDPCollector(t)
	name := func(r *flows.Record) local.Info {
		if r.Key.V6 {
			return local.Info{}
		}
		return local.Info{ServerName: "en.wikipedia.org", NameSource: "sni"}
	}
	x := col.exporter(IPFIXConfig{ObservationDomain: 7, FlushEvery: time.Hour, Annotate: name})
	tmpl := col.read(false)
	if len(tmpl.records) != 0 || tmpl.seq != 0 || tmpl.domain != 7 {
		t.Fatalf("first message: %d records, seq %d, domain %d; want the templates alone, seq 0, domain 7", len(tmpl.records), tmpl.seq, tmpl.domain)
	}
	if d := time.Since(tmpl.export); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("export time %v, want about now (the wall clock)", tmpl.export)
	}
	checkTemplate(t, tmpl.templates[256], ieSrc4, ieDst4, 4)
	checkTemplate(t, tmpl.templates[257], ieSrc6, ieDst6, 16)

	tab := flows.NewTable(flows.Config{})
	v4 := &conversation{t: tab, cli: netip.MustParseAddrPort("192.0.2.1:40000"), srv: netip.MustParseAddrPort("198.51.100.7:443"), start: epoch}
	v4.handshake(0)
	v4.exchange(1001, 5001, 100, 10*time.Millisecond)
	v4.exchange(1101, 5201, 100, 20*time.Millisecond) // 1101..: new data
	v4.exchange(1101, 5201, 100, 30*time.Millisecond) // the same again: retransmissions
	v4.close(1201, 5401, 40*time.Millisecond)
	v6 := &conversation{t: tab, cli: netip.MustParseAddrPort("[2001:db8::1]:50000"), srv: netip.MustParseAddrPort("[2001:db8::2]:22"),
		vlan: []uint16{10, 20}, start: epoch.Add(time.Second)}
	v6.send(false, flows.PSH|flows.ACK, 7000, 3000, 50, 0) // mid-stream, from the server
	v6.send(true, flows.ACK, 3000, 7050, 0, 3*time.Millisecond)
	recs := tab.Flush()
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if err := x.Stop(recs); err != nil {
		t.Fatal(err)
	}
	m := col.read(false)
	if m.seq != 0 || len(m.records) != 2 || m.domain != 7 {
		t.Fatalf("data message: seq %d, %d records, domain %d; want 0, 2, 7", m.seq, len(m.records), m.domain)
	}
	for i, r := range m.records {
		checkRecord(t, r, &recs[i])
	}
	// The values, by hand, for the IPv4 connection.
	r := m.records[0]
	want := map[ie]uint64{
		ieProto: 6, ieBiDir: 1,
		ieStart: uint64(epoch.UnixMilli()), ieEnd: uint64(epoch.Add(42 * time.Millisecond).UnixMilli()),
		// IP packets: 20 bytes of IPv4 and 20 of TCP header each, and the
		// payload (the frames have 14 bytes of Ethernet more).
		iePackets: 7, ieRPacket: 5, ieOctets: 7*40 + 300, ieROctets: 5*40 + 600,
		ieFlags:  uint64(flows.SYN | flows.ACK | flows.FIN),
		ieRFlags: uint64(flows.SYN | flows.ACK | flows.FIN),
		ieReason: 3, ieVlan: 0, ieCVlan: 0,
		ieCState: 11, ieSState: 1, // TIME_WAIT, CLOSED
		ieRTT: 2000, ieRetx: 1, ieRRetx: 1, ieFtFlags: 0, ieNameSrc: 1,
	}
	if n := string(r.v[ieName]); n != "en.wikipedia.org" {
		t.Errorf("IPv4 record: server name %q", n)
	}
	for e, v := range want {
		if got := r.uint(e); got != v {
			t.Errorf("IPv4 record: element %d/%d is %d, want %d", e.pen, e.id, got, v)
		}
	}
	r = m.records[1]
	want = map[ie]uint64{
		ieBiDir: 0, iePackets: 1, ieRPacket: 1, ieOctets: 60, ieROctets: 60 + 50, ieVlan: 10, ieCVlan: 20, ieReason: 4,
		ieCState: 5, ieSState: 5, ieRTT: 1<<32 - 1, ieFtFlags: 1, ieNameSrc: 0,
	}
	if n, ok := r.v[ieName]; !ok || len(n) != 0 {
		t.Errorf("IPv6 record: server name %q (present %v), want empty", n, ok)
	}
	for e, v := range want {
		if got := r.uint(e); got != v {
			t.Errorf("IPv6 record: element %d/%d is %d, want %d", e.pen, e.id, got, v)
		}
	}
	if st := x.Stats(); st.Records != 2 || st.Messages != 2 || st.DroppedRecords != 0 {
		t.Errorf("stats %+v, want 2 records in 2 messages", st)
	}
}

// checkTemplate checks that a template has the elements the records need,
// with the address elements src and dst of n bytes.
func checkTemplate(t *testing.T, fs []wireField, src, dst ie, n int) {
	t.Helper()
	if len(fs) == 0 {
		t.Fatal("template missing")
	}
	have := make(map[ie]int)
	for _, f := range fs {
		if _, dup := have[f.ie]; dup {
			t.Errorf("element %d/%d twice", f.pen, f.id)
		}
		have[f.ie] = f.length
	}
	for _, e := range []ie{src, dst, ieSport, ieDport, ieProto, ieStart, ieEnd, ieOctets, iePackets,
		ieROctets, ieRPacket, ieFlags, ieRFlags, ieReason, ieCState, ieSState, ieRTT, ieRetx, ieRRetx} {
		if _, ok := have[e]; !ok {
			t.Errorf("template lacks element %d/%d", e.pen, e.id)
		}
	}
	if have[src] != n || have[dst] != n {
		t.Errorf("addresses of %d and %d bytes, want %d", have[src], have[dst], n)
	}
}

// checkRecord checks a decoded record's addresses and whole-connection
// counts against r.
func checkRecord(t *testing.T, w wireRecord, r *flows.Record) {
	t.Helper()
	if w.client() != r.Client || w.server() != r.Server {
		t.Errorf("record %v -> %v, want %v -> %v", w.client(), w.server(), r.Client, r.Server)
	}
	// Octets are the IP packets', not the frames' (RFC 7012).
	if w.uint(iePackets) != r.C2S.Packets || w.uint(ieOctets) != r.C2S.IPBytes ||
		w.uint(ieRPacket) != r.S2C.Packets || w.uint(ieROctets) != r.S2C.IPBytes || r.C2S.IPBytes == r.C2S.Bytes {
		t.Errorf("%v: %d/%d packets, %d/%d octets; want %d/%d, %d/%d IP bytes (frames %d/%d)", r.Client,
			w.uint(iePackets), w.uint(ieRPacket), w.uint(ieOctets), w.uint(ieROctets),
			r.C2S.Packets, r.S2C.Packets, r.C2S.IPBytes, r.S2C.IPBytes, r.C2S.Bytes, r.S2C.Bytes)
	}
	if w.uint(ieStart) != uint64(r.FirstSeen.UnixMilli()) || w.uint(ieEnd) != uint64(r.LastSeen.UnixMilli()) {
		t.Errorf("%v: from %d to %d ms, want %d to %d", r.Client, w.uint(ieStart), w.uint(ieEnd), r.FirstSeen.UnixMilli(), r.LastSeen.UnixMilli())
	}
}

func TestIPFIXActiveTimeout(t *testing.T) {
	t.Run("replay", func(t *testing.T) { testActiveTimeout(t, true) })
	t.Run("live", func(t *testing.T) { testActiveTimeout(t, false) })
}

// testActiveTimeout exports a long connection and a short one. In a
// replay, the table is looked at on the capture goroutine, and the
// periodic records are exactly as expected; live, the looks run beside
// the capture, so only their sums and order are.
func testActiveTimeout(t *testing.T, replay bool) {
	col := newUDPCollector(t)
	tab := flows.NewTable(flows.Config{})
	x := col.exporter(IPFIXConfig{ActiveTimeout: 3 * time.Second, FlushEvery: time.Hour, Replay: replay})
	col.read(false) // the templates
	long := &conversation{t: tab, x: x, cli: netip.MustParseAddrPort("192.0.2.1:40000"), srv: netip.MustParseAddrPort("198.51.100.7:443"), start: epoch}
	short := &conversation{t: tab, x: x, cli: netip.MustParseAddrPort("192.0.2.1:40001"), srv: netip.MustParseAddrPort("198.51.100.7:443"), start: epoch}
	long.handshake(0)
	short.handshake(0)
	short.close(1001, 5001, 10*time.Millisecond) // ended at once: only its last record
	// One exchange a second for 10 s.
	cs, ss := uint32(1001), uint32(5001)
	for i := range 10 {
		long.exchange(cs, ss, 10, time.Duration(i+1)*time.Second)
		cs, ss = cs+10, ss+20
		if !replay {
			time.Sleep(5 * time.Millisecond) // let the looks run
		}
	}
	final := tab.Flush()
	if err := x.Stop(final); err != nil {
		t.Fatal(err)
	}
	var got []wireRecord
	for uint64(len(got)) < x.Stats().Records {
		got = append(got, col.read(false).records...)
	}
	periodic, sum, lastEnd := sumLong(t, got)
	// Reports at 3 s, 6 s and 9 s (it looks every second, here when the
	// packet at each second arrives), then the last one at the end, with
	// the traffic after 9 s.
	t.Logf("%d periodic records", len(periodic))
	if replay && len(periodic) != 3 {
		t.Errorf("%d periodic records, want 3", len(periodic))
	}
	if len(periodic) > 0 && periodic[0].uint(ieStart) != uint64(epoch.UnixMilli()) {
		t.Errorf("first record starts at %d, want the first packet's %d", periodic[0].uint(ieStart), epoch.UnixMilli())
	}
	var r *flows.Record
	for i := range final {
		if final[i].Client.Port() == 40000 {
			r = &final[i]
		}
	}
	if want := [4]uint64{r.C2S.Packets, r.S2C.Packets, r.C2S.IPBytes, r.S2C.IPBytes}; sum != want {
		t.Errorf("records sum to packets %d/%d octets %d/%d, want %d/%d %d/%d", sum[0], sum[1], sum[2], sum[3], want[0], want[1], want[2], want[3])
	}
	if lastEnd != uint64(r.LastSeen.UnixMilli()) {
		t.Errorf("last record ends at %d, want the last packet's %d", lastEnd, r.LastSeen.UnixMilli())
	}
}

// sumLong checks the records of testActiveTimeout's connections (the short
// one's only at its end, the long one's in order) and returns the long
// one's periodic records, its packets and octets each way, and the end of
// its last record.
func sumLong(t *testing.T, got []wireRecord) (periodic []wireRecord, sum [4]uint64, lastEnd uint64) {
	t.Helper()
	for _, r := range got {
		if r.client().Port() == 40001 {
			if r.uint(ieReason) != 3 {
				t.Errorf("the short connection was reported with reason %d, want only its end (3)", r.uint(ieReason))
			}
			continue
		}
		if r.uint(ieStart) < lastEnd || r.uint(ieEnd) < r.uint(ieStart) {
			t.Errorf("record from %d to %d after one that ended at %d", r.uint(ieStart), r.uint(ieEnd), lastEnd)
		}
		lastEnd = r.uint(ieEnd)
		sum[0] += r.uint(iePackets)
		sum[1] += r.uint(ieRPacket)
		sum[2] += r.uint(ieOctets)
		sum[3] += r.uint(ieROctets)
		if r.uint(ieReason) == 2 {
			periodic = append(periodic, r)
			if r.uint(iePackets)+r.uint(ieRPacket) == 0 {
				t.Error("a periodic record without traffic")
			}
		}
	}
	return periodic, sum, lastEnd
}

func TestIPFIXMessageSize(t *testing.T) {
	col := newUDPCollector(t)
	x := col.exporter(IPFIXConfig{MaxMessage: 512, FlushEvery: time.Hour, Replay: true})
	tab := flows.NewTable(flows.Config{})
	const n = 300
	for i := range n {
		cv := &conversation{t: tab, cli: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(10000+i)),
			srv: netip.MustParseAddrPort("198.51.100.7:80"), start: epoch}
		if i%3 == 0 {
			cv.cli = netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), uint16(10000+i))
			cv.srv = netip.MustParseAddrPort("[2001:db8::2]:80")
		}
		cv.handshake(time.Duration(i) * time.Millisecond)
	}
	recs := tab.Flush()
	go func() { _ = x.Stop(recs) }()
	seen := 0
	for seen < n {
		m := col.read(false)
		if m.length > 512 {
			t.Errorf("message of %d bytes, want at most 512", m.length)
		}
		if m.seq != uint32(seen) {
			t.Errorf("message with sequence number %d after %d records", m.seq, seen)
		}
		seen += len(m.records)
	}
}

func TestIPFIXTemplateRefresh(t *testing.T) {
	col := newUDPCollector(t)
	col.exporter(IPFIXConfig{TemplateRefresh: 20 * time.Millisecond, FlushEvery: 10 * time.Millisecond})
	for i := range 4 {
		m := col.read(false)
		if len(m.templates) != 2 {
			t.Fatalf("message %d has %d templates, want both", i, len(m.templates))
		}
	}
}

func TestIPFIXTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	x, err := DialIPFIX("tcp://"+ln.Addr().String(), IPFIXConfig{FlushEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	tab := flows.NewTable(flows.Config{})
	var mu sync.Mutex // guards next and tab's connections
	next := 0
	export := func() { // one record, a new connection each time
		mu.Lock()
		defer mu.Unlock()
		cv := &conversation{t: tab, cli: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(10000+next)),
			srv: netip.MustParseAddrPort("198.51.100.7:80"), start: epoch}
		next++
		cv.handshake(0)
		x.Retire(tab.Flush())
	}
	for session := range 2 {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		dec := newDecoder()
		export()
		m, err := readMsg(c, dec)
		if err != nil {
			t.Fatalf("session %d: %v", session, err)
		}
		if len(m.templates) != 2 {
			t.Fatalf("session %d begins with %d templates, want both", session, len(m.templates))
		}
		for len(m.records) == 0 {
			if m, err = readMsg(c, dec); err != nil {
				t.Fatalf("session %d: %v", session, err)
			}
		}
		c.Close() // the collector goes away; the exporter must connect again
		if session == 0 {
			stop := make(chan struct{})
			defer close(stop)
			go func() { // keep exporting until the second connection
				for range 100 {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
						export()
					}
				}
			}()
		}
	}
}

// readMsg reads one message from a stream: its header says its length.
func readMsg(c net.Conn, dec *decoder) (*message, error) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(hdr[2:]))
	copy(b, hdr)
	if _, err := io.ReadFull(c, b[16:]); err != nil {
		return nil, err
	}
	return dec.decode(b)
}

func TestParseIPFIXAddr(t *testing.T) {
	for _, c := range []struct{ in, network, hostport, err string }{
		{"127.0.0.1:4739", "udp", "127.0.0.1:4739", ""},
		{"udp://collector:2055", "udp", "collector:2055", ""},
		{"tcp://[::1]:4739", "tcp", "[::1]:4739", ""},
		{"collector", "", "", "want HOST:PORT"},
		{"sctp://a:1", "", "", "use HOST:PORT"},
		{":4739", "", "", "want HOST:PORT"},
	} {
		n, hp, err := ParseIPFIXAddr(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want one saying %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || n != c.network || hp != c.hostport {
			t.Errorf("%q: %q %q %v, want %q %q", c.in, n, hp, err, c.network, c.hostport)
		}
	}
}

func TestTCPFlagsAndReason(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("198.51.100.7:443")
	one := func(build func(cv *conversation)) flows.Record {
		tab := flows.NewTable(flows.Config{})
		build(&conversation{t: tab, cli: cli, srv: srv, start: epoch})
		recs := tab.Flush()
		if len(recs) != 1 {
			t.Fatalf("%d records, want 1", len(recs))
		}
		return recs[0]
	}
	SA, A, F, R := flows.SYN|flows.ACK, flows.ACK, flows.FIN, flows.RST
	for _, c := range []struct {
		name     string
		build    func(cv *conversation)
		c2s, s2c flows.Flags
		sided    bool
		stop     EndReason
	}{
		{"closed", func(cv *conversation) { cv.handshake(0); cv.close(1001, 5001, time.Second) }, SA | F, SA | F, true, EndOfFlow},
		{"reset", func(cv *conversation) { cv.handshake(0); cv.send(false, R|A, 5001, 1001, 0, time.Second) }, SA, SA | R, true, EndOfFlow},
		{"open", func(cv *conversation) { cv.handshake(0) }, SA, SA, true, EndForced},
		{"unanswered", func(cv *conversation) { cv.send(true, flows.SYN, 1, 0, 0, 0) }, flows.SYN, 0, true, EndForced},
		{"SYN-ACK first", func(cv *conversation) {
			cv.send(false, SA, 5000, 1001, 0, 0)
			cv.send(true, A, 1001, 5001, 0, time.Millisecond)
		}, A, SA, true, EndForced},
		{"mid-stream", func(cv *conversation) {
			cv.send(true, flows.PSH|A, 1001, 5001, 10, 0)
			cv.send(false, F|A, 5001, 1011, 0, time.Millisecond)
		}, A | F, A | F, false, EndForced},
	} {
		r := one(c.build)
		c2s, s2c, sided := TCPFlags(&r)
		if c2s != c.c2s || s2c != c.s2c || sided != c.sided {
			t.Errorf("%s (history %s): flags %v/%v sided %v, want %v/%v %v", c.name, r.History(), c2s, s2c, sided, c.c2s, c.s2c, c.sided)
		}
		if got := Reason(&r); got != c.stop {
			t.Errorf("%s: stopped with %v, want %v", c.name, got, c.stop)
		}
	}
}

// TestRetireReasons: why the table retired a record. A table of one shard
// holding three connections at most evicts one when a fourth comes.
func TestRetireReasons(t *testing.T) {
	cli, srv := netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("198.51.100.7:443")
	A := flows.ACK
	type retirement struct {
		r      flows.Record
		reason EndReason
	}
	var (
		tab     *flows.Table
		retired []retirement
		cfg     = flows.Config{Shards: 1, MaxConns: 3}
	)
	cfg.OnRetire = func(recs []flows.Record) {
		for _, r := range recs {
			retired = append(retired, retirement{r, Reason(&r)})
		}
	}
	tab = flows.NewTable(cfg)
	conv := func(port uint16) *conversation {
		return &conversation{t: tab, cli: netip.AddrPortFrom(cli.Addr(), port), srv: srv, start: epoch}
	}
	conv(40000).handshake(0)
	conv(40000).close(1001, 5001, time.Second) // ended by FIN
	conv(40001).handshake(0)                   // open, then idle
	conv(40002).handshake(0)
	conv(40002).send(true, flows.SYN, 90000, 0, 0, 2*time.Second) // a new connection replaces it...
	conv(40003).send(true, A, 1, 1, 0, 2*time.Hour)               // ... and gives up its handshake; the clock moves on
	for port := range uint16(3) {
		conv(50000 + port).handshake(2 * time.Hour) // three more for a table of three: one is evicted
	}
	want := []struct {
		port    uint16
		packets uint64
		reason  EndReason
	}{
		{40002, 2, EndOfFlow}, // replaced
		{40000, 4, EndOfFlow}, // FIN
		{40001, 2, EndIdle},   // idle
		{40002, 1, EndIdle},   // handshake given up, then retired
		{0, 0, EndLackOfResource},
	}
	if len(retired) != len(want) {
		t.Fatalf("%d records retired, want %d", len(retired), len(want))
	}
	for i, w := range want {
		r := retired[i]
		if w.reason == EndLackOfResource {
			if r.reason != w.reason || r.r.End != flows.EndEvicted {
				t.Errorf("retired #%d: %v (%v), want %v (evicted)", i, r.reason, r.r.End, w.reason)
			}
			continue
		}
		if r.r.Client.Port() != w.port || r.r.C2S.Packets != w.packets || r.reason != w.reason {
			t.Errorf("retired #%d: port %d with %d packets (%v/%v): %v; want port %d with %d: %v", i,
				r.r.Client.Port(), r.r.C2S.Packets, r.r.ClientState, r.r.ServerState, r.reason, w.port, w.packets, w.reason)
		}
	}
}

var ieProblemBits = ie{32473, 8}

// TestIPFIXProblems replays captures of pcaps/problems (real kernel
// sockets made to fail: tools/netns-problems) into an exporter that judges
// them, decodes the messages, and finds in each record's problem bitmap
// the problems the scenario's design makes (SCENARIOS.tsv), at the bits
// docs/problems.md assigns: bit k for the k-th kind of its table.
func TestIPFIXProblems(t *testing.T) {
	const (
		timeoutRetransmit = 1 << 3
		loss              = 1 << 4
		closeWait         = 1 << 6
		finWait2          = 1 << 7
		halfOpen          = 1 << 9
		abort             = 1 << 10
		earlyReuse        = 1 << 14
	)
	quick := diag.Config{CloseWait: 2 * time.Second, FinWait2: 2 * time.Second, TrendStep: time.Second}
	for _, c := range []struct {
		pcap string
		cfg  diag.Config
		want []uint64 // the records' bitmaps, sorted
	}{
		{"clean", diag.Config{}, []uint64{0, 0, 0}},
		// Four connections whose server never closes, and a clean fifth.
		{"close-wait", quick, []uint64{0, closeWait | finWait2, closeWait | finWait2, closeWait | finWait2, closeWait | finWait2}},
		{"half-open", diag.Config{}, []uint64{halfOpen | timeoutRetransmit | loss}},
		{"abort", diag.Config{}, []uint64{abort}},
		{"port-pressure", diag.Config{}, []uint64{0, 0, 0, 0, earlyReuse, earlyReuse, earlyReuse, earlyReuse}},
	} {
		t.Run(c.pcap, func(t *testing.T) {
			col := newUDPCollector(t)
			x := col.exporter(IPFIXConfig{FlushEvery: time.Hour, ActiveTimeout: -1, Replay: true, Judge: diag.New(c.cfg)})
			col.read(false) // the templates
			tab := flows.NewTable(flows.Config{OnRetire: x.Retire})
			replayInto(t, "../pcaps/problems/"+c.pcap+".pcap", ipfixTicker{tab, x})
			if err := x.Stop(tab.Flush()); err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for len(got) < len(c.want) {
				for _, r := range col.read(false).records {
					if b, ok := r.v[ieProblemBits]; !ok || len(b) != 4 {
						t.Fatalf("record without a 4-byte problem bitmap: %v", b)
					}
					got = append(got, r.uint(ieProblemBits))
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("problem bitmaps %b, want %b", got, c.want)
			}
		})
	}
	if diag.Set(0).Add(diag.EarlyReuse) != earlyReuse || diag.Set(0).Add(diag.CloseWait) != closeWait {
		t.Error("the kinds' bits moved: docs/problems.md and collectors rely on them")
	}
}

// ipfixTicker applies packets to a table and ticks the exporter with
// their time, as flowtrack does with --ipfix.
type ipfixTicker struct {
	t *flows.Table
	x *IPFIX
}

func (s ipfixTicker) Apply(p *flows.Packet) {
	s.t.Apply(p)
	s.x.Tick(s.t, p.TS)
}
