package export

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// WriteTable writes records as a netstat-like table with a header line.
// Columns: protocol, client and server address:port, both endpoints'
// states, packets and frame bytes (total, and client-to-server /
// server-to-client), handshake RTT, retransmitted segments, Zeek's
// conn_state, and flags: M for a connection picked up mid-stream, G for
// one with gaps in sequence space (packets possibly missed), and the VLAN
// tags.
//
// With annotate (live captures), a Process column names the local process
// that owns the connection ("-" when unknown).
func WriteTable(w io.Writer, recs []flows.Record, annotate local.Lookup) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "Proto\tClient\tServer\tClient state\tServer state\tPkts\tBytes\tPkts c>s/s>c\tBytes c>s/s>c\tRTT\tRetrans\tZeek\tFlags"
	if annotate != nil {
		head += "\tProcess"
	}
	fmt.Fprintln(tw, head)
	for i := range recs {
		r := &recs[i]
		rtt := "-"
		if r.RTT >= 0 {
			rtt = fmtRTT(r.RTT)
		}
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
		fl := strings.Join(flags, ",")
		if fl == "" {
			fl = "-"
		}
		fmt.Fprintf(tw, "tcp\t%s\t%s\t%s\t%s\t%d\t%s\t%d/%d\t%s/%s\t%s\t%d/%d\t%s\t%s",
			r.Client, r.Server, r.ClientState, r.ServerState,
			r.C2S.Packets+r.S2C.Packets, HumanBytes(r.C2S.Bytes+r.S2C.Bytes),
			r.C2S.Packets, r.S2C.Packets, HumanBytes(r.C2S.Bytes), HumanBytes(r.S2C.Bytes),
			rtt, r.C2S.Retransmits, r.S2C.Retransmits, r.ConnState(), fl)
		if annotate != nil {
			proc := "-"
			if l := annotate(r); l.PID > 0 {
				proc = fmt.Sprintf("%d/%s", l.PID, l.Process)
			}
			fmt.Fprintf(tw, "\t%s", proc)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
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
