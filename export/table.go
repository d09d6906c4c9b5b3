package export

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// WriteTable writes records as a netstat-like table with a header line.
// Columns: protocol, client and server address:port, both endpoints'
// states, packets and frame bytes (total, and client-to-server /
// server-to-client), handshake RTT, retransmitted segments, Zeek's
// conn_state, and flags: M for a connection picked up mid-stream, G for
// one with gaps in sequence space (packets possibly missed), and the VLAN
// tags. With kinds, a Problems column names what is wrong with each
// connection, the most severe first ("-" for nothing; docs/problems.md).
//
// With annotate, a Name column after the server gives the name the client
// asked for and, in parentheses, where it was read (sni, host, dns), when
// any connection has one; and for a live capture (Info.Sockets), a
// Process column names the local process that owns the connection ("-"
// when unknown).
func WriteTable(w io.Writer, recs []flows.Record, annotate local.Lookup, kinds func(*flows.Record) diag.Set) error {
	var locals []local.Info
	names, sockets := false, false
	if annotate != nil {
		locals = make([]local.Info, len(recs))
		for i := range recs {
			locals[i] = annotate(&recs[i])
			names = names || locals[i].ServerName != ""
			sockets = sockets || locals[i].Sockets
		}
	}
	// tabwriter writes a cell's text and its padding in separate calls:
	// straight to a file, a system call each.
	bw := bufio.NewWriterSize(w, 64<<10)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	head := "Proto\tClient\tServer"
	if names {
		head += "\tName"
	}
	head += "\tClient state\tServer state\tPkts\tBytes\tPkts c>s/s>c\tBytes c>s/s>c\tRTT\tRetrans\tZeek\tFlags"
	if kinds != nil {
		head += "\tProblems"
	}
	if sockets {
		head += "\tProcess"
	}
	fmt.Fprintln(tw, head)
	for i := range recs {
		r := &recs[i]
		var l local.Info
		if locals != nil {
			l = locals[i]
		}
		rtt := "-"
		if r.RTT >= 0 {
			rtt = fmtRTT(r.RTT)
		}
		fmt.Fprintf(tw, "tcp\t%s\t%s", r.Client, r.Server)
		if names {
			name := "-"
			if l.ServerName != "" {
				name = l.ServerName + " (" + l.NameSource + ")"
			}
			fmt.Fprintf(tw, "\t%s", name)
		}
		fmt.Fprintf(tw, "\t%s\t%s\t%d\t%s\t%d/%d\t%s/%s\t%s\t%d/%d\t%s\t%s",
			StateText(r.ClientState, r.ClientDoubt), StateText(r.ServerState, r.ServerDoubt),
			r.C2S.Packets+r.S2C.Packets, HumanBytes(r.C2S.Bytes+r.S2C.Bytes),
			r.C2S.Packets, r.S2C.Packets, HumanBytes(r.C2S.Bytes), HumanBytes(r.S2C.Bytes),
			rtt, r.C2S.Retransmits, r.S2C.Retransmits, r.ConnState(), flagsText(r))
		if kinds != nil {
			fmt.Fprintf(tw, "\t%s", kinds(r))
		}
		if sockets {
			fmt.Fprintf(tw, "\t%s", processText(&l))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// StateText returns a state as the table shows it: its name, with a '?'
// when the packets cannot tell it for sure.
func StateText(s flows.State, d flows.Doubt) string {
	if d != flows.DoubtNone {
		return s.String() + "?"
	}
	return s.String()
}

// flagsText is the Flags column: M for a connection picked up mid-stream,
// G for one with gaps, the VLAN tags; "-" for none.
func flagsText(r *flows.Record) string {
	var flags []string
	if r.Midstream {
		flags = append(flags, "M")
	}
	if r.C2S.Gaps+r.S2C.Gaps > 0 {
		flags = append(flags, "G")
	}
	if v := r.Key.VLAN.String(); v != "" {
		flags = append(flags, "vlan="+v)
	}
	if len(flags) == 0 {
		return "-"
	}
	return strings.Join(flags, ",")
}

// processText is the Process column: "comm[pid]" and the container, or
// "-" when no local process is known.
func processText(l *local.Info) string {
	if l.PID <= 0 {
		return "-"
	}
	proc := fmt.Sprintf("%s[%d]", l.Process, l.PID)
	if l.Container != "" {
		proc += " " + l.Container
	}
	return proc
}

func fmtRTT(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64) + "ms"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
	default:
		return d.Round(time.Millisecond).String()
	}
}

// HumanBytes formats a byte count: exact below 10 000, then k, M, G with
// one decimal.
func HumanBytes(n uint64) string {
	if n < 10000 {
		return strconv.FormatUint(n, 10)
	}
	f := float64(n)
	for _, u := range []string{"k", "M", "G", "T"} {
		f /= 1000
		if f < 1000 {
			return strconv.FormatFloat(f, 'f', 1, 64) + u
		}
	}
	return strconv.FormatFloat(f, 'f', 0, 64) + "P"
}
