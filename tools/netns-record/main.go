// Command netns-record drives real kernel TCP sockets into chosen states
// between two network namespaces, for the captures in pcaps/kernel.
//
// It is run by record.sh, never on its own: the script creates the
// namespaces, the firewall rules and the capture, and runs this binary once
// in the server namespace and once in the client namespace (via
// `ip netns exec`). The two processes and the script meet through marker
// files in a control directory: a process creates ctl/NAME to say it reached
// a step (mark) and waits for ctl/NAME created by the script (await) before
// a step that needs a firewall rule or a capture first.
//
// Subcommands:
//
//	server -scenario S -addr HOST:PORT -ctl DIR
//	client -scenario S -addr HOST:PORT -ctl DIR [-lport N] [-filler HOST:PORT]
//	pair   -cli FILE -srv FILE -tuples FILE[,FILE] -port N [-packets FILE -until NS]
//	trim   -until NS FILE  (drop the pcap records stamped after NS)
//	compare -scenario S -snapshot final|mid -ss FILE -records FILE [-packets FILE] -until NS
//	        (record.sh --live: flowtrack's records against the ss truth)
//	impair -port N -in FILE -out FILE OP...   (impair.go)
//	inject -packets FILE -port N -from c|s -seq old|next   (inject.go)
//	heartbeat -to HOST:PORT -every D   (a UDP datagram every D)
//
// Every process exits by itself after -deadline (default 40s) even if
// nobody kills it; every wait is bounded.
package main

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

var (
	fillerAddr string
	ctlDir     string
	role       string
	waitStep   = 15 * time.Second
)

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%s %s] %s\n", role, time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
}

func die(format string, a ...any) {
	logf("FATAL: "+format, a...)
	mark("failed")
	os.Exit(1)
}

// mark records that this process reached step name (file ctl/ROLE.name).
func mark(name string) {
	if ctlDir == "" {
		return
	}
	p := filepath.Join(ctlDir, role+"."+name)
	if err := os.WriteFile(p, []byte(time.Now().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		logf("mark %s: %v", name, err)
	}
}

// await blocks until the script created ctl/go.NAME.
func await(name string) {
	p := filepath.Join(ctlDir, "go."+name)
	end := time.Now().Add(waitStep)
	for time.Now().Before(end) {
		if _, err := os.Stat(p); err == nil {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	die("timed out waiting for %s", p)
}

// tuple appends "client\tserver" to ctl/ROLE.tuples so that connections
// that ss no longer lists (RST, refused) still get a row.
func tuple(client, server string) {
	f, err := os.OpenFile(filepath.Join(ctlDir, role+".tuples"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		die("tuples: %v", err)
	}
	fmt.Fprintf(f, "%s\t%s\n", client, server)
	f.Close()
}

// hold keeps the process (and so its sockets) alive until it is killed or
// the deadline timer ends it.
func hold() {
	mark("holding")
	select {}
}

func payload(n int, tag byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	if n > 0 {
		b[0] = tag
	}
	return b
}

func send(c net.Conn, n int, tag byte) {
	if _, err := c.Write(payload(n, tag)); err != nil {
		die("write %d bytes: %v", n, err)
	}
}

func recv(c net.Conn, n int) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		die("read %d bytes: %v", n, err)
	}
}

// drain reads until EOF and returns the number of bytes read.
func drain(c net.Conn) int {
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		die("read to EOF: %v", err)
	}
	return int(n)
}

// expectReset reads until the connection fails with a reset.
func expectReset(c net.Conn) {
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		die("expected a reset, got EOF")
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		logf("read ended with %v (wanted ECONNRESET)", err)
	} else {
		logf("read ended with ECONNRESET as expected")
	}
}

func closeWrite(c net.Conn) {
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		die("shutdown(SHUT_WR): %v", err)
	}
}

func abort(c net.Conn) {
	tc := c.(*net.TCPConn)
	if err := tc.SetLinger(0); err != nil {
		die("SO_LINGER 0: %v", err)
	}
	if err := tc.Close(); err != nil {
		die("close: %v", err)
	}
}

func network(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		die("bad address %q: %v", addr, err)
	}
	if strings.Contains(host, ":") {
		return "tcp6"
	}
	return "tcp4"
}

// ---- client ----

func dialer(lport int) *net.Dialer {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: -1}
	if lport != 0 {
		d.LocalAddr = &net.TCPAddr{Port: lport}
		d.Control = func(network, address string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return d
}

func dial(addr string, lport int) net.Conn {
	c, err := dialer(lport).Dial(network(addr), addr)
	if err != nil {
		die("dial %s: %v", addr, err)
	}
	logf("connected %s -> %s", c.LocalAddr(), c.RemoteAddr())
	tuple(c.LocalAddr().String(), c.RemoteAddr().String())
	held = append(held, c)
	return c
}

// filler sends one UDP datagram to addr (dropped by the peer's firewall) so
// that the rate-limited qdisc of the script holds the next packet, the FIN,
// back for a while: both FINs are then in flight at once.
func filler(addr string) {
	if addr == "" {
		return
	}
	u, err := net.Dial("udp", addr)
	if err != nil {
		die("filler: %v", err)
	}
	if _, err := u.Write(make([]byte, 1000)); err != nil {
		die("filler: %v", err)
	}
	u.Close()
}

// ---- pair: build the ground-truth TSV from two ss outputs ----

type ssRow struct{ state, local, peer string }

func readSS(path string) []ssRow {
	f, err := os.Open(path)
	if err != nil {
		die("%v", err)
	}
	defer f.Close()
	var rows []ssRow
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 5 {
			continue
		}
		rows = append(rows, ssRow{fl[0], fl[3], fl[4]})
	}
	return rows
}

func pair(out io.Writer, cliSS, srvSS, tuples string, port int, pcap string, until int64) {
	cst := map[connKey]string{}
	sst := map[connKey]string{}
	keys := map[connKey]bool{}
	suffix := fmt.Sprintf(":%d", port)
	skip := func(st string) bool { return st == "LISTEN" || st == "UNCONN" }
	for _, r := range readSS(cliSS) {
		if skip(r.state) || !strings.HasSuffix(r.peer, suffix) {
			continue
		}
		k := connKey{r.local, r.peer}
		cst[k] = r.state
		keys[k] = true
	}
	for _, r := range readSS(srvSS) {
		if skip(r.state) || !strings.HasSuffix(r.local, suffix) {
			continue
		}
		k := connKey{r.peer, r.local}
		sst[k] = r.state
		keys[k] = true
	}
	for _, tf := range strings.Split(tuples, ",") {
		b, err := os.ReadFile(tf)
		if err != nil {
			continue // no process wrote tuples (e.g. SYN_SENT)
		}
		for _, ln := range strings.Split(string(b), "\n") {
			fl := strings.Split(ln, "\t")
			if len(fl) == 2 {
				keys[connKey{fl[0], fl[1]}] = true
			}
		}
	}
	ks := sortedKeys(keys)
	w := bufio.NewWriter(out)
	fmt.Fprintln(w, "# client\tserver\tclient_state\tserver_state")
	if pcap != "" {
		fmt.Fprintf(w, "# ss snapshot taken after packet %d of %s\n", readPcap(pcap).countUntil(until), filepath.Base(pcap))
	}
	for _, k := range ks {
		c, s := cst[k], sst[k]
		if c == "" {
			c = "CLOSED"
		}
		if s == "" {
			s = "CLOSED"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k.c, k.s, c, s)
	}
	w.Flush()
}

// pcapFile is a classic pcap file split into its records.
type pcapFile struct {
	header []byte
	recs   [][]byte // each record with its 16-byte header
	ts     []int64  // each record's time in Unix nanoseconds
}

func readPcap(path string) *pcapFile {
	b, err := os.ReadFile(path)
	if err != nil {
		die("pcap: %v", err)
	}
	if len(b) < 24 {
		die("pcap %s: too short", path)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	magic := binary.LittleEndian.Uint32(b)
	if magic != 0xa1b2c3d4 && magic != 0xa1b23c4d {
		bo = binary.BigEndian
		magic = binary.BigEndian.Uint32(b)
	}
	frac := int64(1000) // microseconds
	if magic == 0xa1b23c4d {
		frac = 1
	}
	p := &pcapFile{header: b[:24]}
	for off := 24; off+16 <= len(b); {
		incl := int(bo.Uint32(b[off+8:]))
		if off+16+incl > len(b) {
			die("pcap %s: cut short", path)
		}
		p.recs = append(p.recs, b[off:off+16+incl])
		p.ts = append(p.ts, int64(bo.Uint32(b[off:]))*1e9+int64(bo.Uint32(b[off+4:]))*frac)
		off += 16 + incl
	}
	return p
}

// countUntil returns the number of records stamped at or before until (Unix ns).
func (p *pcapFile) countUntil(until int64) int {
	n := 0
	for _, t := range p.ts {
		if t <= until {
			n++
		}
	}
	return n
}

// trim rewrites the pcap at path without the records stamped after until,
// so that the capture ends where ss took its snapshot.
func trim(path string, until int64) {
	p := readPcap(path)
	var out []byte
	out = append(out, p.header...)
	kept := 0
	for i, r := range p.recs {
		if p.ts[i] <= until {
			out = append(out, r...)
			kept++
		}
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		die("trim: %v", err)
	}
	fmt.Printf("%d %d\n", kept, len(p.recs)-kept)
}

// ---- main ----

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: netns-record server|client|pair|trim|compare|impair|inject|heartbeat ...")
		os.Exit(2)
	}
	role = os.Args[1]
	fs := flag.NewFlagSet(role, flag.ExitOnError)
	scenario := fs.String("scenario", "", "scenario name")
	addr := fs.String("addr", "", "server address HOST:PORT")
	lport := fs.Int("lport", 0, "client: bind this local port (SO_REUSEADDR)")
	deadline := fs.Duration("deadline", 40*time.Second, "exit after this long whatever happens")
	cli := fs.String("cli", "", "pair: ss output of the client namespace")
	srv := fs.String("srv", "", "pair: ss output of the server namespace")
	tuples := fs.String("tuples", "", "pair: comma-separated tuple files")
	port := fs.Int("port", 0, "pair: server port")
	pcap := fs.String("packets", "", "pair: say after which packet of this pcap the snapshot was taken; compare: check packet counts against it")
	until := fs.Int64("until", 0, "pair, trim, compare: time of the ss snapshot, Unix nanoseconds")
	ssFile := fs.String("ss", "", "compare: the ss truth made by pair")
	records := fs.String("records", "", "compare: flowtrack's NDJSON output")
	snapshot := fs.String("snapshot", "final", "compare: which snapshot (final or mid)")
	fs.StringVar(&fillerAddr, "filler", "", "send one UDP datagram here just before the FIN (simultaneous-close)")
	in := fs.String("in", "", "impair: the capture to impair")
	out := fs.String("out", "", "impair: the impaired capture to write")
	from := fs.String("from", "c", "inject: the side the RST comes from, c or s")
	seqKind := fs.String("seq", "old", "inject: old (one past the side's SYN) or next (its next sequence number)")
	to := fs.String("to", "", "heartbeat: where to send")
	every := fs.Duration("every", 100*time.Millisecond, "heartbeat: how often")
	fs.StringVar(&ctlDir, "ctl", "", "control directory")
	fs.Parse(os.Args[2:])

	switch role {
	case "server", "client":
		if *scenario == "" || *addr == "" || ctlDir == "" {
			die("need -scenario, -addr and -ctl")
		}
		time.AfterFunc(*deadline, func() {
			logf("deadline %s reached, exiting", *deadline)
			os.Exit(3)
		})
		if role == "server" {
			server(*scenario, *addr)
		} else {
			client(*scenario, *addr, *lport)
		}
	case "pair":
		pair(os.Stdout, *cli, *srv, *tuples, *port, *pcap, *until)
	case "trim":
		trim(fs.Arg(0), *until)
	case "compare":
		os.Exit(compareCmd(os.Stdout, os.Stderr, *scenario, *snapshot, *ssFile, *records, *pcap, *until))
	case "impair":
		os.Exit(impairCmd(*port, *in, *out, fs.Args()))
	case "inject":
		os.Exit(injectCmd(*pcap, *port, *from, *seqKind))
	case "heartbeat":
		time.AfterFunc(*deadline, func() { os.Exit(0) })
		heartbeat(*to, *every)
	default:
		fmt.Fprintf(os.Stderr, "unknown subcommand %q\n", role)
		os.Exit(2)
	}
}

// connKey is a connection's client and server endpoints, as text.
type connKey struct{ c, s string }

// sortedKeys returns the keys of m, by client then server.
func sortedKeys(m map[connKey]bool) []connKey {
	return slices.SortedFunc(maps.Keys(m), func(a, b connKey) int {
		return cmp.Or(cmp.Compare(a.c, b.c), cmp.Compare(a.s, b.s))
	})
}
