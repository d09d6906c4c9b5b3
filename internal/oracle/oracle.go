// Package oracle reads the independent truths that flowtrack is checked
// against (pcaps/README.md): tshark's per-stream counts of each bundled
// capture (pcaps/oracle), Zeek's conn.log baselines (pcaps/baselines), and
// the kernel's own states of the connections in pcaps/kernel, as `ss`
// listed them. Tests and the tools that check flowtrack read them through
// here, never through flowtrack's own code.
package oracle

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Pair is a 4-tuple without its direction: A is the lower endpoint (by
// address, then port). Direction 0 is from A to B.
type Pair struct{ A, B netip.AddrPort }

// PairOf returns the pair of src and dst, and the direction from src to
// dst.
func PairOf(src, dst netip.AddrPort) (Pair, int) {
	if src.Compare(dst) <= 0 {
		return Pair{src, dst}, 0
	}
	return Pair{dst, src}, 1
}

func (p Pair) String() string { return p.A.String() + " <-> " + p.B.String() }

// Compare orders pairs by A, then B.
func (p Pair) Compare(q Pair) int {
	if c := p.A.Compare(q.A); c != 0 {
		return c
	}
	return p.B.Compare(q.B)
}

// Dir is what one direction of a pair carried. IPBytes are the octets of
// the IP packets that carried the segments, IP header included (what
// IPFIX's octetDeltaCount counts); only WithIPBytes fills them in.
type Dir struct{ Packets, FrameBytes, IPBytes, Payload uint64 }

// Counts are the totals of each pair, by direction.
type Counts map[Pair]*[2]Dir

// Add counts one packet from src to dst.
func (c Counts) Add(src, dst netip.AddrPort, frameBytes, ipBytes, payload uint64) {
	p, dir := PairOf(src, dst)
	d := c.dirs(p)
	d[dir].Packets++
	d[dir].FrameBytes += frameBytes
	d[dir].IPBytes += ipBytes
	d[dir].Payload += payload
}

func (c Counts) dirs(p Pair) *[2]Dir {
	d := c[p]
	if d == nil {
		d = new([2]Dir)
		c[p] = d
	}
	return d
}

// Streams reads tshark's per-stream counts (a .streams.tsv: stream, the
// two endpoints' address and port, then packets, frame bytes and payload
// bytes each way) and sums them per pair, since tshark splits
// conversations differently (pcaps/README.md).
func Streams(path string) (Counts, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := Counts{}
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for line := 2; sc.Scan(); line++ {
		if err := out.addStream(sc.Text()); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
	return out, sc.Err()
}

// addStream adds one line of a .streams.tsv.
func (c Counts) addStream(line string) error {
	p, dir, n, err := parseStream(line, 11)
	if err != nil {
		return err
	}
	d := c.dirs(p)
	d[dir].Packets += n[0]
	d[1-dir].Packets += n[1]
	d[dir].FrameBytes += n[2]
	d[1-dir].FrameBytes += n[3]
	d[dir].Payload += n[4]
	d[1-dir].Payload += n[5]
	return nil
}

// parseStream reads a line of a per-stream oracle of fields columns: the
// stream, endpoint A's address and port, B's, then counts each way. It
// returns the pair, the direction from A, and the counts.
func parseStream(line string, fields int) (Pair, int, []uint64, error) {
	f := strings.Split(line, "\t")
	if len(f) < fields {
		return Pair{}, 0, nil, fmt.Errorf("%d fields, want %d: %q", len(f), fields, line)
	}
	n := make([]uint64, 0, fields-3)
	for _, s := range append([]string{f[2], f[4]}, f[5:fields]...) {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return Pair{}, 0, nil, err
		}
		n = append(n, v)
	}
	a, err := addrPort(f[1], n[0])
	if err != nil {
		return Pair{}, 0, nil, err
	}
	b, err := addrPort(f[3], n[1])
	if err != nil {
		return Pair{}, 0, nil, err
	}
	p, dir := PairOf(a, b)
	return p, dir, n[2:], nil
}

// WithIPBytes adds the IP bytes of tshark's .iplen.tsv (stream, the two
// endpoints' address and port, then packets and IP bytes each way) to c,
// which Streams read from the same capture's .streams.tsv. The two files
// must count the same packets for every pair.
func (c Counts) WithIPBytes(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	ip := Counts{}
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for line := 2; sc.Scan(); line++ {
		if err := ip.addIPLen(sc.Text()); err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(ip) != len(c) {
		return fmt.Errorf("%s: %d 4-tuples, the streams have %d", path, len(ip), len(c))
	}
	for p, d := range ip {
		o := c[p]
		if o == nil || o[0].Packets != d[0].Packets || o[1].Packets != d[1].Packets {
			return fmt.Errorf("%s: %v's packets are counted differently from the streams", path, p)
		}
		o[0].IPBytes, o[1].IPBytes = d[0].IPBytes, d[1].IPBytes
	}
	return nil
}

// addIPLen adds one line of an .iplen.tsv.
func (c Counts) addIPLen(line string) error {
	p, dir, n, err := parseStream(line, 9)
	if err != nil {
		return err
	}
	d := c.dirs(p)
	d[dir].Packets += n[0]
	d[1-dir].Packets += n[1]
	d[dir].IPBytes += n[2]
	d[1-dir].IPBytes += n[3]
	return nil
}

func addrPort(addr string, port uint64) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("port %d", port)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// Complaint returns what tshark said about a capture it could not read in
// full (the .conv.err beside its .streams.tsv), or "" if it said nothing.
func Complaint(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// Conn is one TCP connection of a Zeek conn.log.
type Conn struct {
	Orig, Resp     netip.AddrPort
	State, History string // conn_state and history; "" where the log has no such column
	// HasState and HasHistory say whether the log has the column.
	HasState, HasHistory bool
	Pkts                 [2]int // orig_pkts and resp_pkts; -1 where the log has no such column
}

// String names a connection as Zeek's id fields do.
func (c Conn) String() string { return fmt.Sprintf("%v -> %v", c.Orig, c.Resp) }

// ConnLog reads the TCP connections of a Zeek conn.log, whole (a #fields
// header) or cut by zeek-cut (a first line of column names from "ts").
func ConnLog(path string) ([]Conn, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cols map[string]int
	var out []Conn
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, "\t")
		switch {
		case strings.HasPrefix(line, "#fields\t"):
			cols = columns(f[1:])
		case cols == nil && f[0] == "ts":
			cols = columns(f)
		case line == "" || strings.HasPrefix(line, "#"):
		case cols == nil:
			return nil, fmt.Errorf("%s:%d: a connection before the header", path, i+1)
		case len(f) < len(cols):
			return nil, fmt.Errorf("%s:%d: %d fields, want %d", path, i+1, len(f), len(cols))
		default:
			c, ok, err := conn(cols, f)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
			}
			if ok {
				out = append(out, c)
			}
		}
	}
	if cols == nil {
		return nil, fmt.Errorf("%s: no header", path)
	}
	return out, nil
}

func columns(names []string) map[string]int {
	cols := make(map[string]int, len(names))
	for i, c := range names {
		cols[c] = i
	}
	return cols
}

// conn reads one line of a conn.log; ok is false for a connection that is
// not TCP.
func conn(cols map[string]int, f []string) (c Conn, ok bool, err error) {
	get := func(name string) string {
		if i, ok := cols[name]; ok {
			return f[i]
		}
		return ""
	}
	if p := get("proto"); p != "" && p != "tcp" {
		return c, false, nil
	}
	endpoint := func(h, p string) (netip.AddrPort, error) {
		port, err := strconv.ParseUint(get(p), 10, 16)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("%s: %w", p, err)
		}
		return addrPort(get(h), port)
	}
	if c.Orig, err = endpoint("id.orig_h", "id.orig_p"); err != nil {
		return c, false, err
	}
	if c.Resp, err = endpoint("id.resp_h", "id.resp_p"); err != nil {
		return c, false, err
	}
	c.State, c.History = get("conn_state"), get("history")
	_, c.HasState = cols["conn_state"]
	_, c.HasHistory = cols["history"]
	for i, name := range []string{"orig_pkts", "resp_pkts"} {
		c.Pkts[i] = -1
		if n, err := strconv.Atoi(get(name)); err == nil {
			c.Pkts[i] = n
		}
	}
	return c, true, nil
}

// SS is what `ss -tan` listed in both network namespaces of a capture in
// pcaps/kernel (a .ss file, made by tools/netns-record's pair): each
// connection's client and server, and the state each kernel gave its
// socket, in ss's names.
type SS struct {
	// After is how many of the capture's packets came before ss ran; -1
	// if the file does not say.
	After int
	Conns []SSConn
}

// SSConn is one connection of an SS file.
type SSConn struct{ Client, Server, ClientState, ServerState string }

// ReadSS reads a .ss file: comment lines (one may say "after packet N"),
// then one connection a line: client, server and both states, tab-separated.
func ReadSS(path string) (SS, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return SS{}, err
	}
	s := SS{After: -1}
	for i, line := range strings.Split(string(data), "\n") {
		if c, ok := strings.CutPrefix(line, "#"); ok {
			if _, rest, ok := strings.Cut(c, "after packet "); ok {
				if _, err := fmt.Sscanf(rest, "%d", &s.After); err != nil {
					return s, fmt.Errorf("%s:%d: %w", path, i+1, err)
				}
			}
			continue
		}
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return s, fmt.Errorf("%s:%d: %q: want 4 tab-separated fields", path, i+1, line)
		}
		for _, st := range f[2:] {
			if _, ok := SSState(st); !ok {
				return s, fmt.Errorf("%s:%d: unknown state %q", path, i+1, st)
			}
		}
		s.Conns = append(s.Conns, SSConn{f[0], f[1], f[2], f[3]})
	}
	return s, nil
}

// ssStates are ss's state names and netstat's (flowtrack's). CLOSED
// stands for a socket the kernel no longer lists.
var ssStates = map[string]string{
	"ESTAB": "ESTABLISHED", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECEIVED",
	"FIN-WAIT-1": "FIN_WAIT_1", "FIN-WAIT-2": "FIN_WAIT_2", "CLOSE-WAIT": "CLOSE_WAIT",
	"CLOSING": "CLOSING", "LAST-ACK": "LAST_ACK", "TIME-WAIT": "TIME_WAIT", "CLOSED": "CLOSED",
}

// SSState returns netstat's name of a state ss names; ok is false for a
// name ss does not give a connection's socket.
func SSState(ss string) (netstat string, ok bool) {
	netstat, ok = ssStates[ss]
	return netstat, ok
}
