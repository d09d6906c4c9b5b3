package ui

import (
	"net/netip"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
)

// row is the compact, display-ready copy of one connection that frames
// hold, 144 bytes against a flows.Record's 290 (no pointers, no
// transition log), so that a frame of a million rows stays small and the
// garbage collector never scans it.
type row struct {
	id      uint64
	first   int64 // capture times, Unix ns
	last    int64
	born    int64 // builder's wall clock when first seen; 0 if in the first frame
	bytes   [2]uint64
	pkts    uint64
	rate    [2]float32 // bytes per second of capture time, client→server and back
	rtt     int32      // handshake RTT in µs, or -1
	retrans [2]uint32
	pid     int32  // the local process (Config.Local), 0 if unknown
	proc    uint32 // its command name, an index in the frame's procs; 0 for none
	name    uint32 // the name the client asked for, an index in the frame's procs; 0 for none
	nsrc    uint8  // where the name was read: an index in nameMarks
	ctr     uint32 // its container, an index in the frame's procs; 0 for none
	key     flows.Key
	cst     flows.State
	sst     flows.State
	zeek    uint8 // index in zeekStates
	flags   rowFlags
	probs   diag.Set      // what is wrong with it (problems.go)
	wid     [numWid]uint8 // display widths of the variable-width values
}

// Indices in row.wid.
const (
	widClient = iota
	widServer
	widPkts
	widBytesUp
	widBytesDn
	widRateUp
	widRateDn
	widRetransU
	widRetransD
	widProc
	widName
	widProb // 0: no problem
	numWid
)

type rowFlags uint8

const (
	rowClient1     rowFlags = 1 << iota // the client is endpoint 1 of the key
	rowMidstream                        // picked up mid-stream
	rowRetired                          // left the table; shown for the linger
	rowGone                             // not shown: left the table, or its linger ended (incremental.go)
	rowClientDoubt                      // the packets cannot tell the client's state for sure
	rowServerDoubt                      // nor the server's
	rowWatch                            // its problems may begin with time alone (problems.go)
)

// zeekStates are Zeek's conn_state codes in sort order; index 0 is unknown.
var zeekStates = [...]string{"", "OTH", "REJ", "RSTO", "RSTOS0", "RSTR", "RSTRH", "S0", "S1", "S2", "S3", "SF", "SH", "SHR"}

func zeekIndex(s string) uint8 {
	for i := 1; i < len(zeekStates); i++ {
		if zeekStates[i] == s {
			return uint8(i)
		}
	}
	return 0
}

// setRecord makes r the row of rec, with no rate and not new.
func (r *row) setRecord(rec *flows.Record, retired bool) {
	*r = row{
		id:      rec.ID,
		first:   rec.FirstSeen.UnixNano(),
		last:    rec.LastSeen.UnixNano(),
		bytes:   [2]uint64{rec.C2S.Bytes, rec.S2C.Bytes},
		pkts:    rec.C2S.Packets + rec.S2C.Packets,
		rtt:     -1,
		retrans: [2]uint32{sat32(rec.C2S.Retransmits), sat32(rec.S2C.Retransmits)},
		key:     rec.Key,
		cst:     rec.ClientState,
		sst:     rec.ServerState,
		zeek:    zeekIndex(rec.ConnState()),
	}
	if rec.RTT >= 0 {
		r.rtt = int32(min(rec.RTT/time.Microsecond, 1<<31-1))
	}
	if rec.Client.Port() != rec.Key.Port[0] || rec.Client.Addr().As16() != rec.Key.Addr[0] {
		r.flags |= rowClient1
	}
	if rec.Midstream {
		r.flags |= rowMidstream
	}
	if retired {
		r.flags |= rowRetired
	}
	if rec.ClientDoubt != flows.DoubtNone {
		r.flags |= rowClientDoubt
	}
	if rec.ServerDoubt != flows.DoubtNone {
		r.flags |= rowServerDoubt
	}
	ci, si := r.ci(), r.si()
	r.wid = [numWid]uint8{
		widClient:   uint8(apWidth(&r.key.Addr[ci], r.key.Port[ci], r.key.V6)),
		widServer:   uint8(apWidth(&r.key.Addr[si], r.key.Port[si], r.key.V6)),
		widPkts:     countWidth(r.pkts),
		widBytesUp:  countWidth(r.bytes[0]),
		widBytesDn:  countWidth(r.bytes[1]),
		widRetransU: countWidth(uint64(r.retrans[0])),
		widRetransD: countWidth(uint64(r.retrans[1])),
		widRateUp:   1,
		widRateDn:   1,
		widProc:     1,
		widName:     1,
	}
}

// setRateWidths updates the widths of the rates once they are known.
func (r *row) setRateWidths() {
	r.wid[widRateUp] = countWidth(uint64(r.rate[0] + 0.5))
	r.wid[widRateDn] = countWidth(uint64(r.rate[1] + 0.5))
}

func sat32(n uint64) uint32 { return uint32(min(n, 1<<32-1)) }

// ci returns the index of the client in the key; si that of the server.
func (r *row) ci() int { return int(r.flags & rowClient1) }
func (r *row) si() int { return 1 - r.ci() }

func (r *row) client() netip.AddrPort { return r.key.Endpoint(r.ci()) }
func (r *row) server() netip.AddrPort { return r.key.Endpoint(r.si()) }

// closed reports whether both endpoints are CLOSED.
func (r *row) closed() bool { return r.cst == flows.StateClosed && r.sst == flows.StateClosed }

// ended reports whether the row is shown dimmed: closed, or gone from the
// table.
func (r *row) ended() bool { return r.closed() || r.flags&rowRetired != 0 }

// endpoint is a server endpoint: one service, as address, port and VLAN.
type endpoint struct {
	addr [16]byte
	port uint16
	v6   bool
	vlan flows.VLAN
}

func (r *row) serverEndpoint() endpoint {
	i := r.si()
	return endpoint{r.key.Addr[i], r.key.Port[i], r.key.V6, r.key.VLAN}
}

func (e endpoint) addrPort() netip.AddrPort {
	a := netip.AddrFrom16(e.addr)
	if !e.v6 {
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, e.port)
}

// String returns "addr:port", with " vlan N" for tagged traffic.
func (e endpoint) String() string {
	s := e.addrPort().String()
	if e.vlan.N > 0 {
		s += " vlan " + e.vlan.String()
	}
	return s
}

// apWidth returns the length of ap.String() without formatting it for
// IPv4, which is most addresses.
func apWidth(addr *[16]byte, port uint16, v6 bool) int {
	if v6 {
		a := netip.AddrFrom16(*addr)
		return len(netip.AddrPortFrom(a, port).String())
	}
	n := 3 + 1 + digits(uint32(port))
	for _, b := range addr[12:16] {
		n += digits(uint32(b))
	}
	return n
}

func digits(v uint32) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}
