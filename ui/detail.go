package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// showDetail renders the detail view from the last record it got; gone
// says the connection is no longer in the table nor lingering.
func (u *ui) showDetail(gone bool) {
	row, col := u.detail.GetScrollOffset()
	u.detail.SetText(u.detailText(u.detailRec, u.detailRetired, gone, u.frame.now))
	u.detail.ScrollTo(row, col)
}

// detailText describes one connection: both endpoints side by side, its
// timing and Zeek summary, why the roles were chosen, and every state
// transition with its capture time and cause.
func (u *ui) detailText(r *flows.Record, retired, gone bool, now int64) string {
	th := u.theme
	if r == nil {
		return "\n " + th.tagDim + "the connection is gone: it left the table and its linger is over[-:-:-]\n"
	}
	d := &detailWriter{th: th, cw: max(26, len(r.Client.String())+2)}
	_, _, width, _ := u.detail.GetInnerRect()
	if width <= 0 {
		width = 80
	}
	d.heading(r, retired, gone)
	u.detailEndpoints(d, r)
	d.WriteString("\n")
	if len(u.detailProbs) > 0 {
		d.problems(u.detailProbs, now, width)
		d.WriteString("\n")
	}
	d.timing(r, now)
	if len(u.detailProbs) == 0 {
		d.label("problems", "none")
	}
	d.WriteString("\n")
	d.transitions(r, width)
	return d.String()
}

// detailWriter writes the detail view: labels in a column of their own,
// then the client's and the server's values side by side.
type detailWriter struct {
	strings.Builder
	th *theme
	cw int // the width of the client's column
}

// labelWidth is the width of the labels' column in the detail view.
const labelWidth = 16

func (d *detailWriter) printf(format string, args ...any) { fmt.Fprintf(d, format, args...) }

// row writes a line of the client's and the server's values.
func (d *detailWriter) row(label, client, server string) {
	d.printf(" %s%s[-:-:-]%s%s\n", d.th.tagDim, pad(label, labelWidth), pad(escape(client), d.cw), escape(server))
}

// label writes a line of one value.
func (d *detailWriter) label(l, v string) {
	d.printf(" %s%s[-:-:-]%s\n", d.th.tagDim, pad(l, labelWidth), v)
}

// heading writes the connection's number, 4-tuple and status.
func (d *detailWriter) heading(r *flows.Record, retired, gone bool) {
	th := d.th
	status := "open"
	switch {
	case gone:
		status = "gone: left the table, and its linger is over"
	case retired:
		status = "left the table" + endReason(r.End) + "; shown for the linger"
	case r.Closed():
		status = "closed; still in the table"
	}
	d.printf(" %sConnection #%d[-:-:-]  tcp  %s → %s", th.tagHeading, r.ID, escape(r.Client.String()), escape(r.Server.String()))
	if v := r.Key.VLAN.String(); v != "" {
		d.printf("  vlan %s", v)
	}
	d.printf("  %s(%s)[-:-:-]\n\n", th.tagDim, status)
	d.printf(" %s%s%s\n", pad("", labelWidth), th.tagHeading+pad("client", d.cw)+"[-:-:-]", th.tagHeading+"server[-:-:-]")
}

// detailEndpoints writes both endpoints side by side: addresses, host
// names, states (and the kernel's, with the local process, for a live
// capture) and counters.
func (u *ui) detailEndpoints(d *detailWriter, r *flows.Record) {
	th := d.th
	d.row("address", r.Client.String(), r.Server.String())
	if cn, sn := u.hostName(r.Client.Addr()), u.hostName(r.Server.Addr()); cn != "" || sn != "" {
		d.row("host name", or(cn, "-"), or(sn, "-"))
	}
	nameRows(&u.detailLocal, d.row)
	d.printf(" %s%s[-:-:-]%s%s\n", th.tagDim, pad("state", labelWidth),
		th.tagGroup[r.ClientState.Group()]+pad(r.ClientState.String(), d.cw)+"[-:-:-]",
		th.tagGroup[r.ServerState.Group()]+r.ServerState.String()+"[-:-:-]")
	for _, e := range [...]struct {
		who string
		d   flows.Doubt
	}{{"client", r.ClientDoubt}, {"server", r.ServerDoubt}} {
		if e.d != flows.DoubtNone {
			d.label("uncertain", escape(e.who+": "+e.d.String()))
		}
	}
	if u.cfg.Processes {
		d.local(&u.detailLocal, u.frame.head.st.Warning)
	}
	u64 := func(v uint64) string { return strconv.FormatUint(v, 10) }
	d.row("packets sent", u64(r.C2S.Packets), u64(r.S2C.Packets))
	d.row("bytes sent", u64(r.C2S.Bytes), u64(r.S2C.Bytes))
	d.row("payload bytes", u64(r.C2S.Payload), u64(r.S2C.Payload))
	d.row("retransmits", u64(r.C2S.Retransmits), u64(r.S2C.Retransmits))
	d.row("window (raw)", strconv.Itoa(int(r.ClientWindow)), strconv.Itoa(int(r.ServerWindow)))
}

// local writes this host's kernel's own states, for the endpoints that are
// its sockets (how a user learns to trust the inference), and the local
// process, or why it is not known (warn, the lookup's last warning).
func (d *detailWriter) local(l *local.Info, warn string) {
	th := d.th
	kernel := func(k local.Kernel, width int) string {
		if k.Known {
			return th.tagGroup[k.State.Group()] + pad("kernel: "+k.State.String(), width) + "[-:-:-]"
		}
		return th.tagDim + pad("kernel: -", width) + "[-:-:-]"
	}
	d.printf(" %s%s[-:-:-]%s%s\n", th.tagDim, pad("", labelWidth), kernel(l.KernelClient, d.cw), kernel(l.KernelServer, 0))
	proc := "- (neither end is a socket of this host, or its process is unknown)"
	if l.PID != 0 {
		proc = l.Process + "[" + strconv.Itoa(l.PID) + "]"
		if l.TID != 0 && l.TID != l.PID {
			proc += " thread " + strconv.Itoa(l.TID)
		}
		if l.Via != "" {
			proc += " (learnt from " + l.Via + ")"
		}
	} else if warn != "" {
		proc = "- (" + warn + ")"
	}
	d.label("process", escape(proc))
	user, cgroup := "", l.Cgroup
	if l.Details {
		user = l.User + " (uid " + strconv.FormatUint(uint64(l.UID), 10) + ")"
	}
	if l.Unit != "" && l.Container == "" {
		cgroup += " (" + l.Unit + ")"
	}
	for _, f := range [...]struct{ k, v string }{{"executable", l.Exe}, {"command line", l.Cmdline}, {"user", user}, {"container", l.Container}, {"cgroup", cgroup}} {
		if f.v != "" {
			d.label(f.k, escape(f.v))
		}
	}
}

// timing writes when the connection was seen, its handshake, Zeek's
// summary and why the roles were chosen; now is the capture's clock.
func (d *detailWriter) timing(r *flows.Record, now int64) {
	d.label("first seen", fmtStamp(r.FirstSeen)+"  age "+fmtAge(time.Duration(now-r.FirstSeen.UnixNano())))
	d.label("last seen", fmtStamp(r.LastSeen)+"  idle "+fmtAge(time.Duration(now-r.LastSeen.UnixNano())))
	rtt := "not seen (no complete handshake)"
	if r.RTT >= 0 {
		rtt = fmtRTT(r.RTT) + " (SYN to the ACK of the SYN-ACK, at the capture point)"
	}
	d.label("handshake RTT", rtt)
	d.label("conn_state", or(r.ConnState(), "-")+"   history "+escape(or(r.History(), "-")))
	mid := "no: the handshake was seen"
	if r.Midstream {
		mid = "yes: the opening SYN was not seen, so both ends start ESTABLISHED"
	}
	d.label("mid-stream", mid)
	d.label("roles", r.Role.String())
}

// transitions writes every state change, oldest first: one line each when
// the cause fits beside it in width, else two.
func (d *detailWriter) transitions(r *flows.Record, width int) {
	th := d.th
	d.printf(" %sTransitions[-:-:-] %s(capture time, oldest first)[-:-:-]\n", th.tagHeading, th.tagDim)
	if len(r.Transitions) == 0 {
		d.printf(" %snone logged[-:-:-]\n", th.tagDim)
	}
	for _, t := range r.Transitions {
		who := "server"
		if t.Client {
			who = "client"
		}
		change := th.tagGroup[t.From.Group()] + t.From.String() + "[-:-:-] → " +
			th.tagGroup[t.To.Group()] + t.To.String() + "[-:-:-]"
		sep := "\n" + strings.Repeat(" ", 18)
		if n := 1 + 15 + 2 + 6 + 2 + len(t.From.String()) + 3 + len(t.To.String()) + 2 + len(t.Cause()); n <= width {
			sep = "  "
		}
		d.printf(" %s  %s  %s%s%s%s[-:-:-]\n", fmtClock(t.Time()), who, change, sep, th.tagDim, escape(t.Cause()))
	}
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// endReason explains why a connection left the table.
func endReason(e flows.EndReason) string {
	switch e {
	case flows.EndClosed:
		return ": closed, and the closed timeout passed"
	case flows.EndIdle:
		return ": idle for the idle timeout"
	case flows.EndReplaced:
		return ": a new SYN reused its 4-tuple"
	case flows.EndEvicted:
		return ": evicted to respect the connection limit"
	case flows.EndFlushed:
		return ": the capture ended"
	}
	return ""
}

// nameRows adds the detail view's rows on the name the client asked for.
func nameRows(l *local.Info, row func(label, client, server string)) {
	if l.ServerName == "" && l.ALPN == "" && !l.ECH {
		return
	}
	name := or(l.ServerName, "-")
	if l.ServerName != "" {
		name += " (" + nameSources[nameMark(l.NameSource)] + ")"
	}
	row("asked for", "", name)
	if l.ALPN != "" {
		row("ALPN", "", l.ALPN)
	}
	if l.ECH {
		row("ECH", "", "offered: the TLS server name may be a front's public name")
	}
}

// problems writes what is wrong with the connection, the most severe
// first: each problem's kind, the end it is about, when it began and
// what was seen, then the packets that show it (capture time, direction,
// flags, sequence and acknowledgement numbers, what each shows), in
// lines of at most width. Their times are written to the millisecond:
// flows keeps the evidence's times coarser than the packets' (the
// transitions below have the exact ones).
func (d *detailWriter) problems(ps []diag.Problem, now int64, width int) {
	th := d.th
	d.printf(" %sProblems[-:-:-] %s(the most severe first; capture time, to the millisecond)[-:-:-]\n", th.tagHeading, th.tagDim)
	indent := strings.Repeat(" ", 1+labelWidth)
	for i := range ps {
		p := &ps[i]
		since := fmtMilli(p.Since) + " (" + fmtAge(time.Duration(now-p.Since.UnixNano())) + " ago)"
		// A long kind's name pushes the rest along, a space after it.
		d.printf(" %s%s[-:-:-] the %s, since %s\n", th.tagProblem, pad(p.Kind.String(), labelWidth-1), p.Side, since)
		d.WriteString(indent)
		d.words(len(indent), indent, p.Detail, width, "")
		for _, e := range p.Evidence {
			ev := "   " + evidenceText(&e)
			d.WriteString(ev)
			switch {
			case e.Note == "":
				d.WriteString("\n")
			case strlen(ev)+2+strlen(e.Note) <= width:
				d.WriteString("  " + th.tagDim + escape(e.Note) + "[-:-:-]\n")
			default:
				d.WriteString("\n" + indent)
				d.words(len(indent), indent, e.Note, width, th.tagDim)
			}
		}
	}
}

// evidenceText is one evidence packet: capture time, direction, flags,
// and its sequence and acknowledgement numbers when known.
func evidenceText(e *diag.Packet) string {
	dir := "server→client"
	if e.FromClient {
		dir = "client→server"
	}
	t := fmtMilli(e.At) + "  " + dir + "  " + pad(e.Flags.String(), 3)
	if e.HasSeq {
		t += "  seq " + strconv.FormatUint(uint64(e.Seq), 10)
	}
	if e.HasAck {
		t += "  ack " + strconv.FormatUint(uint64(e.Ack), 10)
	}
	return t
}

// words writes the words of text on a line where col cells are taken,
// wrapping at width onto lines that start with indent, each word in tag
// (a tview style tag, or ""), and ends the line.
func (d *detailWriter) words(col int, indent, text string, width int, tag string) {
	n := col
	for i, w := range strings.Fields(text) {
		if i > 0 {
			if n+1+strlen(w) > width && n > len(indent) {
				d.WriteString("\n" + indent)
				n = len(indent)
			} else {
				d.WriteString(" ")
				n++
			}
		}
		d.WriteString(tag + escape(w))
		if tag != "" {
			d.WriteString("[-:-:-]")
		}
		n += strlen(w)
	}
	d.WriteString("\n")
}
