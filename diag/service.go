package diag

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// Services gathers, per service (server address and port), what its
// connections' records showed: counts per problem, handshake RTTs,
// refused and reset rates, the CLOSE_WAIT count over time, and the
// TIME_WAIT sockets each client holds (port-pressure). Each connection's
// record is added once, when it is written (Judge). It is safe for
// concurrent use.
type Services struct {
	j      *Judge
	mu     sync.Mutex
	m      map[netip.AddrPort]*service
	latest time.Time // the latest capture time added
	// The service found last, and its address: judging a record looks
	// its service up twice (UsualRTT, add), and a capture's records
	// mostly come in runs of one service.
	lastAt netip.AddrPort
	lastSv *service
}

// lookup returns the service at server, or nil. s.mu is held.
func (s *Services) lookup(server netip.AddrPort) *service {
	if s.lastSv != nil && s.lastAt == server {
		return s.lastSv
	}
	sv := s.m[server]
	if sv != nil {
		s.lastAt, s.lastSv = server, sv
	}
	return sv
}

// NewServices returns an empty set of services judged by j.
func NewServices(j *Judge) *Services {
	return &Services{j: j, m: map[netip.AddrPort]*service{}}
}

// service is one service's tally.
type service struct {
	conns, attempts  int // connections; those that began with a SYN
	refused, resets  int // refused; ended by an RST (after the handshake)
	counts           [NumKinds]int
	last             [NumKinds]time.Time
	rtt              *rttHist
	closeWait        trend
	clients          twClients
	pruneAt          int  // clients kept before pruneClients looks again
	pressure         bool // a client's ports ran short
	pressureClient   netip.Addr
	pressureAt       time.Time
	pressureSockets  int
	pressureRecycled bool // ... as it reused its own TIME_WAIT port
}

// twClients is each client's TIME_WAIT sockets to a service: when each
// entered TIME_WAIT (the client's FIN was acknowledged by the server's,
// as Unix nanoseconds: a record's FIN times are exactly that), in the
// order they were counted, pruned of those that ended before a later one
// came. They end TimeWait after they entered, so an entry time stands
// for its end. A service keeps tens of thousands of clients at most
// (maxTWClients), each in a slot of the map with a slice of 8-byte
// times: most hold one or two.
type twClients map[netip.Addr][]int64

// twEndedBy returns the latest entry time of a TIME_WAIT socket that has
// ended by t, its entry plus tw at or before t, and false if t is too
// early for any (an entry time is a Unix nanosecond count: t-tw before
// the earliest such). tw is positive (Config.withDefaults).
func twEndedBy(t time.Time, tw time.Duration) (int64, bool) {
	cut := t.Add(-tw)
	switch {
	case cut.Before(time.Unix(0, math.MinInt64)):
		return 0, false
	case cut.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64, true
	}
	return cut.UnixNano(), true
}

// dropEnded removes the sockets that ended by t from ends, keeping the
// others in order.
func dropEnded(ends []int64, t time.Time, tw time.Duration) []int64 {
	cut, ok := twEndedBy(t, tw)
	if !ok {
		return ends
	}
	return slices.DeleteFunc(ends, func(e int64) bool { return e <= cut })
}

// Judge returns the problems of record r as of now (Judge.Until), judged
// against the service's handshakes added before it, and adds r. It
// finds the service once, and holds s.mu while it judges: the service's
// usual RTT is read from it directly (service.UsualRTT).
func (s *Services) Judge(r *flows.Record, now time.Time) []Problem {
	until := s.j.Until(r, now)
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.service(r.Server)
	// The evidence is built in the judging and added from there: it is
	// over 600 bytes, and a copy of it per record shows.
	c := judging{j: s.j, r: r, now: until, detail: true, usual: sv}
	r.ReadEvidence(&c.ev)
	c.run()
	sortProblems(c.out)
	s.addTo(sv, r, &c.ev, until, c.set)
	return c.out
}

// JudgeKinds is Judge for the kinds of r's problems alone (Judge.Kinds):
// what a table's column needs, without the problems' details.
func (s *Services) JudgeKinds(r *flows.Record, now time.Time) Set {
	until := s.j.Until(r, now)
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.service(r.Server)
	c := judging{j: s.j, r: r, now: until, usual: sv}
	r.ReadEvidence(&c.ev)
	c.run()
	s.addTo(sv, r, &c.ev, until, c.set)
	return c.set
}

// UsualRTT returns the median handshake RTT of the service's connections
// added so far, and their number.
func (s *Services) UsualRTT(server netip.AddrPort) (time.Duration, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.lookup(server)
	if sv == nil || sv.rtt == nil {
		return 0, 0
	}
	return sv.rtt.median(), sv.rtt.n
}

// Add counts record r, judged as of until with the problems kinds, in its
// service.
func (s *Services) Add(r *flows.Record, until time.Time, kinds Set) {
	ev := r.Evidence()
	s.add(r, &ev, until, kinds)
}

// add is Add with r's evidence.
func (s *Services) add(r *flows.Record, ev *flows.Evidence, until time.Time, kinds Set) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addTo(s.service(r.Server), r, ev, until, kinds)
}

// service returns the service at server, made if it is new. s.mu is
// held.
func (s *Services) service(server netip.AddrPort) *service {
	sv := s.lookup(server)
	if sv == nil {
		sv = &service{closeWait: newTrend(s.j.cfg.TrendStep, s.j.cfg.TrendSamples)}
		s.m[server] = sv
	}
	return sv
}

// addTo counts r in its service sv. s.mu is held.
func (s *Services) addTo(sv *service, r *flows.Record, ev *flows.Evidence, until time.Time, kinds Set) {
	if until.After(s.latest) {
		s.latest = until
	}
	sv.add(r, ev, until, kinds, &s.j.cfg)
}

// UsualRTT is Services.UsualRTT for the service's own connections (the
// server's address is sv's): what Services.Judge judges a record of sv
// against, with s.mu held.
func (sv *service) UsualRTT(netip.AddrPort) (time.Duration, int) {
	if sv.rtt == nil {
		return 0, 0
	}
	return sv.rtt.median(), sv.rtt.n
}

func (sv *service) add(r *flows.Record, ev *flows.Evidence, until time.Time, kinds Set, cfg *Config) {
	sv.conns++
	if ev.Handshake.SYNs > 0 {
		sv.attempts++
	}
	if kinds.Has(Refused) {
		sv.refused++
	} else if ev.Reset.Seen {
		sv.resets++
	}
	for k := range NumKinds {
		if kinds.Has(k) {
			sv.counts[k]++
			sv.last[k] = maxTime(sv.last[k], until)
		}
	}
	if r.RTT >= 0 {
		if sv.rtt == nil {
			sv.rtt = new(rttHist)
		}
		sv.rtt.add(r.RTT)
	}
	if start, end, ok := closeWaitSpan(r, ev, until); ok {
		sv.closeWait.addSpan(start, end)
	}
	sv.closeWait.advance(until)
	sv.timeWait(r, ev, cfg)
}

// closeWaitSpan returns when the server's end of r was in CLOSE_WAIT:
// from the client's FIN until the server sent its own, was reset, or
// (still in it) until.
func closeWaitSpan(r *flows.Record, ev *flows.Evidence, until time.Time) (start, end time.Time, ok bool) {
	if !ev.FIN.Seen || !ev.FIN.FromClient {
		return start, end, false
	}
	start, end = ev.FIN.At, until
	if ev.SentFIN[1] && ev.FINAt[1].Before(end) {
		end = ev.FINAt[1]
	}
	if ev.Reset.Seen && ev.Reset.At.Before(end) {
		end = ev.Reset.At
	}
	return start, end, end.After(start) || r.ServerState == flows.StateCloseWait
}

// timeWait counts a client's end of r that went into TIME_WAIT (it closed
// first, then got the server's FIN) among the client's TIME_WAIT sockets
// to the service, for port-pressure: a client holding PortPressure of
// them at once, or reusing its own TIME_WAIT port (Linux's tcp_tw_reuse
// does when the ports it would rather take are gone).
func (sv *service) timeWait(r *flows.Record, ev *flows.Evidence, cfg *Config) {
	recycled := ev.Reuse.Reused && ev.Reuse.SelfInTimeWait
	entered := ev.FIN.Seen && ev.FIN.FromClient && ev.SentFIN[1] && !ev.Reset.Seen
	if sv.pressure || !recycled && !entered {
		return // the service's pressure is known, or r adds nothing to a client's count
	}
	client := r.Client.Addr()
	ends, known := sv.clients[client]
	if syn := ev.Handshake.FirstSYN; known && recycled {
		// It took a port still in TIME_WAIT while holding another: not a
		// client bound to one port, but one whose ports ran out.
		ends = dropEnded(ends, syn, cfg.TimeWait)
		sv.clients[client] = ends
		if len(ends) >= 2 {
			sv.setPressure(client, syn, len(ends), true)
			return
		}
	}
	if !entered {
		return
	}
	start := ev.FINAt[1]
	if !known {
		// Only clients with a TIME_WAIT socket are kept: a SYN flood from
		// millions of spoofed addresses must not grow the map.
		if sv.clients == nil {
			sv.clients = twClients{}
		}
		sv.pruneClients(start, cfg.TimeWait)
	}
	held := ends
	ends = dropEnded(ends, start, cfg.TimeWait)
	if len(ends) <= cfg.PortPressure { // enough to know the bound was reached
		ends = append(ends, start.UnixNano())
	}
	// A client that held one socket and holds the next in its place (most
	// of them) has the same slice: it need not be stored again, a second
	// look-up of the map for every such record.
	if !known || !sameSlice(ends, held) {
		sv.clients[client] = ends
	}
	// The client held fewer than PortPressure sockets at every count
	// before this one, or the service's pressure would be known: this is
	// the most it held, and the first time it reached the bound.
	if n := len(ends); n >= cfg.PortPressure {
		sv.setPressure(client, start, n, false)
	}
}

// sameSlice reports whether a and b are the same slice: the same array,
// length and capacity.
func sameSlice(a, b []int64) bool {
	return len(a) == len(b) && cap(a) == cap(b) && (cap(a) == 0 || &a[:cap(a)][0] == &b[:cap(b)][0])
}

// setPressure records that client's ports ran short at at, holding
// sockets TIME_WAIT sockets (recycled: while reusing one of them). The
// clients' counts are no longer needed: a service's pressure is reported
// once, the first.
func (sv *service) setPressure(client netip.Addr, at time.Time, sockets int, recycled bool) {
	sv.pressure, sv.pressureClient, sv.pressureAt = true, client, at
	sv.pressureSockets, sv.pressureRecycled = sockets, recycled
	sv.clients = nil
}

// maxTWClients is how many clients a service keeps TIME_WAIT sockets of
// before it forgets those whose sockets have all ended.
const maxTWClients = 1 << 16

// pruneClients forgets, once the service keeps maxTWClients clients, the
// clients none of whose TIME_WAIT sockets is left at now (the last one
// counted has ended): what they held can no longer add to a later count.
func (sv *service) pruneClients(now time.Time, tw time.Duration) {
	if len(sv.clients) < max(maxTWClients, sv.pruneAt) {
		return
	}
	cut, ok := twEndedBy(now, tw)
	for addr, ends := range sv.clients {
		if len(ends) == 0 || ok && ends[len(ends)-1] <= cut {
			delete(sv.clients, addr)
		}
	}
	// When most clients still hold sockets, a look per new client would
	// cost the whole map each time: look again once it has doubled.
	sv.pruneAt = 2 * len(sv.clients)
}

// Summary is what a service's connections showed.
type Summary struct {
	Server   netip.AddrPort
	Conns    int // connections
	Attempts int // ... that began with a SYN
	Refused  int // refused
	Resets   int // ended by an RST, besides refused ones
	// Counts is the number of connections with each kind of problem,
	// and Last when the latest of them was judged.
	Counts [NumKinds]int
	Last   [NumKinds]time.Time
	// RTTs is the number of handshake RTTs seen; RTTMedian and RTTP99
	// their median and 99th percentile (to about 5%).
	RTTs              int
	RTTMedian, RTTP99 time.Duration
	// CloseWait is the server's sockets in CLOSE_WAIT at the last
	// sample times (TrendStep apart, oldest first, the last at or before
	// the latest time seen); Leaking says the count kept growing over
	// them.
	CloseWait []int
	Leaking   bool
	// Problems are the service's own: port-pressure.
	Problems []Problem
}

// RefusedRate returns the share of connection attempts refused.
func (s *Summary) RefusedRate() float64 { return rate(s.Refused, s.Attempts) }

// ResetRate returns the share of connections ended by an RST (other than
// a refusal).
func (s *Summary) ResetRate() float64 { return rate(s.Resets, s.Conns) }

func rate(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// Summaries returns every service's summary, by server address and port.
func (s *Services) Summaries() []Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Summary, 0, len(s.m))
	for addr, sv := range s.m {
		out = append(out, sv.summary(addr, s.latest))
	}
	slices.SortFunc(out, func(a, b Summary) int { return cmp.Compare(a.Server.String(), b.Server.String()) })
	return out
}

func (sv *service) summary(addr netip.AddrPort, latest time.Time) Summary {
	sm := Summary{Server: addr, Conns: sv.conns, Attempts: sv.attempts, Refused: sv.refused,
		Resets: sv.resets, Counts: sv.counts, Last: sv.last}
	if sv.rtt != nil {
		sm.RTTs, sm.RTTMedian, sm.RTTP99 = sv.rtt.n, sv.rtt.median(), sv.rtt.quantile(0.99)
	}
	sv.closeWait.advance(latest)
	sm.CloseWait, sm.Leaking = sv.closeWait.samples(), sv.closeWait.growing()
	if sv.pressure {
		sm.Counts[PortPressure]++
		sm.Last[PortPressure] = sv.pressureAt
		detail := fmt.Sprintf("client %v held %d TIME_WAIT sockets to this service at once: its ephemeral ports run short", sv.pressureClient, sv.pressureSockets)
		if sv.pressureRecycled {
			detail = fmt.Sprintf("client %v took one of its ports still in TIME_WAIT for a new connection to this service while it held %d TIME_WAIT sockets to it: it had no free port left (Linux's tcp_tw_reuse)", sv.pressureClient, sv.pressureSockets)
		}
		sm.Problems = []Problem{{Kind: PortPressure, Side: SideService, Since: sv.pressureAt, Detail: detail}}
	}
	return sm
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// rttHist is a histogram of RTTs in buckets growing by a tenth from a
// microsecond: quantiles within about 5%, in a kilobyte.
type rttHist struct {
	b [256]uint32
	n int
	// The median's bucket and the RTTs in the buckets before it, kept as
	// RTTs come: the median is asked for every record judged (slowRTT).
	mid, below int
}

const rttRatio = 1.1

// rttBucketMid is each bucket's middle, geometrically.
var rttBucketMid = func() (m [256]time.Duration) {
	m[0] = time.Microsecond / 2
	for i := 1; i < len(m); i++ {
		lo := math.Pow(rttRatio, float64(i-1))
		m[i] = time.Duration(lo * math.Sqrt(rttRatio) * float64(time.Microsecond))
	}
	return m
}()

func (h *rttHist) add(d time.Duration) {
	i := 0
	if us := float64(d) / float64(time.Microsecond); us > 1 {
		i = min(int(math.Log(us)/math.Log(rttRatio))+1, len(h.b)-1)
	}
	h.b[i]++
	h.n++
	if i < h.mid {
		h.below++
	}
	want := (h.n + 1) / 2 // as quantile(0.5) counts
	for h.below >= want {
		h.mid--
		h.below -= int(h.b[h.mid])
	}
	for h.below+int(h.b[h.mid]) < want {
		h.below += int(h.b[h.mid])
		h.mid++
	}
}

// median is quantile(0.5), without a walk over the buckets.
func (h *rttHist) median() time.Duration {
	if h.n == 0 {
		return 0
	}
	return rttBucketMid[h.mid]
}

// quantile returns the q-quantile (0 < q < 1): the middle of its
// bucket, geometrically.
func (h *rttHist) quantile(q float64) time.Duration {
	want := max(1, int(math.Ceil(q*float64(h.n))))
	seen := 0
	for i, c := range h.b {
		if seen += int(c); seen >= want {
			return rttBucketMid[i]
		}
	}
	return 0
}
