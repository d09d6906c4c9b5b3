package diag

import "strings"

// Kind is a kind of problem.
type Kind uint8

// The kinds of problems, in the order docs/problems.md describes them.
const (
	Refused           Kind = iota // an RST answered the SYN
	Unanswered                    // SYNs without a SYN-ACK
	SlowConnect                   // a handshake segment resent, or an RTT far above the service's usual
	TimeoutRetransmit             // a retransmission after a silence as long as a retransmission timeout
	Loss                          // a large share of a direction's data segments resent
	ZeroWindow                    // a receiver advertised a zero window for long
	CloseWait                     // an endpoint in CLOSE_WAIT for long: its application has not closed
	FinWait2                      // an endpoint in FIN_WAIT_2 for long: its peer's application has not closed
	LastAckRetransmit             // a FIN resent in LAST_ACK
	HalfOpen                      // one end reset or vanished while the other went on
	Abort                         // an RST during the connection
	ResetAfterClose               // an RST answering data sent to an application that had closed
	ResetIgnored                  // an RST out of the window, ignored
	ResetSuspect                  // an RST with another TTL than its sender's other packets
	EarlyReuse                    // a SYN on a 4-tuple still in TIME_WAIT
	PortPressure                  // a client holding TIME_WAIT sockets to a service until its ports ran short
	NumKinds
)

var kindNames = [NumKinds]string{
	"refused", "unanswered", "slow-connect", "timeout-retransmit", "loss", "zero-window",
	"close-wait", "fin-wait-2", "last-ack-retransmit", "half-open", "abort",
	"reset-after-close", "reset-ignored", "reset-suspect", "early-reuse", "port-pressure",
}

// String returns the kind's name, as JSON and the filter write it
// ("close-wait").
func (k Kind) String() string {
	if k < NumKinds {
		return kindNames[k]
	}
	return "unknown"
}

// ParseKind returns the kind of the given name (any case).
func ParseKind(name string) (Kind, bool) {
	for i, n := range kindNames {
		if strings.EqualFold(n, name) {
			return Kind(i), true
		}
	}
	return 0, false
}

// severity ranks the kinds from the most severe: what a one-column view
// of a connection shows first. A connection that is not working at all
// (reset, refused, unanswered, half-open) comes before one that works
// badly, and that before a sign of something to look at.
var severity = [...]Kind{
	HalfOpen, Refused, Unanswered, ResetSuspect, Abort, ResetAfterClose, CloseWait,
	ZeroWindow, TimeoutRetransmit, Loss, LastAckRetransmit, FinWait2, SlowConnect,
	ResetIgnored, EarlyReuse, PortPressure,
}

// rank is each kind's place in severity.
var rank = func() (r [NumKinds]uint8) {
	for i, k := range severity {
		r[k] = uint8(i)
	}
	return r
}()

// MoreSevere reports whether a is more severe than b.
func MoreSevere(a, b Kind) bool { return rank[a] < rank[b] }

// Set is a set of kinds, one bit each: the IPFIX problem bitmap
// (docs/problems.md).
type Set uint32

// Has reports whether k is in s.
func (s Set) Has(k Kind) bool { return s&(1<<k) != 0 }

// Add returns s with k.
func (s Set) Add(k Kind) Set { return s | 1<<k }

// Worst returns the most severe kind in s, and false if s is empty.
func (s Set) Worst() (Kind, bool) {
	for _, k := range severity {
		if s.Has(k) {
			return k, true
		}
	}
	return 0, false
}

// Kinds returns the kinds in s, the most severe first.
func (s Set) Kinds() []Kind {
	var out []Kind
	for _, k := range severity {
		if s.Has(k) {
			out = append(out, k)
		}
	}
	return out
}

// String returns the kinds' names, the most severe first, joined by
// commas, or "-" for none.
func (s Set) String() string {
	if s == 0 {
		return "-"
	}
	var b strings.Builder
	for _, k := range s.Kinds() {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k.String())
	}
	return b.String()
}

// Side is the endpoint a problem is about.
type Side uint8

// Sides.
const (
	SideClient Side = iota
	SideServer
	SideService // a service's (port-pressure)
)

// String returns "client", "server" or "service".
func (s Side) String() string {
	switch s {
	case SideClient:
		return "client"
	case SideServer:
		return "server"
	}
	return "service"
}

// side returns the side of the client if client, else the server's.
func side(client bool) Side {
	if client {
		return SideClient
	}
	return SideServer
}
