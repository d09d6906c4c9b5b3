package export

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

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
func WriteTable(w io.Writer, recs []*flows.Record, annotate local.Lookup, kinds func(*flows.Record) diag.Set) error {
	t := tableLayout{kinds: kinds != nil}
	if annotate != nil {
		t.locals = make([]local.Info, len(recs))
		for i := range recs {
			t.locals[i] = annotate(recs[i])
			t.names = t.names || t.locals[i].ServerName != ""
			t.sockets = t.sockets || t.locals[i].Sockets
		}
	}
	if kinds != nil {
		// Judged once each, in order: the judge learns from each record.
		t.sets = make([]diag.Set, len(recs))
		for i := range recs {
			t.sets[i] = kinds(recs[i])
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if widths, ok := t.widths(recs); ok {
		t.write(bw, recs, widths)
	} else {
		// A cell with a tab, a line break or tabwriter's escape byte (a
		// process's name may hold anything): tabwriter says what it
		// makes of it. It writes a cell's text and its padding in
		// separate calls: straight to a file, a system call each.
		tw := tabwriter.NewWriter(bw, 0, 0, tablePadding, ' ', 0)
		var b []byte
		for i := -1; i < len(recs); i++ {
			b = append(t.row(b[:0], recs, i), '\n')
			_, _ = tw.Write(b)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// tablePadding is the spaces between columns.
const tablePadding = 2

// tableLayout is what WriteTable writes of each record besides its own
// fields: the annotations, the problems' kinds, and which columns are
// shown. WriteTable lays the cells out as a tabwriter with padding 2
// and no flags would, in two passes over the records (the widths, then
// the lines), rather than holding every cell of a table of a million
// rows, as a tabwriter does, at a multiple of the records' memory.
type tableLayout struct {
	locals         []local.Info
	sets           []diag.Set
	names, sockets bool
	kinds          bool
}

// columns returns the header line's cells.
func (t *tableLayout) columns() []string {
	cols := []string{"Proto", "Client", "Server"}
	if t.names {
		cols = append(cols, "Name")
	}
	cols = append(cols, "Client state", "Server state", "Pkts", "Bytes", "Pkts c>s/s>c", "Bytes c>s/s>c", "RTT", "Retrans", "Zeek", "Flags")
	if t.kinds {
		cols = append(cols, "Problems")
	}
	if t.sockets {
		cols = append(cols, "Process")
	}
	return cols
}

// widths returns each column's width but the last's (the widest cell
// and the padding), and false if a cell holds a byte that a tabwriter
// would take for a cell's or a line's end or an escape.
func (t *tableLayout) widths(recs []*flows.Record) ([]int, bool) {
	n := len(t.columns())
	widths := make([]int, n-1)
	var b []byte
	for i := -1; i < len(recs); i++ {
		b = t.row(b[:0], recs, i)
		col, start := 0, 0
		for k := 0; k <= len(b); k++ {
			if k < len(b) {
				switch b[k] {
				case '\n', '\v', '\f', tabwriter.Escape:
					return nil, false
				case '\t':
				default:
					continue
				}
			}
			if col < n-1 {
				widths[col] = max(widths[col], utf8.RuneCount(b[start:k])+tablePadding)
			}
			col, start = col+1, k+1
		}
		if col != n {
			return nil, false
		}
	}
	return widths, true
}

// write writes the header and a line per record, each cell but the last
// padded with spaces to its column's width.
func (t *tableLayout) write(bw *bufio.Writer, recs []*flows.Record, widths []int) {
	var b, line []byte
	for i := -1; i < len(recs); i++ {
		b = t.row(b[:0], recs, i)
		line = line[:0]
		col, start := 0, 0
		for k := 0; k < len(b); k++ {
			if b[k] != '\t' {
				continue
			}
			cell := b[start:k]
			line = append(line, cell...)
			for range widths[col] - utf8.RuneCount(cell) {
				line = append(line, ' ')
			}
			col, start = col+1, k+1
		}
		line = append(append(line, b[start:]...), '\n')
		_, _ = bw.Write(line)
	}
}

// row appends the cells of line i (-1: the header), separated by tabs.
func (t *tableLayout) row(b []byte, recs []*flows.Record, i int) []byte {
	if i < 0 {
		return append(b, strings.Join(t.columns(), "\t")...)
	}
	r := recs[i]
	var l local.Info
	if t.locals != nil {
		l = t.locals[i]
	}
	b = appendAddrPort(append(b, "tcp\t"...), r.Client)
	b = appendAddrPort(append(b, '\t'), r.Server)
	if t.names {
		b = append(b, '\t')
		if l.ServerName != "" {
			b = append(append(append(append(b, l.ServerName...), " ("...), l.NameSource...), ')')
		} else {
			b = append(b, '-')
		}
	}
	rtt := "-"
	if r.RTT >= 0 {
		rtt = fmtRTT(r.RTT)
	}
	b = append(append(b, '\t'), StateText(r.ClientState, r.ClientDoubt)...)
	b = append(append(b, '\t'), StateText(r.ServerState, r.ServerDoubt)...)
	b = strconv.AppendUint(append(b, '\t'), r.C2S.Packets+r.S2C.Packets, 10)
	b = append(append(b, '\t'), HumanBytes(r.C2S.Bytes+r.S2C.Bytes)...)
	b = strconv.AppendUint(append(b, '\t'), r.C2S.Packets, 10)
	b = strconv.AppendUint(append(b, '/'), r.S2C.Packets, 10)
	b = append(append(b, '\t'), HumanBytes(r.C2S.Bytes)...)
	b = append(append(b, '/'), HumanBytes(r.S2C.Bytes)...)
	b = append(append(b, '\t'), rtt...)
	b = strconv.AppendUint(append(b, '\t'), r.C2S.Retransmits, 10)
	b = strconv.AppendUint(append(b, '/'), r.S2C.Retransmits, 10)
	b = append(append(b, '\t'), r.ConnState()...)
	b = append(append(b, '\t'), flagsText(r)...)
	if t.kinds {
		b = append(append(b, '\t'), t.sets[i].String()...)
	}
	if t.sockets {
		b = append(append(b, '\t'), processText(&l)...)
	}
	return b
}

// appendAddrPort appends p as fmt's %s writes it.
func appendAddrPort(b []byte, p netip.AddrPort) []byte {
	if !p.Addr().IsValid() {
		return append(b, p.String()...)
	}
	return p.AppendTo(b)
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
