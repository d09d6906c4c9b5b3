package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

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
	var b strings.Builder
	const lw = 16 // label width
	cw := max(26, len(r.Client.String())+2)
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	row := func(label, client, server string) {
		w(" %s%s[-:-:-]%s%s\n", th.tagDim, pad(label, lw), pad(escape(client), cw), escape(server))
	}
	state := func(s flows.State) string {
		return th.tagGroup[s.Group()] + pad(s.String(), cw) + "[-:-:-]"
	}

	status := "open"
	switch {
	case gone:
		status = "gone: left the table, and its linger is over"
	case retired:
		status = "left the table" + endReason(r.End) + "; shown for the linger"
	case r.Closed():
		status = "closed; still in the table"
	}
	w(" %sConnection #%d[-:-:-]  tcp  %s → %s", th.tagHeading, r.ID, escape(r.Client.String()), escape(r.Server.String()))
	if v := r.Key.VLAN.String(); v != "" {
		w("  vlan %s", v)
	}
	w("  %s(%s)[-:-:-]\n\n", th.tagDim, status)
	w(" %s%s%s\n", pad("", lw), th.tagHeading+pad("client", cw)+"[-:-:-]", th.tagHeading+"server[-:-:-]")
	row("address", r.Client.String(), r.Server.String())
	if cn, sn := u.hostName(r.Client.Addr()), u.hostName(r.Server.Addr()); cn != "" || sn != "" {
		row("host name", or(cn, "-"), or(sn, "-"))
	}
	w(" %s%s[-:-:-]%s%s\n", th.tagDim, pad("state", lw), state(r.ClientState), th.tagGroup[r.ServerState.Group()]+r.ServerState.String()+"[-:-:-]")
	if u.cfg.Local != nil {
		// This host's kernel's own states, for the endpoints that are its
		// sockets: how a user learns to trust the inference.
		l := &u.detailLocal
		kernel := func(k local.Kernel, width int) string {
			if k.Known {
				return th.tagGroup[k.State.Group()] + pad("kernel: "+k.State.String(), width) + "[-:-:-]"
			}
			return th.tagDim + pad("kernel: -", width) + "[-:-:-]"
		}
		w(" %s%s[-:-:-]%s%s\n", th.tagDim, pad("", lw), kernel(l.KernelClient, cw), kernel(l.KernelServer, 0))
		proc := "- (neither end is a socket of this host, or its process is unknown)"
		if l.PID != 0 {
			proc = strconv.Itoa(l.PID)
			if l.Process != "" {
				proc += "/" + l.Process
			}
		} else if warn := u.frame.head.st.Warning; warn != "" {
			proc = "- (" + warn + ")"
		}
		w(" %s%s[-:-:-]%s\n", th.tagDim, pad("process", lw), escape(proc))
	}
	u64 := func(v uint64) string { return strconv.FormatUint(v, 10) }
	row("packets sent", u64(r.C2S.Packets), u64(r.S2C.Packets))
	row("bytes sent", u64(r.C2S.Bytes), u64(r.S2C.Bytes))
	row("payload bytes", u64(r.C2S.Payload), u64(r.S2C.Payload))
	row("retransmits", u64(r.C2S.Retransmits), u64(r.S2C.Retransmits))
	row("window (raw)", strconv.Itoa(int(r.ClientWindow)), strconv.Itoa(int(r.ServerWindow)))
	b.WriteString("\n")
	label := func(l, v string) { w(" %s%s[-:-:-]%s\n", th.tagDim, pad(l, lw), v) }
	label("first seen", fmtStamp(r.FirstSeen)+"  age "+fmtAge(time.Duration(now-r.FirstSeen.UnixNano())))
	label("last seen", fmtStamp(r.LastSeen)+"  idle "+fmtAge(time.Duration(now-r.LastSeen.UnixNano())))
	rtt := "not seen (no complete handshake)"
	if r.RTT >= 0 {
		rtt = fmtRTT(r.RTT) + " (SYN to the ACK of the SYN-ACK, at the capture point)"
	}
	label("handshake RTT", rtt)
	zs, hist := r.ConnState(), r.History()
	if zs == "" {
		zs = "-"
	}
	if hist == "" {
		hist = "-"
	}
	label("conn_state", zs+"   history "+escape(hist))
	mid := "no: the handshake was seen"
	if r.Midstream {
		mid = "yes: the opening SYN was not seen, so both ends start ESTABLISHED"
	}
	label("mid-stream", mid)
	label("roles", r.Role.String())
	b.WriteString("\n")

	w(" %sTransitions[-:-:-] %s(capture time, oldest first)[-:-:-]\n", th.tagHeading, th.tagDim)
	if len(r.Transitions) == 0 {
		w(" %snone logged[-:-:-]\n", th.tagDim)
	}
	// One line per transition when the cause fits beside it, else two.
	_, _, width, _ := u.detail.GetInnerRect()
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
		w(" %s  %s  %s%s%s%s[-:-:-]\n", fmtClock(t.Time()), who, change, sep, th.tagDim, escape(t.Cause()))
	}
	return b.String()
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
