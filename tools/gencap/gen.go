package main

import (
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// Endpoint states, as flowtrack names them.
const (
	stClosed uint8 = iota
	stSynSent
	stSynReceived
	stEstablished
	stFinWait1
	stFinWait2
	stCloseWait
	stClosing
	stLastAck
	stTimeWait
)

var stateNames = [...]string{"CLOSED", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED",
	"FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT"}

// How a connection ends.
const (
	kFinClient = iota // client closes first: TIME_WAIT / CLOSED
	kFinServer        // server closes first: CLOSED / TIME_WAIT
	kRSTClient        // client aborts with RST|ACK: CLOSED / CLOSED
	kRSTServer        // server aborts with RST: CLOSED / CLOSED
	kHalfOpen         // SYN never answered: SYN_SENT / CLOSED
	kRefused          // SYN answered by RST|ACK: CLOSED / CLOSED
	kOpen             // stays open: ESTABLISHED / ESTABLISHED
	kFlood            // a spoofed SYN: SYN_SENT / CLOSED
)

var kindNames = [...]string{"fin-client", "fin-server", "rst-client", "rst-server",
	"half-open", "refused", "open", "synflood"}

// Phases of a connection's script: the next packet it sends.
const (
	phSYN = iota
	phSYNRetry
	phRefuse
	phSYNACK
	phACK
	phXfer
	phFIN1     // the closer's FIN
	phFIN2ACK  // the peer's ACK of it
	phFIN2FIN  // the peer's FIN (with the ACK when phFIN2ACK was skipped)
	phFIN3     // the closer's last ACK
	phRST      // the aborter's RST
	phFinished // no more packets
)

// config is what the flags set.
type config struct {
	Seed        uint64
	Packets     int64   // stop after this many packets (0: when Conns are done)
	Conns       int64   // connections (approximate when Packets is set)
	Concurrent  int     // connections open at once
	Rate        float64 // packets per second, all connections together
	Duration    time.Duration
	Snaplen     int
	Nano        bool
	IPv6        float64 // percent of connections over IPv6
	Retrans     float64 // percent of data segments lost after the capture point and resent
	HalfOpen    float64 // percent of connections whose SYN is never answered
	Refused     float64 // percent answered by RST
	RST         float64 // percent aborted by RST after data
	Open        float64 // percent still open at the end
	Reuse       float64 // percent of FIN-closed connections whose 4-tuple is reused soon after
	Servers     int
	SYNFlood    int64 // spoofed SYNs
	Established int   // established connections carrying data beside the flood
	Start       time.Time
}

func defaultConfig() config {
	return config{Seed: 1, Concurrent: 0, Rate: 100000, Snaplen: maxSnap, IPv6: 20, Retrans: 1,
		HalfOpen: 2, Refused: 2, RST: 5, Open: 3, Reuse: 1, Servers: 16,
		Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// conn is one simulated connection. Side 0 is the client, 1 the server.
type conn struct {
	serial  int64 // creation order (heap tie-break)
	id      int64 // order of its first packet; -1 before it
	tuple   int64 // the 4-tuple's number (a reused one keeps it)
	v6      bool
	kind    uint8
	phase   uint8
	xfer    bool  // a flood's established connection: runs until the packet budget does
	ts      bool  // timestamps negotiated
	noWS    bool  // window scaling not negotiated
	opt     uint8 // the client's SYN options
	sport   uint16
	cport   uint16
	shost   uint32
	chost   uint32
	ws      [2]uint8
	ttl     [2]uint8
	mss     int // effective payload per full segment
	retries int // SYN retransmissions left (half-open)

	isn  [2]uint32
	nxt  [2]uint32 // next sequence number each side sends
	rcv  [2]uint32 // what each side has received in order
	got  [2]uint64 // bytes each side has received (for the window)
	tsb  [2]uint32 // timestamp clock base
	tsr  [2]uint32 // last TSval received from the peer
	ipid [2]uint16
	flow [2]uint32

	t0, next    int64
	rtt         int64 // round-trip time at the capture point (near the client)
	think       int64 // idle time before each request and before the close
	exLeft      int   // request/response exchanges left
	respSegs    int   // full response size in segments
	sender      int   // side sending the current message
	msgLeft     int   // bytes of it left
	unacked     int   // segments received and not yet acknowledged
	round       int   // segments left in the current round (congestion window)
	cwnd        int
	lostSeq     uint32
	lostLen     int
	ackNow      bool // the receiver acknowledges at once (after a retransmission)
	closer      int
	fin2Split   bool   // the passive closer ACKs the FIN before sending its own
	msgLen      int    // bytes of the current message
	respPending bool   // the last request awaits its response
	lastSide    int    // the side that sent the last packet
	mssOpt      uint16 // the MSS option's value
	prev        *conn  // the connection whose 4-tuple this one reuses
	reused      bool   // a successor will reuse this one's 4-tuple
	firstTS     int64
	lastTS      int64
	synTS       int64
	rttSeen     int64 // SYN to the client's ACK of the SYN-ACK, as captured; -1 if none
	pk          [2]int64
	by, pl      [2]int64
	rt          [2]int64
	state       [2]uint8
	endedLabel  string
}

// gen holds the generator's state.
type gen struct {
	cfg       config
	rng       *rand.Rand
	pw        *pcapWriter
	truth     *truthWriter
	pat       *pattern
	heap      connHeap
	now       int64
	written   int64
	started   int64
	serial    int64
	tuples    int64
	created   int64
	hosts     int64
	lifetime  float64 // mean ns a connection lives
	avgPkts   float64 // mean packets per connection planned
	estBudget int64   // flood mode: packets left for the established connections
	scale     float64 // calibrates connection sizes to avgPkts
	donePkts  int64   // packets of the connections finished since the last calibration
	doneConns int64
	flood     conn // scratch for flood SYNs
	hdr       [16 + ethLen + ipv6Len + tcpLen + 40]byte
	last      int64
}

// Stats is what a run reports.
type Stats struct {
	Packets, Conns int64
	First, Last    int64 // capture times of the first and last packets (ns)
}

// generate writes the capture to w and, when truth is not nil, the ground
// truth to it.
func generate(cfg config, w io.Writer, truth io.Writer) (Stats, error) {
	cfg.Servers = max(cfg.Servers, 1)
	g := &gen{cfg: cfg, scale: 1, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	var err error
	if g.pw, err = newPcapWriter(w, cfg.Snaplen, cfg.Nano); err != nil {
		return Stats{}, err
	}
	if truth != nil {
		g.truth = newTruthWriter(truth)
	}
	g.pat = newPattern(func(b []byte) {
		for i := 0; i+8 <= len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], g.rng.Uint64())
		}
	})
	g.now = cfg.Start.UnixNano()
	if cfg.SYNFlood > 0 {
		g.runFlood()
	} else {
		g.run()
	}
	g.flush()
	if g.truth != nil {
		if err := g.truth.flush(); err != nil {
			return Stats{}, err
		}
	}
	st := Stats{Packets: g.written, Conns: g.started, First: cfg.Start.UnixNano(), Last: g.last}
	return st, g.pw.flush()
}

// plan sets the connection counts and timing from the flags.
func (g *gen) plan() {
	c := &g.cfg
	switch {
	case c.Packets > 0 && c.Conns > 0:
		g.avgPkts = float64(c.Packets) / float64(c.Conns)
	case c.Packets > 0:
		g.avgPkts = 20
		c.Conns = max(1, int64(float64(c.Packets)/g.avgPkts))
	default:
		if c.Conns <= 0 {
			c.Conns = 1000
		}
		g.avgPkts = 20
	}
	if c.Concurrent <= 0 {
		c.Concurrent = int(min(c.Conns, 1000))
	}
	total := c.Packets
	if total == 0 {
		total = int64(float64(c.Conns) * g.avgPkts)
	}
	rate := c.Rate
	if c.Duration > 0 {
		rate = float64(total) / c.Duration.Seconds()
	}
	if rate <= 0 {
		rate = 100000
	}
	// Each of Concurrent slots runs connections one after another; a
	// connection of avgPkts packets lives Concurrent*avgPkts/rate.
	g.lifetime = float64(c.Concurrent) * g.avgPkts / rate * 1e9
	// Client hosts: enough that ports never run out (each host has 28232
	// ephemeral ports; the 4-tuple of tuple number j is unique).
	g.hosts = max(16, c.Conns*2/20000+1)
}

func (g *gen) run() {
	g.plan()
	c := &g.cfg
	for i := 0; i < c.Concurrent && g.created < c.Conns; i++ {
		start := g.now + int64(g.rng.Float64()*g.lifetime)
		g.push(g.newConn(start, nil))
	}
	for len(g.heap) > 0 {
		cn := g.heap[0].c
		g.now = cn.next
		g.step(cn)
		if c.Packets > 0 && g.written >= c.Packets {
			break
		}
		if cn.phase == phFinished {
			g.heap.pop()
			more := c.Packets > 0 || g.created < c.Conns
			g.finish(cn, more && cn.reused)
			if more {
				var succ *conn
				if cn.reused {
					// TIME_WAIT-style reuse: the same 4-tuple, soon.
					succ = g.newConn(g.now+int64(200e6+g.rng.Float64()*1.8e9), cn)
				} else {
					succ = g.newConn(g.now+int64(g.rng.ExpFloat64()*g.lifetime*0.05), nil)
				}
				g.push(succ)
			}
		} else {
			g.heap.fix0()
		}
	}
}

// runFlood writes SYNFlood spoofed SYNs to one server, interleaved with
// Established long-lived connections carrying data.
func (g *gen) runFlood() {
	c := &g.cfg
	est := int64(c.Established)
	total := c.Packets
	if total <= 0 {
		total = c.SYNFlood + 200*est
	}
	g.estBudget = max(0, total-c.SYNFlood)
	if est == 0 {
		g.estBudget = 0
	}
	rate := c.Rate
	if c.Duration > 0 {
		rate = float64(total) / c.Duration.Seconds()
	}
	if rate <= 0 {
		rate = 100000
	}
	dur := float64(total) / rate * 1e9
	synGap := dur / float64(c.SYNFlood)
	c.Conns = est
	c.Concurrent = int(est)
	g.hosts = 16
	if est > 0 {
		g.avgPkts = float64(g.estBudget) / float64(est)
		g.lifetime = dur
	}
	for i := int64(0); i < est; i++ {
		cn := g.newConn(g.now+int64(g.rng.Float64()*min(1e9, dur/10)), nil)
		g.push(cn)
	}
	nextSYN := float64(g.now)
	for i := int64(0); ; {
		synAt := int64(math.MaxInt64)
		if i < c.SYNFlood {
			synAt = int64(nextSYN)
		}
		estAt := int64(math.MaxInt64)
		if g.estBudget > 0 && len(g.heap) > 0 {
			estAt = g.heap[0].c.next
		}
		if synAt == math.MaxInt64 && estAt == math.MaxInt64 {
			break
		}
		if synAt <= estAt {
			g.now = synAt
			g.floodSYN(i)
			i++
			nextSYN += g.rng.ExpFloat64() * synGap
			continue
		}
		cn := g.heap[0].c
		g.now = estAt
		g.step(cn)
		g.estBudget--
		if cn.phase == phFinished {
			g.heap.pop()
			g.finish(cn, false)
		} else {
			g.heap.fix0()
		}
	}
}

// floodSYN writes spoofed SYN number i: a unique source address and port.
func (g *gen) floodSYN(i int64) {
	f := &g.flood
	*f = conn{id: g.started, kind: kFlood, rttSeen: -1}
	g.started++
	a := i & (1<<22 - 1) // 100.64.0.0/10
	f.chost = 100<<24 | 64<<16 | uint32(perm22(uint32(a)))
	f.cport = uint16(1024 + (uint32(mix64(uint64(a)))+uint32(i>>22))%64511)
	f.shost = 10
	f.sport = 80
	f.ttl[0] = uint8(32 + g.rng.IntN(200))
	f.ipid[0] = uint16(g.rng.Uint32())
	f.isn[0] = g.rng.Uint32()
	f.opt = optSYNMSS
	f.mssOpt = 1460
	f.ws[0] = 0
	f.noWS = true
	f.endedLabel = kindNames[kFlood]
	f.state = [2]uint8{stSynSent, stClosed}
	g.emit(f, 0, fSYN, f.isn[0], 0, optSYNMSS, uint16(1024*(1+g.rng.IntN(64))))
	if g.truth != nil {
		g.truth.row(g, f)
	}
}

// newConn creates a connection starting at start; with prev, it reuses
// prev's 4-tuple. The steps draw from the generator's random numbers in a
// fixed order: the same seed gives the same connections.
func (g *gen) newConn(start int64, prev *conn) *conn {
	c := &conn{serial: g.serial, id: -1, next: start, t0: start, rttSeen: -1}
	g.serial++
	g.created++
	g.pickTuple(c, prev)
	g.pickOptions(c)
	g.pickEnd(c, prev)
	g.pickSize(c)
	return c
}

// pickTuple gives c its 4-tuple (prev's, if it reuses one), its initial
// sequence numbers and its hosts' IP header fields.
func (g *gen) pickTuple(c *conn, prev *conn) {
	r := g.rng
	if prev != nil {
		c.tuple, c.v6, c.chost, c.cport, c.shost, c.sport = prev.tuple, prev.v6, prev.chost, prev.cport, prev.shost, prev.sport
		c.prev = prev
		// Linux picks a new ISN above the old connection's (RFC 6191).
		c.isn[0] = prev.nxt[0] + 65536 + r.Uint32N(1<<20)
	} else {
		j := g.tuples
		g.tuples++
		c.tuple = j
		c.v6 = r.Float64()*100 < g.cfg.IPv6
		h := j % g.hosts
		k := j / g.hosts
		c.chost = uint32(h + g.hosts*(k/28232))
		c.cport = uint16(32768 + ((k%28232)*7919+int64(mix64(uint64(h))%28232))%28232)
		c.shost = uint32(r.IntN(g.cfg.Servers))
		c.sport = serverPort(r.Float64())
		c.isn[0] = r.Uint32()
	}
	c.isn[1] = r.Uint32()
	c.nxt = c.isn
	c.tsb = [2]uint32{r.Uint32(), r.Uint32()}
	c.ipid = [2]uint16{uint16(r.Uint32()), uint16(r.Uint32())}
	c.flow = [2]uint32{r.Uint32() & 0xfffff, r.Uint32() & 0xfffff}
	c.ttl = [2]uint8{64, 64 - uint8(3+r.IntN(20))}
	if r.IntN(4) == 0 {
		c.ttl[1] = 128 - uint8(3+r.IntN(20))
	}
}

// pickOptions gives c its TCP options: Linux clients offer everything;
// Windows ones no timestamps; a few servers answer with MSS only.
func (g *gen) pickOptions(c *conn) {
	r := g.rng
	switch {
	case r.IntN(5) == 0:
		c.opt = optSYNWin
	default:
		c.opt = optSYNFull
		c.ts = true
	}
	c.ws = [2]uint8{7, uint8(7 + r.IntN(4))}
	if c.opt == optSYNWin {
		c.ws[0] = 8
	}
	if r.IntN(10) == 0 {
		c.noWS = true // the server answers MSS only
		c.ts = false
	}
	mss := 1460
	if c.v6 {
		mss = 1440
	}
	if r.IntN(10) == 0 {
		mss -= 60 + 20*r.IntN(3) // a tunnel or VPN on the path
	}
	c.mssOpt = uint16(mss)
	c.mss = mss
	if c.ts {
		c.mss -= 12
	}
}

// pickEnd chooses how c ends, unless it is a flood's established
// connection, and which side closes it.
func (g *gen) pickEnd(c *conn, prev *conn) {
	r := g.rng
	u := r.Float64() * 100
	cfg := &g.cfg
	switch {
	case g.cfg.SYNFlood > 0:
		c.kind = kOpen
		c.xfer = true
	case prev != nil:
		c.kind = uint8(r.IntN(2)) // reuse ends by FIN again
	case u < cfg.HalfOpen:
		c.kind = kHalfOpen
		c.retries = r.IntN(3)
	case u < cfg.HalfOpen+cfg.Refused:
		c.kind = kRefused
	case u < cfg.HalfOpen+cfg.Refused+cfg.RST:
		c.kind = kRSTClient + uint8(r.IntN(2))
	case u < cfg.HalfOpen+cfg.Refused+cfg.RST+cfg.Open:
		c.kind = kOpen
	case r.IntN(5) < 2:
		c.kind = kFinClient
	default:
		c.kind = kFinServer
	}
	if c.kind == kFinServer || c.kind == kRSTServer {
		c.closer = 1
	}
	c.fin2Split = r.IntN(2) == 0
}

// pickSize sizes c (packets planned, heavy-tailed around the mean) and
// times it: a realistic RTT, shrunk when the connection must be quicker,
// and idle time so that it lives about its share of the run.
func (g *gen) pickSize(c *conn) {
	r := g.rng
	spread := math.Exp(r.NormFloat64()*0.8 - 0.32) // mean 1
	target := g.avgPkts * g.scale * spread
	if g.cfg.SYNFlood > 0 {
		target, spread = g.avgPkts, 1
	}
	data := max(0, target-7)
	c.exLeft = 1 + int(data/40)
	perEx := data / float64(c.exLeft)
	c.respSegs = max(1, int(math.Round((perEx-1.5)/1.5)))
	c.cwnd = 10

	life := g.lifetime * spread
	rounds := 2 + float64(c.exLeft)*(2+float64(c.respSegs)/20)
	rtt := 20e6 * math.Exp(r.NormFloat64()*0.9)
	rtt = min(rtt, 300e6, life/rounds/2)
	c.rtt = max(int64(rtt), 30000)
	c.think = max(0, int64((life-rounds*float64(c.rtt))/float64(c.exLeft+1)))
	if c.xfer {
		c.exLeft = math.MaxInt32 // until the flood's packet budget runs out
	}
}

// serverPort picks a service port.
func serverPort(u float64) uint16 {
	switch {
	case u < 0.45:
		return 443
	case u < 0.80:
		return 80
	case u < 0.85:
		return 8080
	case u < 0.90:
		return 22
	case u < 0.93:
		return 25
	case u < 0.96:
		return 5432
	case u < 0.98:
		return 3306
	}
	return 6379
}

// step writes cn's next packet and schedules the one after.
func (g *gen) step(c *conn) {
	if c.id < 0 {
		g.begin(c)
	}
	switch c.phase {
	case phSYN, phSYNRetry:
		g.stepSYN(c)
	case phRefuse:
		c.state = [2]uint8{stClosed, stClosed}
		g.emit(c, 1, fRST|fACK, 0, c.isn[0]+1, optNone, 0)
		c.phase = phFinished
	case phSYNACK:
		g.stepSYNACK(c)
	case phACK:
		c.rcv[0] = c.nxt[1]
		c.state = [2]uint8{stEstablished, stEstablished}
		g.emitData(c, 0, fACK)
		c.rttSeen = g.pw.trunc(g.now) - g.pw.trunc(c.synTS)
		c.phase = phXfer
		c.sender = 1 // as if after a response: the client's request is next
		g.afterMessage(c)
	case phXfer:
		g.stepXfer(c)
	case phFIN1, phFIN2ACK, phFIN2FIN, phFIN3:
		g.stepClose(c)
	case phRST:
		g.stepRST(c)
	}
}

// begin numbers a connection as its first packet is written. A new SYN on
// a reused 4-tuple supersedes the old connection: its client sent it
// (CLOSED), and a peer in TIME_WAIT accepts it (CLOSED).
func (g *gen) begin(c *conn) {
	c.id = g.started
	g.started++
	if p := c.prev; p != nil {
		p.state = [2]uint8{stClosed, stClosed}
		p.endedLabel += "+reused"
		if g.truth != nil {
			g.truth.row(g, p)
		}
		c.prev = nil
	}
}

// stepSYN writes the client's SYN, or its retransmission, and schedules
// what answers it: a retransmission, a refusal, the SYN-ACK, or nothing.
func (g *gen) stepSYN(c *conn) {
	if c.phase == phSYNRetry {
		c.rt[0]++
	} else {
		c.synTS = g.now
	}
	c.state = [2]uint8{stSynSent, stClosed}
	g.emit(c, 0, fSYN, c.isn[0], 0, c.opt, synWindow(c.v6))
	c.nxt[0] = c.isn[0] + 1
	switch c.kind {
	case kHalfOpen:
		if c.retries > 0 {
			c.retries--
			c.phase = phSYNRetry
			c.next = g.now + 1e9<<(c.rt[0])
		} else {
			c.phase = phFinished
		}
	case kRefused:
		c.phase = phRefuse
		c.next = g.now + c.rtt
	default:
		c.phase = phSYNACK
		c.next = g.now + c.rtt
	}
}

// stepSYNACK writes the server's SYN-ACK.
func (g *gen) stepSYNACK(c *conn) {
	c.rcv[1] = c.nxt[0]
	opt := c.opt
	if c.noWS {
		opt = optSYNMSS
	}
	c.state = [2]uint8{stEstablished, stSynReceived}
	g.emit(c, 1, fSYN|fACK, c.isn[1], c.rcv[1], opt, synWindow(c.v6))
	c.nxt[1] = c.isn[1] + 1
	c.phase = phACK
	c.next = g.now + g.clientDelay(c)
}

// stepClose writes the next segment of the close: the closer's FIN, the
// peer's ACK of it (when split from its FIN), the peer's FIN, the last
// ACK.
func (g *gen) stepClose(c *conn) {
	s := c.closer
	switch c.phase {
	case phFIN1:
		c.state[s] = stFinWait1
		c.state[1-s] = stCloseWait
		g.emitData(c, s, fFIN|fACK)
		c.nxt[s]++
		c.rcv[1-s] = c.nxt[s]
		if c.fin2Split {
			c.phase = phFIN2ACK
		} else {
			c.phase = phFIN2FIN
		}
		c.next = g.now + g.turn(c, 1-s)
	case phFIN2ACK:
		c.state[s] = stFinWait2
		g.emitData(c, 1-s, fACK)
		c.phase = phFIN2FIN
		c.next = g.now + g.clientDelay(c) + int64(g.rng.Float64()*float64(c.rtt))
	case phFIN2FIN:
		c.state[1-s] = stLastAck
		c.state[s] = stTimeWait
		g.emitData(c, 1-s, fFIN|fACK)
		c.nxt[1-s]++
		c.rcv[s] = c.nxt[1-s]
		c.phase = phFIN3
		c.next = g.now + g.turn(c, s)
	case phFIN3:
		c.state[1-s] = stClosed
		g.emitData(c, s, fACK)
		c.phase = phFinished
		c.reused = g.cfg.Reuse > 0 && g.rng.Float64()*100 < g.cfg.Reuse
	}
}

// stepRST writes the closer's reset: with an ACK, or (a server, one time
// in two) without.
func (g *gen) stepRST(c *conn) {
	s := c.closer
	c.state = [2]uint8{stClosed, stClosed}
	if s == 1 && g.rng.IntN(2) == 0 {
		g.emit(c, s, fRST, c.nxt[s], 0, optNone, 0)
	} else {
		g.emit(c, s, fRST|fACK, c.nxt[s], c.rcv[s], optNone, 0)
	}
	c.phase = phFinished
}

// stepXfer writes the next packet of the request/response exchanges.
func (g *gen) stepXfer(c *conn) {
	snd := c.sender
	rcvr := 1 - snd
	switch {
	case c.lostLen > 0:
		// The retransmission of a segment lost after the capture point;
		// the receiver acknowledges it at once.
		c.rt[snd]++
		g.emitPayload(c, snd, fACK|fPSH, c.lostSeq, c.lostLen)
		c.rcv[rcvr] = c.lostSeq + uint32(c.lostLen)
		c.got[rcvr] += uint64(c.lostLen)
		c.lostLen = 0
		c.ackNow = true
		c.next = g.now + g.turn(c, rcvr)
	case c.ackNow:
		// The receiver's ACK: every second segment, when the window is
		// full, after a retransmission, or delayed at a message's end.
		g.emitData(c, rcvr, fACK)
		c.unacked = 0
		c.ackNow = false
		switch {
		case c.msgLeft == 0:
			g.afterMessage(c)
		case c.round > 0:
			c.next = g.now + g.burstGap(c) // the rest of the round is in flight
		default:
			c.round = c.cwnd
			c.cwnd = min(c.cwnd*2, 128)
			c.next = g.now + g.turn(c, snd)
		}
	default:
		g.sendSegment(c)
	}
}

// sendSegment writes the sender's next data segment, which may be lost
// after the capture point, and schedules what follows it.
func (g *gen) sendSegment(c *conn) {
	r := g.rng
	snd := c.sender
	rcvr := 1 - snd
	n := min(c.mss, c.msgLeft)
	if snd == 1 && c.msgLeft == c.msgLen && n > 600 && r.IntN(3) == 0 {
		n = 150 + r.IntN(350) // response headers written on their own
	}
	seq := c.nxt[snd]
	flags := uint8(fACK)
	if n == c.msgLeft {
		flags |= fPSH
	}
	g.emitPayload(c, snd, flags, seq, n)
	c.nxt[snd] += uint32(n)
	c.msgLeft -= n
	c.round--
	if n >= 2 && g.cfg.Retrans > 0 && r.Float64()*100 < g.cfg.Retrans {
		// Lost after the capture point: nothing more until the
		// retransmission timer fires.
		c.lostSeq, c.lostLen = seq, n
		c.next = g.now + max(200e6, 2*c.rtt) + int64(r.Float64()*50e6)
		return
	}
	c.rcv[rcvr] += uint32(n)
	c.got[rcvr] += uint64(n)
	c.unacked++
	switch {
	case c.unacked >= 2 || c.round <= 0 && c.msgLeft > 0:
		c.ackNow = true
		c.next = g.now + g.turn(c, rcvr)
	case c.msgLeft == 0:
		g.afterMessage(c)
	default:
		c.next = g.now + g.burstGap(c)
	}
}

// afterMessage sets up what follows a finished message: the receiver's
// delayed ACK, the next message, or the end.
func (g *gen) afterMessage(c *conn) {
	r := g.rng
	rcvr := 1 - c.sender
	next := -1 // the side that sends the next message; -1: none
	switch {
	case c.sender == 0 && c.respPending:
		next = 1
	case c.exLeft > 0:
		next = 0
	}
	actor := next
	if next < 0 && c.kind != kOpen {
		actor = c.closer
	}
	if c.unacked > 0 {
		if actor != rcvr || r.IntN(2) == 0 {
			// A delayed ACK (Linux's is 40 ms at least).
			c.ackNow = true
			c.next = g.now + 40e6 + int64(r.Float64()*4e6)
			if rcvr == 1 && c.lastSide == 0 {
				c.next += c.rtt
			}
			return
		}
		c.unacked = 0 // the receiver's next packet acknowledges it
	}
	switch next {
	case 1:
		c.sender, c.respPending = 1, false
		c.msgLen = (c.respSegs-1)*c.mss + 1 + r.IntN(c.mss)
		c.exLeft--
		c.next = g.now + int64(r.Float64()*float64(min(5e6, c.rtt)))
		if c.lastSide == 0 {
			c.next += c.rtt
		}
	case 0:
		c.sender, c.respPending = 0, true
		c.msgLen = 150 + r.IntN(750)
		if r.IntN(20) == 0 {
			c.msgLen = 2000 + r.IntN(20000) // an upload
		}
		c.next = g.now + g.clientDelay(c) + int64(r.Float64()*2*float64(c.think))
	default:
		c.next = g.now + int64(r.Float64()*2*float64(c.think))
		switch c.kind {
		case kFinClient, kFinServer:
			c.phase = phFIN1
			c.next += g.turn(c, c.closer)
		case kRSTClient, kRSTServer:
			c.phase = phRST
			c.next += g.turn(c, c.closer)
		default:
			c.phase = phFinished
		}
		return
	}
	c.msgLeft = c.msgLen
	c.round = c.cwnd
}

// turn is the time from the last packet to the next one, sent by side s,
// seen from a capture point near the client.
func (g *gen) turn(c *conn, s int) int64 {
	switch {
	case c.lastSide == s:
		return g.burstGap(c)
	case s == 1:
		return c.rtt + int64(g.rng.Float64()*float64(c.rtt)/10)
	}
	return g.clientDelay(c)
}

func (g *gen) clientDelay(c *conn) int64 {
	return min(int64(15e3+g.rng.Float64()*150e3), c.rtt/4)
}

func (g *gen) burstGap(c *conn) int64 {
	return min(int64(2e3+g.rng.Float64()*30e3), c.rtt/20)
}

func synWindow(v6 bool) uint16 {
	if v6 {
		return 64800
	}
	return 64240
}

// window is the window field side s advertises.
func (g *gen) window(c *conn, s int) uint16 {
	w := uint64(synWindow(c.v6)) + min(c.got[s], 6<<20)
	if !c.noWS {
		w >>= c.ws[s]
	}
	return uint16(min(w, 65535))
}

// emitData writes a segment without payload from side s at its next
// sequence number, acknowledging all it received.
func (g *gen) emitData(c *conn, s int, flags uint8) {
	opt := uint8(optNone)
	if c.ts {
		opt = optTS
	}
	g.write(c, s, flags, c.nxt[s], c.rcv[s], nil, 0, opt, g.window(c, s))
}

// emitPayload writes n bytes from side s at seq.
func (g *gen) emitPayload(c *conn, s int, flags uint8, seq uint32, n int) {
	pos := seq - c.isn[s] - 1
	if s == 1 {
		pos += uint32(g.pat.serverAt)
	}
	b, sum := g.pat.at(pos, n)
	opt := uint8(optNone)
	if c.ts {
		opt = optTS
	}
	g.write(c, s, flags, seq, c.rcv[s], b, sum, opt, g.window(c, s))
}

// emit writes a segment without payload.
func (g *gen) emit(c *conn, s int, flags uint8, seq, ack uint32, opt uint8, win uint16) {
	g.write(c, s, flags, seq, ack, nil, 0, opt, win)
}

// addrs fills c's client and server addresses and returns their length.
func addrs(c *conn, cli, srv *[16]byte) int {
	if c.v6 {
		*cli = [16]byte{0x20, 0x01, 0x0d, 0xb8, 0x00, 0xc0}
		binary.BigEndian.PutUint32(cli[12:], c.chost+1)
		*srv = [16]byte{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x5e}
		binary.BigEndian.PutUint32(srv[12:], c.shost+10)
		return 16
	}
	if c.kind == kFlood {
		binary.BigEndian.PutUint32(cli[:], c.chost)
	} else {
		binary.BigEndian.PutUint32(cli[:], 10<<24|(c.chost+1)&0xffffff)
	}
	if c.shost < 240 {
		binary.BigEndian.PutUint32(srv[:], 198<<24|51<<16|100<<8|(c.shost+10))
	} else {
		binary.BigEndian.PutUint32(srv[:], 203<<24|0<<16|113<<8|(c.shost-240+10)&0xff)
	}
	return 4
}

// write builds one frame from side s of c and writes it.
func (g *gen) write(c *conn, s int, flags uint8, seq, ack uint32, payload []byte, psum uint64, opt uint8, win uint16) {
	h := g.hdr[:]
	b := h[16:]
	var cip, sip [16]byte
	al := addrs(c, &cip, &sip)
	src, dst := cip[:al], sip[:al]
	// Ethernet: the client's NIC and the gateway's.
	cm := [6]byte{0x02, 0x42, byte(c.chost >> 24), byte(c.chost >> 16), byte(c.chost >> 8), byte(c.chost)}
	gm := [6]byte{0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x10}
	if s == 0 {
		copy(b[0:6], gm[:])
		copy(b[6:12], cm[:])
	} else {
		src, dst = dst, src
		copy(b[0:6], cm[:])
		copy(b[6:12], gm[:])
	}
	th := tcpLen + optLen[opt]
	tl := th + len(payload)
	n := ethLen + putIP(b, c, s, src, dst, tl)
	if flags&fACK == 0 {
		ack = 0
	}
	tsval := c.tsb[s] + uint32((g.now-c.t0)/1e6)
	t := b[n : n+th]
	putTCP(t, c, s, flags, seq, ack, win, opt, tsval)
	sum := sum16(src) + sum16(dst) + 6 + uint64(tl) + sum16(t) + psum
	binary.BigEndian.PutUint16(t[16:], fold(sum))
	n += th
	frame := n + len(payload)
	pad := max(0, minFrame-frame)
	g.pw.record(g.now, h[:16+n], payload, pad)
	g.count(c, s, frame+pad, len(payload))
	if opt != optNone && opt != optSYNMSS && opt != optSYNWin {
		c.tsr[1-s] = tsval
	}
}

// putIP writes the IP header of a segment from side s of c, carrying tl
// bytes of TCP, after the Ethernet header in b, and returns its length.
func putIP(b []byte, c *conn, s int, src, dst []byte, tl int) int {
	n := ethLen
	if c.v6 {
		b[12], b[13] = 0x86, 0xdd
		ip := b[n : n+ipv6Len]
		binary.BigEndian.PutUint32(ip[0:], 6<<28|c.flow[s])
		binary.BigEndian.PutUint16(ip[4:], uint16(tl))
		ip[6], ip[7] = 6, c.ttl[s]
		copy(ip[8:24], src)
		copy(ip[24:40], dst)
		return ipv6Len
	}
	b[12], b[13] = 0x08, 0x00
	ip := b[n : n+ipv4Len]
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(ipv4Len+tl))
	binary.BigEndian.PutUint16(ip[4:], c.ipid[s])
	c.ipid[s]++
	ip[6], ip[7] = 0x40, 0 // DF
	if c.kind == kFlood {
		ip[6] = 0
	}
	ip[8], ip[9], ip[10], ip[11] = c.ttl[s], 6, 0, 0
	copy(ip[12:16], src)
	copy(ip[16:20], dst)
	binary.BigEndian.PutUint16(ip[10:], fold(sum16(ip)))
	return ipv4Len
}

// putTCP writes the TCP header of a segment from side s of c into t, with
// its options and a zero checksum.
func putTCP(t []byte, c *conn, s int, flags uint8, seq, ack uint32, win uint16, opt uint8, tsval uint32) {
	ports := [2]uint16{c.cport, c.sport}
	binary.BigEndian.PutUint16(t[0:], ports[s])
	binary.BigEndian.PutUint16(t[2:], ports[1-s])
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12], t[13] = byte(len(t)/4)<<4, flags
	binary.BigEndian.PutUint16(t[14:], win)
	t[16], t[17], t[18], t[19] = 0, 0, 0, 0
	o := t[20:]
	switch opt {
	case optTS:
		o[0], o[1], o[2], o[3] = 1, 1, 8, 10
		binary.BigEndian.PutUint32(o[4:], tsval)
		binary.BigEndian.PutUint32(o[8:], c.tsr[s])
	case optSYNFull:
		o[0], o[1] = 2, 4
		binary.BigEndian.PutUint16(o[2:], c.mssOpt)
		o[4], o[5], o[6], o[7] = 4, 2, 8, 10
		binary.BigEndian.PutUint32(o[8:], tsval)
		binary.BigEndian.PutUint32(o[12:], c.tsr[s])
		o[16], o[17], o[18], o[19] = 1, 3, 3, c.ws[s]
	case optSYNWin:
		o[0], o[1] = 2, 4
		binary.BigEndian.PutUint16(o[2:], c.mssOpt)
		o[4], o[5], o[6], o[7] = 1, 3, 3, c.ws[s]
		o[8], o[9], o[10], o[11] = 1, 1, 4, 2
	case optSYNMSS:
		o[0], o[1] = 2, 4
		binary.BigEndian.PutUint16(o[2:], c.mssOpt)
	}
}

// count adds a frame of size bytes (payload of them) from side s to c's
// totals, for the ground truth.
func (g *gen) count(c *conn, s, size, payload int) {
	ts := g.pw.trunc(g.now)
	if c.pk[0]+c.pk[1] == 0 {
		c.firstTS = ts
	}
	c.pk[s]++
	c.by[s] += int64(size)
	c.pl[s] += int64(payload)
	c.lastTS = ts
	c.lastSide = s
	g.written++
	g.last = ts
}

// finish handles a connection that sent its last packet. One whose
// 4-tuple will be reused is written out when its successor's SYN is.
func (g *gen) finish(c *conn, holding bool) {
	c.endedLabel = kindNames[c.kind]
	// Calibrate the sizes of new connections so that their mean number of
	// packets approaches the plan (short connections cannot shrink below
	// a handshake, a request, a response and a teardown).
	g.donePkts += c.pk[0] + c.pk[1]
	if g.doneConns++; g.doneConns == 512 {
		mean := float64(g.donePkts) / float64(g.doneConns)
		g.scale = min(max(g.scale*min(max(g.avgPkts/mean, 0.8), 1.25), 0.05), 20)
		g.donePkts, g.doneConns = 0, 0
	}
	if holding || g.truth == nil {
		return
	}
	g.truth.row(g, c)
}

// flush writes the connections still open at the end, and those waiting
// for a successor that never started.
func (g *gen) flush() {
	if g.truth == nil {
		return
	}
	var rest []*conn
	for _, e := range g.heap {
		c := e.c
		if c.prev != nil {
			rest = append(rest, c.prev)
		}
		if c.id >= 0 {
			if c.phase == phFinished {
				c.endedLabel = kindNames[c.kind]
			} else {
				c.endedLabel = "cut:" + kindNames[c.kind]
			}
			rest = append(rest, c)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].id < rest[j].id })
	for _, c := range rest {
		g.truth.row(g, c)
	}
}

// perm22 is a bijection on 22-bit numbers.
func perm22(x uint32) uint32 {
	const m = 1<<22 - 1
	x = x * 0x2c1b3 & m
	x ^= x >> 11
	x = x * 0x1e35a7 & m // odd
	x ^= x >> 9
	return x
}

// mix64 is splitmix64's finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// heapEntry orders connections by their next packet's time.
type heapEntry struct {
	t, serial int64
	c         *conn
}

type connHeap []heapEntry

func (h connHeap) less(i, j int) bool {
	return h[i].t < h[j].t || h[i].t == h[j].t && h[i].serial < h[j].serial
}

func (g *gen) push(c *conn) {
	g.heap = append(g.heap, heapEntry{c.next, c.serial, c})
	h := g.heap
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (h *connHeap) pop() {
	n := len(*h) - 1
	(*h)[0] = (*h)[n]
	*h = (*h)[:n]
	h.down(0)
}

// fix0 restores the order after the top connection's time changed.
func (h connHeap) fix0() {
	h[0].t = h[0].c.next
	h.down(0)
}

func (h connHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
