package ui

import (
	"math"
	"math/bits"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// colID names a column of the connection table.
type colID uint8

const (
	colClient colID = iota
	colServer
	colName
	colCState
	colSState
	colProcess
	colProblem
	colAge
	colIdle
	colPkts
	colBytes
	colRate
	colRTT
	colRetrans
	colZeek
	numCols
)

// column describes one column of the connection table.
type column struct {
	name  string
	short string // header when state names are abbreviated
	width int    // fixed width; 0 for the address columns (from the data)
	right bool   // right-aligned
	keep  int    // priority for narrow screens: 0 always shown, then 1, 2...
	desc  bool   // sorts descending (largest first) by default
	help  string
}

var columns = [numCols]column{
	colClient:  {name: "Client", help: "the endpoint that opened the connection (sent the SYN)"},
	colServer:  {name: "Server", help: "the endpoint that accepted it: the service's address:port"},
	colName:    {name: "Name", keep: 1, help: "the name the client asked for, marked by where it was read: S TLS server name (SNI), H HTTP Host, D a DNS answer before the connection, R reverse DNS"},
	colCState:  {name: "Client state", short: "Client st", width: 12, help: "the client's RFC 793 state, as its kernel would show it; ? when the packets cannot tell it for sure"},
	colSState:  {name: "Server state", short: "Server st", width: 12, help: "the server's RFC 793 state; ? when the packets cannot tell it for sure"},
	colProblem: {name: "Problem", keep: 1, desc: true, help: "its most severe problem (the details list them all)"},
	colProcess: {name: "Process", keep: 1, help: "PID/command of the client's local socket, else the server's"},
	colAge:     {name: "Age", width: 6, right: true, keep: 4, desc: true, help: "capture time since the first packet"},
	colIdle:    {name: "Idle", width: 6, right: true, keep: 5, help: "capture time since the last packet"},
	colPkts:    {name: "Pkts", right: true, keep: 6, desc: true, help: "packets, both directions"},
	colBytes:   {name: "Bytes ↑/↓", right: true, keep: 2, desc: true, help: "frame bytes client→server / server→client"},
	colRate:    {name: "Rate ↑/↓", right: true, keep: 3, desc: true, help: "bytes per second each way, over capture time"},
	colRTT:     {name: "RTT", width: 6, right: true, keep: 7, desc: true, help: "handshake round-trip time at the capture point"},
	colRetrans: {name: "Retrans", right: true, keep: 8, desc: true, help: "retransmitted segments client→server / server→client"},
	colZeek:    {name: "conn_state", width: 10, keep: 9, help: "Zeek's conn_state"},
}

// shortStates are the state names used when the screen is narrow.
var shortStates = [...]string{
	flows.StateClosed:      "CLOSED",
	flows.StateSynSent:     "SYN_SENT",
	flows.StateSynReceived: "SYN_RECV",
	flows.StateEstablished: "ESTAB",
	flows.StateFinWait1:    "FIN_WAIT_1",
	flows.StateFinWait2:    "FIN_WAIT_2",
	flows.StateCloseWait:   "CLOSE_WAIT",
	flows.StateClosing:     "CLOSING",
	flows.StateLastAck:     "LAST_ACK",
	flows.StateTimeWait:    "TIME_WAIT",
}

func stateName(s flows.State, short bool) string {
	if short && int(s) < len(shortStates) {
		return shortStates[s]
	}
	return s.String()
}

// stateText is a state column's text: the state's name, and '?' when the
// packets cannot tell it for sure (the detail view says why). A name
// that would not fit with the mark is abbreviated.
func stateText(s flows.State, short, doubt bool) string {
	name := stateName(s, short)
	if !doubt {
		return name
	}
	if len(name)+1 > columns[colCState].width {
		name = stateName(s, true)
	}
	return name + "?"
}

// widths are the widest values of the variable-width columns over the rows
// of a frame, computed by the builder so that columns keep their width
// while the user scrolls.
type widths [numWid]uint8

func (w *widths) add(r *row) {
	for i, v := range r.wid {
		w[i] = max(w[i], v)
	}
}

// countWidth is len(fmtCount(n)) without formatting.
func countWidth(n uint64) uint8 {
	switch {
	case n < 10:
		return 1
	case n < 100:
		return 2
	case n < 1000:
		return 3
	case n < 1024:
		return 4
	}
	u := (bits.Len64(n) - 1) / 10 // n is at least 1024^u
	v := float64(n) / float64(uint64(1)<<(10*u))
	switch {
	case v < 9.95:
		return 4 // 9.9K
	case v < 99.5:
		return 3 // 99K
	case v < 999.5:
		return 4 // 999K
	}
	return 5 // 1023K
}

// dataWidth is the width the values of column c need in frame f.
func (w *widths) data(c colID) int {
	switch c {
	case colClient:
		return int(w[widClient])
	case colServer:
		return int(w[widServer])
	case colPkts:
		return int(w[widPkts])
	case colBytes:
		return int(w[widBytesUp]) + 1 + int(w[widBytesDn])
	case colRate:
		return int(w[widRateUp]) + 1 + int(w[widRateDn])
	case colRetrans:
		return int(w[widRetransU]) + 1 + int(w[widRetransD])
	case colProcess:
		return int(w[widProc])
	case colName:
		return max(int(w[widName]), 16) // room for a reverse DNS name, known only when drawn
	case colProblem:
		return int(w[widProb])
	}
	return columns[c].width
}

// sortKey returns row r's key for sorting by column c, ascending; exact is
// false when rows with equal keys must be compared further (IPv6
// addresses, process names), and missing when the row has no value
// (unknown RTT, no process), which sorts last either way.
func (r *row) sortKey(c colID, now int64, procs *procNames) (k uint64, exact, missing bool) {
	switch c {
	case colProcess:
		k, missing := r.procKey(procs)
		return k, false, missing
	case colName:
		if r.name == 0 {
			return 0, true, true
		}
		var b [8]byte
		copy(b[:], procs.lower[r.name])
		return be64(b[:]), false, false
	case colClient, colServer:
		i := r.ci()
		if c == colServer {
			i = r.si()
		}
		a := &r.key.Addr[i]
		if !r.key.V6 {
			return uint64(be32(a[12:]))<<16 | uint64(r.key.Port[i]), true, false
		}
		return 1<<63 | be64(a[:8])>>1, false, false
	case colCState:
		return uint64(r.cst)<<8 | uint64(r.sst), true, false
	case colSState:
		return uint64(r.sst)<<8 | uint64(r.cst), true, false
	case colAge:
		return ^(uint64(r.first) ^ 1<<63), true, false // older is larger
	case colIdle:
		return ^(uint64(r.last) ^ 1<<63), true, false
	case colPkts:
		return r.pkts, true, false
	case colBytes:
		return r.bytes[0] + r.bytes[1], true, false
	case colRate:
		return uint64(math.Float32bits(r.rate[0] + r.rate[1])), true, false
	case colRTT:
		return uint64(r.rtt), true, r.rtt < 0
	case colRetrans:
		return uint64(r.retrans[0]) + uint64(r.retrans[1]), true, false
	case colZeek:
		return uint64(r.zeek), true, r.zeek == 0
	case colProblem:
		return problemKey(r.probs), true, r.probs == 0
	}
	return 0, true, false
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
func be64(b []byte) uint64 { return uint64(be32(b[:4]))<<32 | uint64(be32(b[4:8])) }

// text returns the text of column c for row r in frame f.
func (r *row) text(c colID, f *frame, short bool) string {
	now := f.now
	switch c {
	case colProcess:
		return r.procText(&f.procs)
	case colName:
		if r.name == 0 {
			return "-"
		}
		return nameMarks[r.nsrc] + " " + f.procs.names[r.name]
	case colClient:
		return r.client().String()
	case colServer:
		return r.server().String()
	case colCState:
		return stateText(r.cst, short, r.flags&rowClientDoubt != 0)
	case colSState:
		return stateText(r.sst, short, r.flags&rowServerDoubt != 0)
	case colAge:
		return fmtAge(time.Duration(now - r.first))
	case colIdle:
		return fmtAge(time.Duration(now - r.last))
	case colPkts:
		return fmtCount(r.pkts)
	case colBytes:
		return fmtPair(fmtCount(r.bytes[0]), fmtCount(r.bytes[1]))
	case colRate:
		return fmtPair(fmtRate(float64(r.rate[0])), fmtRate(float64(r.rate[1])))
	case colRTT:
		if r.rtt < 0 {
			return "-"
		}
		return fmtRTT(time.Duration(r.rtt) * time.Microsecond)
	case colRetrans:
		return fmtPair(fmtCount(uint64(r.retrans[0])), fmtCount(uint64(r.retrans[1])))
	case colZeek:
		if r.zeek == 0 {
			return "-"
		}
		return zeekStates[r.zeek]
	case colProblem:
		return problemText(r.probs)
	}
	return ""
}

// nameMarks mark a name by where it was read: the TLS server name, the
// HTTP Host, a DNS answer, reverse DNS.
var nameMarks = [...]string{"?", "S", "H", "D", "R"}

// nameMark returns the index in nameMarks of a Local.NameSource.
func nameMark(source string) uint8 {
	switch source {
	case "sni":
		return 1
	case "host":
		return 2
	case "dns":
		return 3
	case "rdns":
		return 4
	}
	return 0
}

// nameSources say where a name was read, for the detail view.
var nameSources = [...]string{"", "TLS server name", "HTTP Host", "DNS answer", "reverse DNS"}
