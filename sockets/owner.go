package sockets

import (
	"net/netip"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// Owner is what the kernel says about one local TCP socket.
type Owner struct {
	PID         int         // owning process, 0 if unknown (see Via)
	TID         int         // the thread that connected or accepted, 0 if unknown (socket table)
	Comm        string      // its command name (/proc/<pid>/comm), "" if unknown
	Proc        *Process    // more about the process (exe, command line, user, container), nil if unknown
	KernelState flows.State // the kernel's state; CLOSED once the socket is Gone
	Netns       uint64      // inode of the socket's network namespace (as lsns and ip netns identify show it)
	UID         uint32      // the socket's owner user (0 in TIME_WAIT, where the kernel keeps none)
	Inode       uint64      // the socket's inode, 0 for sockets without a file (TIME_WAIT, requests, orphans)
	Via         Via         // how PID was found
	Gone        bool        // the socket has left the kernel's table; PID and Comm are as last seen
	Seen        time.Time   // wall-clock time of the refresh this comes from (for a Gone socket, the one that found it missing), or of the event
	// Kernel says KernelState, Gone and Seen come from the kernel's socket
	// table; without it (an owner only an eBPF event named), the kernel's
	// state is not known.
	Kernel bool
}

// Listener is a listening socket of this host.
type Listener struct {
	Addr  netip.AddrPort // its local address (unspecified for a wildcard)
	Owner Owner          // its process (Via ViaListener; PID 0 if unknown) and namespace
}

// Via says how a socket's process was found.
type Via uint8

// How an Owner's PID was found.
const (
	ViaNone     Via = iota // no process is known: none holds the socket, or its descriptors could not be read
	ViaFD                  // a file descriptor of PID refers to the socket
	ViaFormer              // no process holds the socket now (it was closed: FIN_WAIT_2, TIME_WAIT, ...); PID held it before
	ViaListener            // not yet accepted; PID holds the listening socket it will be accepted from
	ViaConnect             // PID connected it (eBPF)
	ViaAccept              // PID accepted it (eBPF)
)

var viaNames = [...]string{ViaNone: "none", ViaFD: "fd", ViaFormer: "former", ViaListener: "listener", ViaConnect: "connect", ViaAccept: "accept"}

// String returns "none", "fd", "former", "listener", "connect" or
// "accept".
func (v Via) String() string {
	if int(v) < len(viaNames) {
		return viaNames[v]
	}
	return "invalid"
}

// Settle is how long after a connection's last packet the kernel must have
// been sampled for Compare to call a difference a disagreement: the kernel
// changes state when it processes a packet, which is not exactly when the
// capture stamps it.
const Settle = 100 * time.Millisecond

// Verdict is the outcome of comparing an inferred state with the kernel's.
type Verdict uint8

// Verdicts of Compare.
const (
	Unknown   Verdict = iota // the kernel has no record of the socket: it is not local, or not seen yet
	Unsettled                // packets arrived after the kernel was sampled: the two cannot be compared yet
	Agree
	Disagree
)

// Compare compares the state flowtrack inferred for a local endpoint with
// the kernel's, given the time of the connection's last packet (capture
// time, which on a live capture is wall-clock time). ok is Lookup's second
// result.
func (o Owner) Compare(inferred flows.State, lastPacket time.Time, ok bool) Verdict {
	switch {
	case !ok || !o.Kernel:
		return Unknown
	case o.Seen.Before(lastPacket.Add(Settle)):
		return Unsettled
	case o.KernelState == inferred:
		return Agree
	default:
		return Disagree
	}
}

// sockKey is a socket's local and remote endpoint, with IPv4 addresses
// IPv4-mapped as in flows.Tuple: a pointer-free comparable value, which
// hashes faster than a pair of netip.AddrPort (whose Addr holds a zone
// pointer).
type sockKey struct {
	local, remote [16]byte
	lport, rport  uint16
}

func keyOf(local, remote netip.AddrPort) sockKey {
	return sockKey{
		local: local.Addr().As16(), remote: remote.Addr().As16(),
		lport: local.Port(), rport: remote.Port(),
	}
}

// Linux's TCP states (include/net/tcp_states.h).
const (
	tcpEstablished = 1 + iota
	tcpSynSent
	tcpSynRecv
	tcpFinWait1
	tcpFinWait2
	tcpTimeWait
	tcpClose
	tcpCloseWait
	tcpLastAck
	tcpListen
	tcpClosing
	tcpNewSynRecv
)

// kernelState maps a Linux TCP state to flowtrack's name for it. LISTEN has
// no flows.State (it is not a connection's state): listen reports it. ok is
// false for states that are neither (TCP_BOUND_INACTIVE, unknown ones).
func kernelState(s uint8) (st flows.State, listen, ok bool) {
	switch s {
	case tcpEstablished:
		return flows.StateEstablished, false, true
	case tcpSynSent:
		return flows.StateSynSent, false, true
	case tcpSynRecv, tcpNewSynRecv:
		return flows.StateSynReceived, false, true
	case tcpFinWait1:
		return flows.StateFinWait1, false, true
	case tcpFinWait2:
		return flows.StateFinWait2, false, true
	case tcpTimeWait:
		return flows.StateTimeWait, false, true
	case tcpClose:
		return flows.StateClosed, false, true
	case tcpCloseWait:
		return flows.StateCloseWait, false, true
	case tcpLastAck:
		return flows.StateLastAck, false, true
	case tcpClosing:
		return flows.StateClosing, false, true
	case tcpListen:
		return 0, true, true
	}
	return 0, false, false
}
