package diag

import "time"

// Kernel is the part of a TCP host's configuration whose schedules the
// rules follow. It will be flows.Kernel (branch loss15 exports the Linux
// retransmission schedules as facts of flows); until that lands, this
// copy holds the same defaults and the SYN schedule.
type Kernel struct {
	SynRetries        int           // net.ipv4.tcp_syn_retries
	SynLinearTimeouts int           // net.ipv4.tcp_syn_linear_timeouts
	FinTimeout        time.Duration // net.ipv4.tcp_fin_timeout
	RTOMin            time.Duration // TCP_RTO_MIN
	RTOInit           time.Duration // TCP_TIMEOUT_INIT
	RTOMax            time.Duration // TCP_RTO_MAX
}

// Linux is a Linux kernel's defaults (a new network namespace's).
var Linux = Kernel{
	SynRetries: 6, SynLinearTimeouts: 4, FinTimeout: 60 * time.Second,
	RTOMin: 200 * time.Millisecond, RTOInit: time.Second, RTOMax: 120 * time.Second,
}

// SynIntervals returns a connecting socket's schedule when no SYN-ACK
// comes: the time from each SYN to the next, the last element being the
// time from the last SYN to giving up (1 s five times, then 2, 4, 8, 16,
// 32 s, and 64 s to give up: 11 SYNs, 131 s). tcp_retransmit_timer: the
// timer doubles after the first SynLinearTimeouts retransmissions, and
// the socket gives up after SynRetries+SynLinearTimeouts of them or once
// the time SynRetries doubling ones would take has passed
// (tcp_model_timeout).
func (k Kernel) SynIntervals() []time.Duration {
	limit := k.modelTimeout(k.SynRetries, k.RTOInit)
	var out []time.Duration
	var t time.Duration
	rto := k.RTOInit
	for retrans := 0; ; retrans++ {
		t += rto
		out = append(out, rto)
		if retrans >= k.SynRetries+k.SynLinearTimeouts || t >= limit {
			return out
		}
		if retrans+1 > k.SynLinearTimeouts {
			rto = min(2*rto, k.RTOMax)
		}
	}
}

// SynGiveUp returns how long after its first SYN a connecting socket
// that gets no answer gives up.
func (k Kernel) SynGiveUp() time.Duration {
	var t time.Duration
	for _, d := range k.SynIntervals() {
		t += d
	}
	return t
}

// modelTimeout is tcp_model_timeout: how long boundary retransmissions
// take when the timeout starts at base and doubles up to RTOMax.
func (k Kernel) modelTimeout(boundary int, base time.Duration) time.Duration {
	thresh := 0
	for base<<(thresh+1) <= k.RTOMax {
		thresh++
	}
	if boundary <= thresh {
		return (2<<boundary - 1) * base
	}
	return (2<<thresh-1)*base + time.Duration(boundary-thresh)*k.RTOMax
}
