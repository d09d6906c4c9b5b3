package export

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// This file holds what an IPFIX record says about a connection: the
// templates' information elements, how a flows.Record fills them, and why a
// record ended.

// PENReverse is the private enterprise number of RFC 5103's reverse
// information elements: an IANA element's id under this number describes
// the reverse direction (server to client) of a biflow.
const PENReverse = 29305

// PENDocumentation is the private enterprise number that RFC 5612 reserves
// for documentation and examples. flowtrack has no PEN of its own, so its
// enterprise-specific elements use this one unless IPFIXConfig.PEN names
// another (an organisation's own, which IANA assigns for free).
const PENDocumentation = 32473

// flowtrack's enterprise-specific information elements, under
// IPFIXConfig.PEN. docs/ipfix.md documents them for collectors.
const (
	ieClientTCPState = 1 // unsigned8: the client's inferred state, in TCP-MIB tcpConnState numbering
	ieServerTCPState = 2 // unsigned8: the server's, likewise
	ieHandshakeRTT   = 3 // unsigned32: handshake round-trip time in microseconds; 2^32-1 if not seen
	ieRetransmits    = 4 // unsigned64: retransmitted segments, client to server (a delta, like the counts)
	ieFlowtrackFlags = 5 // unsigned8: 1 the connection was picked up mid-stream, 2 gaps in sequence space
	ieServerName     = 6 // string, variable length (at most maxIPFIXName): the name the client asked for
	ieNameSource     = 7 // unsigned8: where ieServerName was read: 0 none, 1 TLS SNI, 2 HTTP Host, 3 DNS
	ieProblems       = 8 // unsigned32: the connection's problems, bit k set for diag.Kind k (docs/problems.md)

	ieReverseBit = 0x4000 // RFC 5103 section 6.1: this bit marks the reverse of an enterprise element
)

// IANA information elements (https://www.iana.org/assignments/ipfix).
const (
	ieOctetDeltaCount          = 1
	iePacketDeltaCount         = 2
	ieProtocolIdentifier       = 4
	ieTCPControlBits           = 6
	ieSourceTransportPort      = 7
	ieSourceIPv4Address        = 8
	ieDestinationTransportPort = 11
	ieDestinationIPv4Address   = 12
	ieSourceIPv6Address        = 27
	ieDestinationIPv6Address   = 28
	ieVlanID                   = 58
	ieFlowEndReason            = 136
	ieFlowStartMilliseconds    = 152
	ieFlowEndMilliseconds      = 153
	ieBiflowDirection          = 239
	ieDot1qCustomerVlanID      = 245
)

// Template IDs (data set IDs) of the two templates.
const (
	templateIPv4 = 256
	templateIPv6 = 257
)

// field is one field specifier of a template.
type field struct {
	id     uint16
	length uint16
	pen    uint32 // 0 for an IANA element
}

// fields returns the template of IPv4 or IPv6 biflow records, in the order
// appendRecord writes them, with flowtrack's elements under pen.
func fields(v6 bool, pen uint32) []field {
	src, dst, alen := uint16(ieSourceIPv4Address), uint16(ieDestinationIPv4Address), uint16(4)
	if v6 {
		src, dst, alen = ieSourceIPv6Address, ieDestinationIPv6Address, 16
	}
	return []field{
		{id: src, length: alen},
		{id: dst, length: alen},
		{id: ieSourceTransportPort, length: 2},
		{id: ieDestinationTransportPort, length: 2},
		{id: ieProtocolIdentifier, length: 1},
		{id: ieBiflowDirection, length: 1},
		{id: ieFlowStartMilliseconds, length: 8},
		{id: ieFlowEndMilliseconds, length: 8},
		{id: ieOctetDeltaCount, length: 8},
		{id: iePacketDeltaCount, length: 8},
		{id: ieOctetDeltaCount, length: 8, pen: PENReverse},
		{id: iePacketDeltaCount, length: 8, pen: PENReverse},
		// The reverse flags come first: nfdump 1.7 reads a reverse element it
		// does not know as the forward one, and the field read last wins.
		{id: ieTCPControlBits, length: 2, pen: PENReverse},
		{id: ieTCPControlBits, length: 2},
		{id: ieFlowEndReason, length: 1},
		{id: ieVlanID, length: 2},
		{id: ieDot1qCustomerVlanID, length: 2},
		{id: ieClientTCPState, length: 1, pen: pen},
		{id: ieServerTCPState, length: 1, pen: pen},
		{id: ieHandshakeRTT, length: 4, pen: pen},
		{id: ieRetransmits, length: 8, pen: pen},
		{id: ieRetransmits | ieReverseBit, length: 8, pen: pen},
		{id: ieFlowtrackFlags, length: 1, pen: pen},
		{id: ieNameSource, length: 1, pen: pen},
		{id: ieProblems, length: 4, pen: pen},
		{id: ieServerName, length: varLength, pen: pen},
	}
}

// varLength is the field length of a variable-length element (RFC 7011
// section 7): each record gives its own, in one byte below 255.
const varLength = 0xffff

// maxIPFIXName bounds the name sent, so that its length fits one byte: a
// DNS name is at most 253 characters anyway.
const maxIPFIXName = 253

// recordLen is the size of one data record of the template with a name of
// nameLen bytes.
func recordLen(fs []field, nameLen int) int {
	n := 0
	for _, f := range fs {
		if f.length == varLength {
			n += 1 + nameLen
			continue
		}
		n += int(f.length)
	}
	return n
}

// nameSources number Info.NameSource for ieNameSource.
func nameSource(s string) uint8 {
	switch s {
	case "sni":
		return 1
	case "host":
		return 2
	case "dns":
		return 3
	}
	return 0
}

// appendTemplate appends one template record (not its set header).
func appendTemplate(b []byte, id uint16, fs []field) []byte {
	b = binary.BigEndian.AppendUint16(b, id)
	b = binary.BigEndian.AppendUint16(b, uint16(len(fs)))
	for _, f := range fs {
		if f.pen == 0 {
			b = binary.BigEndian.AppendUint16(b, f.id)
			b = binary.BigEndian.AppendUint16(b, f.length)
			continue
		}
		b = binary.BigEndian.AppendUint16(b, f.id|0x8000) // the enterprise bit
		b = binary.BigEndian.AppendUint16(b, f.length)
		b = binary.BigEndian.AppendUint32(b, f.pen)
	}
	return b
}

// EndReason is IPFIX's flowEndReason (RFC 7011's information model, RFC
// 7012 and IANA): why a flow record was exported.
type EndReason uint8

// The flowEndReason values.
const (
	EndIdle           EndReason = 1 // idle timeout: no packet for the table's idle timeout, or closed by a timer without FIN or RST
	EndActive         EndReason = 2 // active timeout: a periodic record of a connection still open
	EndOfFlow         EndReason = 3 // end of flow detected: FIN or RST seen, or replaced by a new connection on its 4-tuple
	EndForced         EndReason = 4 // forced end: still open when the capture stopped
	EndLackOfResource EndReason = 5 // lack of resources: evicted from a full table (flows.Config.MaxConns)
)

// String returns the reason as a metric label value ("idle_timeout", ...).
func (r EndReason) String() string {
	switch r {
	case EndIdle:
		return "idle_timeout"
	case EndActive:
		return "active_timeout"
	case EndOfFlow:
		return "end_of_flow"
	case EndForced:
		return "forced_end"
	case EndLackOfResource:
		return "lack_of_resources"
	}
	return "unknown"
}

// Reason returns the flowEndReason of the last record of a connection that
// left the table (a record from OnRetire or Flush), from why it left
// (r.End): closed by FIN or RST, or replaced by a new connection on its
// 4-tuple, is the end of the flow; closed by a timer (an unanswered
// handshake given up) or idle is an idle timeout; evicted is a lack of
// resources; still open when the capture stopped is a forced end, unless
// FIN or RST had ended it already (an endpoint may wait in TIME_WAIT).
func Reason(r *flows.Record) EndReason {
	switch r.End {
	case flows.EndReplaced:
		return EndOfFlow
	case flows.EndIdle:
		return EndIdle
	case flows.EndEvicted:
		return EndLackOfResource
	case flows.EndClosed:
		if finished(r) {
			return EndOfFlow
		}
		return EndIdle
	}
	if finished(r) { // flushed
		return EndOfFlow
	}
	return EndForced
}

// finished reports whether FIN or RST ended r's connection: both endpoints
// are CLOSED or in TIME_WAIT, and one of them sent a FIN or an RST.
func finished(r *flows.Record) bool {
	c2s, s2c, _ := TCPFlags(r)
	return done(r.ClientState) && done(r.ServerState) && (c2s|s2c)&(flows.FIN|flows.RST) != 0
}

// done reports whether an endpoint in state s has finished with its
// connection: it sends nothing more but a last ACK or an RST.
func done(s flows.State) bool { return s == flows.StateClosed || s == flows.StateTimeWait }

// TCPFlags returns the union of the TCP flags each endpoint sent: what
// tcpControlBits and its reverse carry. flows keeps no union of flags, so
// they are derived from the Zeek history (its letters are first
// occurrences): S is SYN, H SYN-ACK, A ACK, D payload (which carries ACK
// once a connection is up), F FIN, R RST, I FIN and RST, Q SYN with FIN or
// RST (counted as SYN). PSH and URG are never reported. Upper case is
// Zeek's originator; it is the client when the client sent the SYN, and
// the SYN-ACK says who is who when the connection began with one. For a
// connection picked up mid-stream without a handshake the history cannot
// say which side is the client: both directions then get the union of both
// sides' flags, and sided is false.
func TCPFlags(r *flows.Record) (c2s, s2c flows.Flags, sided bool) {
	var buf [32]byte
	h := r.AppendHistory(buf[:0])
	var orig, resp flows.Flags
	for i := 0; i < len(h); i++ {
		f := historyFlags(h[i])
		if h[i] >= 'a' && h[i] <= 'z' {
			resp |= f
		} else {
			orig |= f
		}
	}
	switch r.Role {
	case flows.RoleBySYN:
		return orig, resp, true
	case flows.RoleBySYNACK:
		if bytes.IndexByte(h, 'h') >= 0 { // the responder sent the SYN-ACK: it is the server
			return orig, resp, true
		}
		return resp, orig, true
	}
	return orig | resp, orig | resp, false
}

// historyFlags returns the flags a Zeek history letter stands for.
func historyFlags(c byte) flows.Flags {
	switch c | 0x20 { // lower case
	case 's', 'q':
		return flows.SYN
	case 'h':
		return flows.SYN | flows.ACK
	case 'a', 'd':
		return flows.ACK
	case 'f':
		return flows.FIN
	case 'r':
		return flows.RST
	case 'i':
		return flows.FIN | flows.RST
	}
	return 0
}

// tcpConnState numbers a state as TCP-MIB's tcpConnState (RFC 4022) does.
func tcpConnState(s flows.State) uint8 {
	switch s {
	case flows.StateSynSent:
		return 3
	case flows.StateSynReceived:
		return 4
	case flows.StateEstablished:
		return 5
	case flows.StateFinWait1:
		return 6
	case flows.StateFinWait2:
		return 7
	case flows.StateCloseWait:
		return 8
	case flows.StateLastAck:
		return 9
	case flows.StateClosing:
		return 10
	case flows.StateTimeWait:
		return 11
	}
	return 1 // closed
}

// reported is what earlier records of a connection already exported: its
// counters then, and the capture time of that report.
type reported struct {
	c2s, s2c flows.EndpointStats
	at       time.Time
}

// appendRecord appends r's data record for the template fields(v6, ...):
// the traffic since prev (zero for a first report), from start to r's last
// packet.
func appendRecord(b []byte, r *flows.Record, prev *reported, start time.Time, reason EndReason, name *local.Info, problems diag.Set) []byte {
	be := binary.BigEndian
	ca, sa := r.Client.Addr(), r.Server.Addr()
	if r.Key.V6 {
		a, s := ca.As16(), sa.As16()
		b = append(b, a[:]...)
		b = append(b, s[:]...)
	} else {
		a, s := ca.Unmap().As4(), sa.Unmap().As4()
		b = append(b, a[:]...)
		b = append(b, s[:]...)
	}
	b = be.AppendUint16(b, r.Client.Port())
	b = be.AppendUint16(b, r.Server.Port())
	b = append(b, 6) // TCP
	dir := uint8(0)  // arbitrary: the client was told by its port
	if r.Role == flows.RoleBySYN || r.Role == flows.RoleBySYNACK {
		dir = 1 // initiator: the source sent the SYN
	}
	b = append(b, dir)
	b = be.AppendUint64(b, uint64(start.UnixMilli()))
	b = be.AppendUint64(b, uint64(r.LastSeen.UnixMilli()))
	// octetDeltaCount counts the IP packets, IP header included (RFC
	// 7012), not the link layer's frames that the JSON output counts.
	b = be.AppendUint64(b, r.C2S.IPBytes-prev.c2s.IPBytes)
	b = be.AppendUint64(b, r.C2S.Packets-prev.c2s.Packets)
	b = be.AppendUint64(b, r.S2C.IPBytes-prev.s2c.IPBytes)
	b = be.AppendUint64(b, r.S2C.Packets-prev.s2c.Packets)
	c2s, s2c, _ := TCPFlags(r)
	b = be.AppendUint16(b, uint16(s2c))
	b = be.AppendUint16(b, uint16(c2s))
	b = append(b, uint8(reason))
	var vlan, cvlan uint16
	switch r.Key.VLAN.N {
	case 1:
		vlan = r.Key.VLAN.Outer
	case 2:
		vlan, cvlan = r.Key.VLAN.Outer, r.Key.VLAN.Inner
	}
	b = be.AppendUint16(b, vlan)
	b = be.AppendUint16(b, cvlan)
	b = append(b, tcpConnState(r.ClientState), tcpConnState(r.ServerState))
	rtt := uint32(1<<32 - 1)
	if r.RTT >= 0 {
		rtt = uint32(min(r.RTT/time.Microsecond, 1<<32-2))
	}
	b = be.AppendUint32(b, rtt)
	b = be.AppendUint64(b, r.C2S.Retransmits-prev.c2s.Retransmits)
	b = be.AppendUint64(b, r.S2C.Retransmits-prev.s2c.Retransmits)
	var ff uint8
	if r.Midstream {
		ff |= 1
	}
	if r.C2S.Gaps+r.S2C.Gaps > 0 {
		ff |= 2
	}
	b = append(b, ff, nameSource(name.NameSource))
	b = be.AppendUint32(b, uint32(problems))
	n := name.ServerName[:min(len(name.ServerName), maxIPFIXName)]
	b = append(b, uint8(len(n)))
	return append(b, n...)
}
