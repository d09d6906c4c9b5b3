package main

// The live comparison (record.sh --live): flowtrack captured live in the
// server namespace while a scenario ran, and was stopped right after `ss`
// was taken in both namespaces. compareLive pairs flowtrack's NDJSON records
// with the ss truth (NAME.ss, made by pair) by 4-tuple.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/flowtrack/flowtrack/internal/jsonrec"
	"github.com/flowtrack/flowtrack/internal/oracle"
)

// knownLive lists the disagreements between flowtrack and the kernels that
// the live test tolerates, each with the reason. A disagreement is matched
// on the scenario, the snapshot and both pairs of states exactly; anything
// else fails the test. Keep this list as short as the truth allows.
var knownLive = []knownDiff{}

type knownDiff struct {
	Scenario  string // e.g. "syn-sent"
	Snapshot  string // "final" or "mid"
	SS        string // ss's client/server states, e.g. "SYN-SENT/CLOSED"
	Flowtrack string // flowtrack's client/server states, e.g. "SYN_SENT/CLOSED"
	Reason    string
}

// ftRecord is a flowtrack JSON record.
type ftRecord = jsonrec.Record

// liveRow is one connection of one snapshot of a scenario.
type liveRow struct {
	Scenario, Snapshot string
	Client, Server     string
	SSClient, SSServer string   // ss's state names; CLOSED when no kernel lists the socket
	FTClient, FTServer string   // flowtrack's state names; "-" when it has no record
	Verdict            string   // OK, DIFF or KNOWN
	Note               string   // why DIFF, the reason of a KNOWN, packet counts
	Records            []string // flowtrack's JSON lines for this 4-tuple, in order
}

func (r liveRow) String() string {
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\tss %s/%s\tflowtrack %s/%s\t%s",
		r.Verdict, r.Scenario, r.Snapshot, r.Client, r.Server, r.SSClient, r.SSServer, r.FTClient, r.FTServer, r.Note)
}

// readRecords reads flowtrack's NDJSON output.
func readRecords(path string) ([]ftRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := jsonrec.Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return recs, nil
}

// frameTuple returns a TCP segment's source and destination as ss prints
// them, from a pcap record (16-byte header, then an Ethernet frame).
func frameTuple(rec []byte) (src, dst string, ok bool) {
	b := rec[16:]
	if len(b) < 14 {
		return "", "", false
	}
	et := binary.BigEndian.Uint16(b[12:])
	b = b[14:]
	var sip, dip net.IP
	switch et {
	case 0x0800:
		if len(b) < 20 || b[9] != 6 {
			return "", "", false
		}
		ihl := int(b[0]&0xf) * 4
		if len(b) < ihl {
			return "", "", false
		}
		sip, dip = net.IP(b[12:16]), net.IP(b[16:20])
		b = b[ihl:]
	case 0x86dd:
		if len(b) < 40 || b[6] != 6 {
			return "", "", false
		}
		sip, dip = net.IP(b[8:24]), net.IP(b[24:40])
		b = b[40:]
	default:
		return "", "", false
	}
	if len(b) < 4 {
		return "", "", false
	}
	sp, dp := binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
	return net.JoinHostPort(sip.String(), strconv.Itoa(int(sp))), net.JoinHostPort(dip.String(), strconv.Itoa(int(dp))), true
}

// compareLive compares flowtrack's records (recordsPath) with the ss truth
// (ssPath) for one snapshot of a scenario. When pcapPath is given (the
// parallel tcpdump capture, not cut), the packets flowtrack counted for each
// connection are checked against what tcpdump saw: at least every packet up
// to the snapshot (until, Unix ns), at most every packet tcpdump saw (it is
// stopped after flowtrack).
func compareLive(scenario, snapshot, ssPath, recordsPath, pcapPath string, until int64) ([]liveRow, error) {
	truth, err := oracle.ReadSS(ssPath)
	if err != nil {
		return nil, err
	}
	recs, err := readRecords(recordsPath)
	if err != nil {
		return nil, err
	}
	lc := liveCompare{scenario: scenario, snapshot: snapshot}
	if pcapPath != "" {
		if lc.seen, err = countPackets(pcapPath, until); err != nil {
			return nil, err
		}
	}
	keys := map[connKey]bool{}
	ss := map[connKey][2]string{}
	for _, c := range truth.Conns {
		k := connKey{c.Client, c.Server}
		keys[k] = true
		ss[k] = [2]string{c.ClientState, c.ServerState}
	}
	byTuple := map[connKey][]ftRecord{}
	for _, r := range recs {
		k := connKey{r.Client, r.Server}
		keys[k] = true
		byTuple[k] = append(byTuple[k], r)
	}
	var rows []liveRow
	for _, k := range sortedKeys(keys) {
		st, listed := ss[k]
		rows = append(rows, lc.conn(k, st, listed, byTuple[k]))
	}
	return rows, nil
}

// countPackets counts the packets of a capture by source and destination:
// those stamped up to until (Unix ns), and all.
func countPackets(pcapPath string, until int64) (map[[2]string]*[2]int, error) {
	if _, err := os.Stat(pcapPath); err != nil {
		return nil, err // readPcap would end the process
	}
	seen := map[[2]string]*[2]int{}
	p := readPcap(pcapPath)
	for i, r := range p.recs {
		s, d, ok := frameTuple(r)
		if !ok {
			continue
		}
		c := seen[[2]string{s, d}]
		if c == nil {
			c = new([2]int)
			seen[[2]string{s, d}] = c
		}
		c[1]++
		if p.ts[i] <= until {
			c[0]++
		}
	}
	return seen, nil
}

// liveCompare compares one snapshot of a scenario, connection by
// connection.
type liveCompare struct {
	scenario, snapshot string
	seen               map[[2]string]*[2]int // tcpdump's packets by source, destination: up to the snapshot, all; nil without a capture
}

// conn compares flowtrack's records of one connection, rs, with the
// kernels' states st (listed is false if neither kernel lists it).
func (lc *liveCompare) conn(k connKey, st [2]string, listed bool, rs []ftRecord) liveRow {
	row := liveRow{Scenario: lc.scenario, Snapshot: lc.snapshot, Client: k.c, Server: k.s}
	var notes []string
	if !listed {
		// Neither kernel lists it, and no program reported it: only
		// flowtrack saw it. There is no socket on either side.
		st = [2]string{"CLOSED", "CLOSED"}
		notes = append(notes, "neither kernel lists this connection")
	}
	row.SSClient, row.SSServer = st[0], st[1]
	for _, r := range rs {
		row.Records = append(row.Records, r.Raw)
	}
	diff := false
	if len(rs) == 0 {
		row.FTClient, row.FTServer = "-", "-"
		diff = true
		notes = append(notes, "flowtrack has no record of this connection")
	} else {
		last := rs[len(rs)-1]
		row.FTClient, row.FTServer = last.ClientState, last.ServerState
		wc, _ := oracle.SSState(st[0])
		ws, _ := oracle.SSState(st[1])
		diff = wc != last.ClientState || ws != last.ServerState
		// Earlier connections on the same 4-tuple were replaced by the
		// last one: neither kernel can still hold them.
		for i, r := range rs[:len(rs)-1] {
			if r.ClientState != "CLOSED" || r.ServerState != "CLOSED" {
				diff = true
				notes = append(notes, fmt.Sprintf("connection %d of %d on this 4-tuple is %s/%s in flowtrack, but a later one replaced it (CLOSED/CLOSED)",
					i+1, len(rs), r.ClientState, r.ServerState))
			}
		}
		if lc.seen != nil {
			d, n := lc.packets(k, rs)
			diff, notes = diff || d, append(notes, n...)
		}
	}
	row.Verdict = "OK"
	if diff {
		row.Verdict = "DIFF"
		for _, kd := range knownLive {
			if kd.Scenario == lc.scenario && kd.Snapshot == lc.snapshot &&
				kd.SS == st[0]+"/"+st[1] && kd.Flowtrack == row.FTClient+"/"+row.FTServer {
				row.Verdict = "KNOWN"
				notes = append(notes, "known: "+kd.Reason)
				break
			}
		}
	}
	row.Note = strings.Join(notes, "; ")
	return row
}

// packets checks the packets flowtrack counted on a connection, each way,
// against tcpdump's: at least those before the snapshot, at most all.
func (lc *liveCompare) packets(k connKey, rs []ftRecord) (diff bool, notes []string) {
	var ft [2]int
	for _, r := range rs {
		ft[0] += int(r.PacketsC2S)
		ft[1] += int(r.PacketsS2C)
	}
	after := 0
	for d, name := range []string{"client>server", "server>client"} {
		src, dst := k.c, k.s
		if d == 1 {
			src, dst = dst, src
		}
		var upTo, all int
		if c := lc.seen[[2]string{src, dst}]; c != nil {
			upTo, all = c[0], c[1]
		}
		switch {
		case ft[d] < upTo:
			diff = true
			notes = append(notes, fmt.Sprintf("flowtrack counted %d %s packets, tcpdump saw %d before the snapshot: flowtrack missed packets", ft[d], name, upTo))
		case ft[d] > all:
			diff = true
			notes = append(notes, fmt.Sprintf("flowtrack counted %d %s packets, tcpdump saw only %d", ft[d], name, all))
		default:
			after += ft[d] - upTo
		}
	}
	if after > 0 {
		notes = append(notes, fmt.Sprintf("flowtrack also saw %d packet(s) after the snapshot, before it stopped", after))
	}
	return diff, notes
}

// liveReport describes a disagreement: the scenario, flowtrack's records,
// both ss outputs and the packets (tcpdump -nr of the parallel capture, with
// the moment of the snapshot marked).
func liveReport(r liveRow, ssPath, pcapPath string, until int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s (%s snapshot): %s -> %s\n", r.Scenario, r.Snapshot, r.Client, r.Server)
	fmt.Fprintf(&b, "  ss:        client %s, server %s\n", r.SSClient, r.SSServer)
	fmt.Fprintf(&b, "  flowtrack: client %s, server %s\n", r.FTClient, r.FTServer)
	if r.Note != "" {
		fmt.Fprintf(&b, "  note: %s\n", r.Note)
	}
	b.WriteString("  flowtrack's record(s):\n")
	if len(r.Records) == 0 {
		b.WriteString("    (none)\n")
	}
	for _, rec := range r.Records {
		fmt.Fprintf(&b, "    %s\n", rec)
	}
	if data, err := os.ReadFile(ssPath); err == nil {
		b.WriteString("  ss -tanH in both namespaces:\n")
		for _, ln := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(ln, "# ss ") || strings.HasPrefix(ln, "#   ") {
				fmt.Fprintf(&b, "    %s\n", strings.TrimPrefix(ln, "# "))
			}
		}
	}
	if pcapPath != "" {
		b.WriteString("  packets (tcpdump -tt -nr of the parallel capture):\n")
		b.WriteString(packetList(pcapPath, until, "    "))
	}
	return b.String()
}

// packetList runs tcpdump -tt -nr on a capture and marks the snapshot.
func packetList(pcapPath string, until int64, indent string) string {
	out, err := exec.Command("tcpdump", "-tt", "-nr", pcapPath).Output()
	if err != nil {
		return fmt.Sprintf("%s(tcpdump -nr %s: %v)\n", indent, pcapPath, err)
	}
	var lines []string
	marked := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		ln := sc.Text()
		if !marked && stampNS(ln) > until {
			lines = append(lines, "----- ss snapshot -----")
			marked = true
		}
		lines = append(lines, ln)
	}
	if !marked {
		lines = append(lines, "----- ss snapshot -----")
	}
	const head, tail = 20, 60
	if len(lines) > head+tail+1 {
		skipped := len(lines) - head - tail
		lines = append(append(lines[:head:head], fmt.Sprintf("... %d lines ...", skipped)), lines[len(lines)-tail:]...)
	}
	var b strings.Builder
	for _, ln := range lines {
		b.WriteString(indent + ln + "\n")
	}
	return b.String()
}

// stampNS parses tcpdump -tt's leading "SECONDS.MICROSECONDS" into Unix ns.
func stampNS(line string) int64 {
	f, _, _ := strings.Cut(line, " ")
	sec, frac, ok := strings.Cut(f, ".")
	if !ok {
		return 0
	}
	s, err1 := strconv.ParseInt(sec, 10, 64)
	for len(frac) < 9 {
		frac += "0"
	}
	n, err2 := strconv.ParseInt(frac[:9], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return s*1e9 + n
}

// compareCmd is the compare subcommand: prints one line per connection
// (verdict first) and, on stderr, a report for each disagreement. It
// returns 1 when some disagreement is not a known one.
func compareCmd(stdout, stderr io.Writer, scenario, snapshot, ssPath, recordsPath, pcapPath string, until int64) int {
	rows, err := compareLive(scenario, snapshot, ssPath, recordsPath, pcapPath, until)
	if err != nil {
		fmt.Fprintf(stderr, "compare %s: %v\n", scenario, err)
		return 2
	}
	code := 0
	for _, r := range rows {
		fmt.Fprintln(stdout, r)
		if r.Verdict == "DIFF" {
			code = 1
			fmt.Fprint(stderr, liveReport(r, ssPath, pcapPath, until))
		}
	}
	return code
}
