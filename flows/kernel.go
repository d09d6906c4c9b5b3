package flows

import "time"

// Kernel is the Linux TCP configuration whose timers flowtrack follows:
// the settings of net.ipv4 (sysctl) and the constants of
// net/ipv4/tcp_timer.c and include/net/tcp.h. Its methods give the
// retransmission schedules those settings make, as facts about what a
// Linux host does on the wire, for the state machine here and for anyone
// judging a connection (a diagnostics package) alike.
//
// The schedules are nominal: a kernel timer fires up to an eighth of its
// interval late (the timer wheel's granularity), so a long schedule ends a
// few seconds after its nominal time (docs/states.md has measurements).
type Kernel struct {
	// SynRetries is net.ipv4.tcp_syn_retries: how many times a
	// connecting socket resends its SYN before giving up.
	SynRetries int
	// SynLinearTimeouts is net.ipv4.tcp_syn_linear_timeouts (Linux 6.5
	// and later; 0 before): how many of a SYN's first retransmissions
	// keep the initial timeout instead of doubling it. They come on top
	// of SynRetries.
	SynLinearTimeouts int
	// SynAckRetries is net.ipv4.tcp_synack_retries: how many times a
	// listener resends a SYN-ACK on its timer before it drops the
	// half-open connection.
	SynAckRetries int
	// FinTimeout is net.ipv4.tcp_fin_timeout: how long a FIN_WAIT_2
	// socket whose application has closed it (an orphan) waits for the
	// peer's FIN.
	FinTimeout time.Duration
	// RTOMin is net.ipv4.tcp_rto_min_us: the least retransmission
	// timeout of a connection (TCP_RTO_MIN).
	RTOMin time.Duration
	// RTOInit is TCP_TIMEOUT_INIT: the retransmission timeout before a
	// round-trip time is measured, that of SYNs and SYN-ACKs.
	RTOInit time.Duration
	// RTOMax is TCP_RTO_MAX (net.ipv4.tcp_rto_max_ms since Linux 6.15):
	// the largest retransmission timeout.
	RTOMax time.Duration
	// Retries2 is net.ipv4.tcp_retries2: how long (as a number of
	// retransmissions from RTOMin) a connection retransmits unacknowledged
	// data or a FIN before it gives up.
	Retries2 int
	// OrphanRetries is net.ipv4.tcp_orphan_retries, the same for a socket
	// its application has closed; 0 means 8 for one that sent recently.
	OrphanRetries int
}

// Linux is the configuration of a Linux kernel with default settings
// (those of a new network namespace).
var Linux = Kernel{
	SynRetries:        6,
	SynLinearTimeouts: 4,
	SynAckRetries:     5,
	FinTimeout:        60 * time.Second,
	RTOMin:            200 * time.Millisecond,
	RTOInit:           time.Second,
	RTOMax:            120 * time.Second,
	Retries2:          15,
	OrphanRetries:     0,
}

// SynIntervals returns a connecting socket's schedule when no SYN-ACK
// comes: the time from each SYN to the next, the last element being the
// time from the last SYN to giving up (connect() fails with ETIMEDOUT and
// the socket is gone). With the defaults: 1 s five times, then 2, 4, 8,
// 16 and 32 s, and 64 s to give up: 11 SYNs, given up 131 s after the
// first.
//
// It follows tcp_retransmit_timer and tcp_write_timeout: the timer starts
// at RTOInit; after each retransmission it doubles (up to RTOMax) once
// more than SynLinearTimeouts have been made; the socket gives up at the
// first expiry after SynRetries+SynLinearTimeouts retransmissions, or
// once the time since the first SYN reaches what SynRetries
// retransmissions backed off from RTOInit would take (tcp_model_timeout).
func (k Kernel) SynIntervals() []time.Duration {
	limit := k.modelTimeout(k.SynRetries, k.RTOInit)
	maxRetrans := k.SynRetries + k.SynLinearTimeouts
	var out []time.Duration
	var t time.Duration
	rto := k.RTOInit
	for retrans := 0; ; retrans++ {
		t += rto
		out = append(out, rto)
		if retrans >= maxRetrans || t >= limit {
			return out
		}
		if retrans+1 > k.SynLinearTimeouts {
			rto = min(2*rto, k.RTOMax)
		}
	}
}

// SynAckIntervals returns a listener's schedule for a half-open
// connection (SYN_RECV) whose SYN-ACK gets no ACK: the time from each
// SYN-ACK to the next, the last being the time from the last SYN-ACK to
// dropping the connection. With the defaults: 1, 2, 4, 8 and 16 s, and
// 32 s to drop it: 6 SYN-ACKs, dropped 63 s after the first
// (reqsk_timer_handler). A SYN sent again by the client is answered at
// once and pushes the timer back without counting as a retry.
func (k Kernel) SynAckIntervals() []time.Duration {
	out := make([]time.Duration, 0, k.SynAckRetries+1)
	for i := 0; i <= k.SynAckRetries; i++ {
		out = append(out, min(k.RTOInit<<i, k.RTOMax))
	}
	return out
}

// SynGiveUp returns how long after its first SYN a connecting socket
// that gets no answer gives up (131 s with the defaults).
func (k Kernel) SynGiveUp() time.Duration { return sum(k.SynIntervals()) }

// SynAckGiveUp returns how long after its first SYN-ACK a listener drops
// a half-open connection that gets no ACK and no SYN again (63 s with the
// defaults).
func (k Kernel) SynAckGiveUp() time.Duration { return sum(k.SynAckIntervals()) }

// RetransmitGiveUp returns how long after the first transmission of the
// oldest unacknowledged segment (data or a FIN) a connection that keeps
// retransmitting it gives up: Retries2 retransmissions backed off from
// RTOMin (924.6 s with the defaults), or for an orphan (a socket its
// application has closed, as in LAST_ACK after close()) OrphanRetries,
// 8 when 0 (102.2 s). The kernel checks it when its retransmission timer
// fires, so it gives up at the first expiry after that time.
func (k Kernel) RetransmitGiveUp(orphan bool) time.Duration {
	n := k.Retries2
	if orphan {
		n = k.OrphanRetries
		if n == 0 {
			n = 8
		}
	}
	return k.modelTimeout(n, k.RTOMin)
}

// modelTimeout is tcp_model_timeout: how long boundary retransmissions
// take when the timeout starts at base and doubles up to RTOMax.
func (k Kernel) modelTimeout(boundary int, base time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	thresh := 0
	for base<<(thresh+1) <= k.RTOMax {
		thresh++ // ilog2(RTOMax / base)
	}
	if boundary <= thresh {
		return (2<<boundary - 1) * base
	}
	return (2<<thresh-1)*base + time.Duration(boundary-thresh)*k.RTOMax
}

// remaining returns the time from the transmission numbered sent (0 the
// first) of a schedule to its end.
func remaining(intervals []time.Duration, sent int) time.Duration {
	return sum(intervals[min(max(sent, 0), len(intervals)-1):])
}

func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}
