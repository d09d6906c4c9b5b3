package export

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// IPFIXConfig configures an IPFIX exporter. Zero fields take the defaults
// named.
type IPFIXConfig struct {
	// ObservationDomain is the Observation Domain ID in every message
	// header (default 1). Collectors tell exporters apart by it and by
	// their address.
	ObservationDomain uint32
	// PEN is the private enterprise number of flowtrack's own information
	// elements (default PENDocumentation).
	PEN uint32
	// MaxMessage is the largest message, in bytes. The default over UDP is
	// the path MTU the kernel knows for the collector, less the IP and UDP
	// headers, between 512 and 1472 (a full Ethernet frame), so that no
	// message is fragmented; over TCP, 16384.
	MaxMessage int
	// TemplateRefresh is how often (wall clock) the templates are sent
	// again over UDP, so that a collector that restarts, or lost them,
	// learns them again (default 1m). Over TCP they are sent once at the
	// start of each connection.
	TemplateRefresh time.Duration
	// FlushEvery is how long (wall clock) a partly filled message may wait
	// for more records before it is sent (default 1s).
	FlushEvery time.Duration
	// ActiveTimeout is how often, in capture time, a connection still
	// open is reported with the traffic since its previous report, so
	// that long connections show up before they end (default 60s;
	// negative: only when they end). See Tick.
	ActiveTimeout time.Duration
	// Queue is how many messages may wait for the network (default 256).
	Queue int
	// Annotate, if set, names each connection (Info.ServerName and
	// NameSource) in flowtrack's ServerName and NameSource elements.
	Annotate local.Lookup
	// Judge, if set, judges each connection as of the record's capture
	// time, for flowtrack's Problems element: a bitmap of its problems'
	// kinds (docs/problems.md). Nil: the element is 0.
	Judge *diag.Judge
	// Replay says the records come from a capture file, which nothing is
	// lost by waiting for: the exporter then waits for room in the queue
	// instead of dropping a message when the network is slower than the
	// records come, and Tick looks for long connections at once, on the
	// capture's goroutine, so that a replay always exports the same
	// records. A live capture must not wait (the kernel would drop packets
	// instead): by default Tick hands the look to a goroutine of the
	// exporter's, and a full queue loses messages (counted in Stats).
	Replay bool
}

func (c *IPFIXConfig) setDefaults(network string, conn net.Conn) {
	if c.ObservationDomain == 0 {
		c.ObservationDomain = 1
	}
	if c.PEN == 0 {
		c.PEN = PENDocumentation
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 16384
		if network == "udp" {
			c.MaxMessage = udpMessageSize(conn)
		}
	}
	c.MaxMessage = min(c.MaxMessage, 65535)
	if c.TemplateRefresh <= 0 {
		c.TemplateRefresh = time.Minute
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = time.Second
	}
	if c.ActiveTimeout == 0 {
		c.ActiveTimeout = time.Minute
	}
	if c.Queue <= 0 {
		c.Queue = 256
	}
}

// udpMessageSize returns the largest message that fits the path MTU to the
// connected UDP socket's peer, clamped to [512, 1472].
func udpMessageSize(conn net.Conn) int {
	size := 1472
	if mtu, v6, ok := pathMTU(conn); ok {
		hdr := 20 + 8
		if v6 {
			hdr = 40 + 8
		}
		size = min(max(mtu-hdr, 512), size)
	}
	return size
}

// IPFIXStats are an exporter's running totals.
type IPFIXStats struct {
	Messages       uint64 // messages written to the network
	Records        uint64 // data records in them
	DroppedRecords uint64 // data records lost: queue full, or the write failed
	Errors         uint64 // failed writes and connection attempts
	LastError      string // the latest of those errors, "" if none
}

// IPFIX exports connection records to an IPFIX collector (RFC 7011) over
// UDP or TCP, one biflow record per connection (RFC 5103): the client is
// the source, the server the destination, and the server-to-client counts
// are reverse elements. Each record carries the connection's packets and
// octets per direction since its previous record (octets of the IP
// packets, IP header included, as RFC 7012 defines octetDeltaCount; not
// the frames' bytes that the JSON output counts), its first and last
// packet's capture time, the TCP flags each side sent, why it was exported
// (flowEndReason), its VLAN tags, and flowtrack's own elements: both
// endpoints' inferred states, the handshake RTT, retransmissions per
// direction, and whether it was picked up mid-stream.
//
// There is an IPFIX template for IPv4 and one for IPv6; they are sent at
// the start and then every TemplateRefresh over UDP, at the start of each
// connection over TCP. Records are gathered into messages of at most
// MaxMessage bytes, sent when full and at least every FlushEvery. A
// goroutine writes them to the network, so that the capture never waits
// for it (unless Replay); the message header's sequence number counts the
// data records before it, so a collector sees from a gap that records were
// lost.
//
// An IPFIX is safe for concurrent use. Its methods fit the table's hooks:
// Retire goes in flows.Config.OnRetire, Tick after each Table.Apply (for
// the active timeout), and Stop with the records that Table.Flush returns.
type IPFIX struct {
	cfg      IPFIXConfig
	network  string
	addr     string
	conn     net.Conn // nil while a TCP connection is down
	v4, v6   []field
	tmplSet  []byte // the template set, both templates
	nextScan atomic.Int64
	now      atomic.Int64 // the latest capture time Tick was given (ns): what final records are judged at
	queue    chan queued
	done     chan struct{}     // closed when the sender has finished
	scanReq  chan *flows.Table // wakes the tick goroutine for a look at the table (live)
	stopTick chan struct{}
	tickDone chan struct{}

	mu       sync.Mutex // guards the following
	msg      []byte     // message being filled; nil if none
	set      int        // offset of msg's open set header, or -1
	setID    uint16     // that set's ID
	nrec     int        // data records in msg
	seq      uint32     // data records in all messages finished so far
	tmplDue  time.Time  // when the templates are next due (UDP)
	closed   bool
	reported map[uint64]reported // connections reported by an active timeout
	snap     []flows.Record      // the last look's snapshot, kept for the next
	scanning bool                // a look is under way...
	gone     map[uint64]struct{} // ... and these connections retired meanwhile

	smu   sync.Mutex // guards stats
	stats IPFIXStats
}

// DialIPFIX returns an exporter to the collector at addr: "HOST:PORT" or
// "udp://HOST:PORT" for UDP, "tcp://HOST:PORT" for TCP (IANA's IPFIX port
// is 4739). A TCP collector must accept the connection now; after that,
// a lost connection is tried again (and records are dropped meanwhile).
func DialIPFIX(addr string, cfg IPFIXConfig) (*IPFIX, error) {
	network, hostport, err := ParseIPFIXAddr(addr)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout(network, hostport, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("IPFIX collector %s: %w", addr, err)
	}
	return NewIPFIX(conn, cfg), nil
}

// ParseIPFIXAddr splits an --ipfix address into its network ("udp" or
// "tcp") and HOST:PORT.
func ParseIPFIXAddr(addr string) (network, hostport string, err error) {
	network, hostport = "udp", addr
	if n, rest, ok := strings.Cut(addr, "://"); ok {
		network, hostport = n, rest
	}
	if network != "udp" && network != "tcp" {
		return "", "", fmt.Errorf("IPFIX collector %q: use HOST:PORT (UDP), udp://HOST:PORT or tcp://HOST:PORT", addr)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || port == "" {
		return "", "", fmt.Errorf("IPFIX collector %q: want HOST:PORT, such as collector.example:4739", addr)
	}
	return network, hostport, nil
}

// NewIPFIX returns an exporter writing to conn, a connected UDP socket or
// a TCP connection, which it then owns. It sends the templates at once.
func NewIPFIX(conn net.Conn, cfg IPFIXConfig) *IPFIX {
	network := "udp"
	if _, ok := conn.(*net.TCPConn); ok {
		network = "tcp"
	}
	cfg.setDefaults(network, conn)
	x := &IPFIX{
		cfg:      cfg,
		network:  network,
		addr:     conn.RemoteAddr().String(),
		conn:     conn,
		v4:       fields(false, cfg.PEN),
		v6:       fields(true, cfg.PEN),
		queue:    make(chan queued, cfg.Queue),
		done:     make(chan struct{}),
		scanReq:  make(chan *flows.Table, 1),
		stopTick: make(chan struct{}),
		tickDone: make(chan struct{}),
		set:      -1,
		reported: make(map[uint64]reported),
		gone:     make(map[uint64]struct{}),
	}
	t := appendTemplate(nil, templateIPv4, x.v4)
	t = appendTemplate(t, templateIPv6, x.v6)
	x.tmplSet = binary.BigEndian.AppendUint16(nil, 2) // the Template Set ID
	x.tmplSet = binary.BigEndian.AppendUint16(x.tmplSet, uint16(4+len(t)))
	x.tmplSet = append(x.tmplSet, t...)
	go x.send()
	x.mu.Lock()
	x.flushTemplates()
	x.mu.Unlock()
	go x.tick()
	return x
}

// Retire exports the last records of connections the table retired. Its
// signature fits flows.Config.OnRetire.
func (x *IPFIX) Retire(recs []flows.Record) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range recs {
		x.final(&recs[i], Reason(&recs[i]))
	}
}

// Stop exports the records of connections still tracked when the capture
// stopped (what Table.Flush returns), then flushes and closes the exporter
// like Close.
func (x *IPFIX) Stop(recs []flows.Record) error {
	x.mu.Lock()
	for i := range recs {
		x.final(&recs[i], Reason(&recs[i]))
	}
	x.mu.Unlock()
	return x.Close()
}

// final exports the last record of r's connection. x.mu is held.
func (x *IPFIX) final(r *flows.Record, reason EndReason) {
	prev, ok := x.reported[r.ID]
	start := r.FirstSeen
	if ok {
		delete(x.reported, r.ID)
		start = clampTime(prev.at, start, r.LastSeen)
	}
	if x.scanning {
		x.gone[r.ID] = struct{}{}
	}
	x.add(r, &prev, start, reason, time.Unix(0, x.now.Load()))
}

// Tick exports the periodic records of long connections when capture time
// ts has gone far enough since the last look. Call it after Table.Apply
// with the packet's time: the active timeout then runs on capture time, and
// a replay at any speed exports what a live capture would have. Unless
// Replay, the look happens on a goroutine of the exporter's, so that the
// capture does not wait for a large table's snapshot.
func (x *IPFIX) Tick(t *flows.Table, ts int64) {
	if ts > x.now.Load() {
		x.now.Store(ts) // the capture time the last records are judged at (one goroutine calls Tick)
	}
	if x.cfg.ActiveTimeout < 0 {
		return
	}
	next := x.nextScan.Load()
	if ts < next {
		return
	}
	// Look four times per timeout (at most once a second): a connection is
	// then reported between 1 and 1.25 timeouts after its previous report.
	every := max(int64(x.cfg.ActiveTimeout)/4, int64(time.Second))
	if !x.nextScan.CompareAndSwap(next, ts+every) || next == 0 {
		return
	}
	if x.cfg.Replay {
		x.ExportActive(t)
		return
	}
	select {
	case x.scanReq <- t:
	default: // a look is pending already
	}
}

// ExportActive exports a record for each connection of t that has been
// open for ActiveTimeout of capture time since its first packet or its
// previous report, with the traffic since then, if there was any. Tick
// calls it.
func (x *IPFIX) ExportActive(t *flows.Table) {
	x.mu.Lock()
	if x.closed || x.scanning {
		x.mu.Unlock()
		return
	}
	x.scanning = true
	snap := x.snap[:0]
	x.snap = nil
	x.mu.Unlock()

	// The snapshot is taken without x.mu, so that Retire need not wait for
	// it. A connection in it that retires before it is looked at below is
	// in x.gone, and skipped: its last record is out already. One that
	// retires after is reported by Retire with what this look reported.
	now := t.Now()
	snap = t.AppendSnapshot(snap)
	const chunk = 4096 // connections looked at per hold of x.mu
	for lo := 0; lo < len(snap); lo += chunk {
		x.mu.Lock()
		for i := lo; i < min(lo+chunk, len(snap)); i++ {
			x.activeRecord(&snap[i], now)
		}
		x.mu.Unlock()
	}

	x.mu.Lock()
	x.scanning = false
	clear(x.gone)
	if cap(snap) <= 1<<16 { // do not keep a huge table's copy between looks
		x.snap = snap[:0]
	}
	x.mu.Unlock()
}

// activeRecord exports r's periodic record at capture time now if it is
// due. x.mu is held.
func (x *IPFIX) activeRecord(r *flows.Record, now time.Time) {
	if done(r.ClientState) && done(r.ServerState) {
		return // it ended: its last record comes when it retires
	}
	if _, gone := x.gone[r.ID]; gone {
		return
	}
	prev, ok := x.reported[r.ID]
	since := r.FirstSeen
	if ok {
		since = prev.at
		if r.C2S.Packets == prev.c2s.Packets && r.S2C.Packets == prev.s2c.Packets {
			return // nothing new
		}
	}
	if now.Sub(since) < x.cfg.ActiveTimeout {
		return
	}
	x.add(r, &prev, clampTime(since, r.FirstSeen, r.LastSeen), EndActive, now)
	// The next record starts here. Packets may have come between reading
	// the clock and copying r: it is then r's last packet.
	x.reported[r.ID] = reported{c2s: r.C2S, s2c: r.S2C, at: maxTime(now, r.LastSeen)}
}

// maxTime returns the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// clampTime returns t, or lo if t is before lo, or hi if t is after hi.
func clampTime(t, lo, hi time.Time) time.Time {
	if t.Before(lo) {
		t = lo
	}
	if t.After(hi) {
		t = hi
	}
	return t
}

// add appends r's record to the message being filled, sending the message
// first if the record does not fit. x.mu is held.
// now is the capture time its problems are judged at (Judge.Until).
func (x *IPFIX) add(r *flows.Record, prev *reported, start time.Time, reason EndReason, now time.Time) {
	if x.closed {
		return
	}
	id, fs := uint16(templateIPv4), x.v4
	if r.Key.V6 {
		id, fs = templateIPv6, x.v6
	}
	var name local.Info
	if x.cfg.Annotate != nil {
		name = x.cfg.Annotate(r)
	}
	need := recordLen(fs, min(len(name.ServerName), maxIPFIXName))
	if x.set < 0 || x.setID != id {
		need += 4 // a new set header
	}
	if x.msg != nil && len(x.msg)+need > x.cfg.MaxMessage {
		x.finish() // a record goes into a new message even if it is alone too big
	}
	if x.msg == nil {
		x.start(false)
	}
	if x.set < 0 || x.setID != id {
		x.closeSet()
		x.set, x.setID = len(x.msg), id
		x.msg = binary.BigEndian.AppendUint16(x.msg, id)
		x.msg = append(x.msg, 0, 0) // length, set by closeSet
	}
	var problems diag.Set
	if j := x.cfg.Judge; j != nil {
		problems = j.Kinds(r, j.Until(r, now), nil)
	}
	x.msg = appendRecord(x.msg, r, prev, start, reason, &name, problems)
	x.nrec++
}

// start begins a message: a header, filled in by finish, and the template
// set if withTemplates or when it is due over UDP. x.mu is held.
func (x *IPFIX) start(withTemplates bool) {
	x.msg = make([]byte, 16, x.cfg.MaxMessage)
	x.set, x.nrec = -1, 0
	now := time.Now()
	if withTemplates || x.network == "udp" && !now.Before(x.tmplDue) {
		x.msg = append(x.msg, x.tmplSet...)
		x.tmplDue = now.Add(x.cfg.TemplateRefresh)
	}
}

// closeSet writes the length of the open set, if any. x.mu is held.
func (x *IPFIX) closeSet() {
	if x.set >= 0 {
		binary.BigEndian.PutUint16(x.msg[x.set+2:], uint16(len(x.msg)-x.set))
		x.set = -1
	}
}

// finish completes the message being filled and queues it. x.mu is held.
func (x *IPFIX) finish() {
	if x.msg == nil {
		return
	}
	x.closeSet()
	m := x.msg
	be := binary.BigEndian
	be.PutUint16(m[0:], 10) // IPFIX
	be.PutUint16(m[2:], uint16(len(m)))
	be.PutUint32(m[4:], uint32(time.Now().Unix()))
	be.PutUint32(m[8:], x.seq)
	be.PutUint32(m[12:], x.cfg.ObservationDomain)
	n := x.nrec
	x.seq += uint32(n)
	x.msg, x.nrec = nil, 0
	q := queued{m, uint64(n)}
	if x.cfg.Replay {
		x.queue <- q
		return
	}
	select {
	case x.queue <- q:
	default:
		x.count(func(s *IPFIXStats) { s.DroppedRecords += uint64(n) })
	}
}

// flushTemplates sends a message with only the templates. x.mu is held.
func (x *IPFIX) flushTemplates() {
	x.finish()
	x.start(true)
	x.finish()
}

// tick sends partly filled messages every FlushEvery, and the templates
// when they are due over UDP, and looks for long connections when Tick
// asks, until Close.
func (x *IPFIX) tick() {
	defer close(x.tickDone)
	t := time.NewTicker(x.cfg.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-x.stopTick:
			return
		case table := <-x.scanReq:
			x.ExportActive(table)
		case now := <-t.C:
			x.mu.Lock()
			if !x.closed {
				if x.nrec > 0 {
					x.finish()
				}
				if x.network == "udp" && !now.Before(x.tmplDue) {
					x.flushTemplates()
				}
			}
			x.mu.Unlock()
		}
	}
}

// send writes the queued messages to the network until the queue is
// closed. Over TCP it reconnects after a failure, sending the templates
// first, and drops the messages that come while it waits to try again.
func (x *IPFIX) send() {
	defer close(x.done)
	var retry time.Time
	backoff := time.Second
	for q := range x.queue {
		m, nrec := q.msg, q.records
		if x.conn == nil {
			if time.Now().Before(retry) {
				x.count(func(s *IPFIXStats) { s.DroppedRecords += nrec })
				continue
			}
			if err := x.redial(m); err != nil {
				retry, backoff = time.Now().Add(backoff), min(2*backoff, 30*time.Second)
				x.count(func(s *IPFIXStats) { s.DroppedRecords += nrec; s.Errors++; s.LastError = err.Error() })
				continue
			}
			backoff = time.Second
		}
		_ = x.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := x.conn.Write(m); err != nil {
			x.count(func(s *IPFIXStats) { s.DroppedRecords += nrec; s.Errors++; s.LastError = err.Error() })
			if x.network == "tcp" {
				x.conn.Close()
				x.conn = nil
			}
			continue
		}
		x.count(func(s *IPFIXStats) { s.Messages++; s.Records += nrec })
	}
	if x.conn != nil {
		x.conn.Close()
	}
}

// redial connects to the TCP collector again and sends it the templates,
// in a message with the sequence number of m, the message to send next.
func (x *IPFIX) redial(m []byte) error {
	conn, err := net.DialTimeout("tcp", x.addr, 5*time.Second)
	if err != nil {
		return err
	}
	t := make([]byte, 16, 16+len(x.tmplSet))
	copy(t, m[:16])
	t = append(t, x.tmplSet...)
	binary.BigEndian.PutUint16(t[2:], uint16(len(t)))
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(t); err != nil {
		conn.Close()
		return err
	}
	x.conn = conn
	return nil
}

// queued is a message waiting for the network, and how many data records
// it holds.
type queued struct {
	msg     []byte
	records uint64
}

func (x *IPFIX) count(f func(*IPFIXStats)) {
	x.smu.Lock()
	f(&x.stats)
	x.smu.Unlock()
}

// Stats returns the exporter's totals so far.
func (x *IPFIX) Stats() IPFIXStats {
	x.smu.Lock()
	defer x.smu.Unlock()
	return x.stats
}

// Addr returns the collector's address, and its network ("udp" or "tcp").
func (x *IPFIX) Addr() (network, addr string) { return x.network, x.addr }

// Close sends what is left, waits for the messages queued to be written
// (each write gives up after 10 s), and closes the connection. Records
// given to the exporter afterwards are dropped.
func (x *IPFIX) Close() error {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return nil
	}
	x.finish()
	x.closed = true
	x.mu.Unlock()
	close(x.stopTick)
	<-x.tickDone
	close(x.queue)
	<-x.done
	st := x.Stats()
	switch {
	case st.DroppedRecords == 0:
		return nil
	case st.LastError != "":
		return fmt.Errorf("IPFIX collector %s://%s: %d of %d records lost (last error: %s)",
			x.network, x.addr, st.DroppedRecords, st.DroppedRecords+st.Records, st.LastError)
	}
	return fmt.Errorf("IPFIX collector %s://%s: %d of %d records lost: the network could not keep up",
		x.network, x.addr, st.DroppedRecords, st.DroppedRecords+st.Records)
}
