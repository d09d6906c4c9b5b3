package ui

import (
	"path/filepath"
	"strconv"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"
)

// lineView is a one-line primitive drawn from styled segments computed at
// draw time for the width available: the header, the view bar and the
// footer.
type lineView struct {
	*tview.Box
	segs  func(width int) []seg
	drawn []seg // as last drawn, with their positions
}

type seg struct {
	text  string
	style tcell.Style
	click func() // what a click on it does, if anything
	x     int    // where it was drawn
}

func newLineView(segs func(int) []seg) *lineView {
	return &lineView{Box: tview.NewBox(), segs: segs}
}

func (l *lineView) Draw(screen tcell.Screen) {
	l.Box.DrawForSubclass(screen, l)
	x, y, w, _ := l.GetInnerRect()
	end := x + w
	l.drawn = l.segs(w)
	for i := range l.drawn {
		s := &l.drawn[i]
		s.x = x
		for _, r := range s.text {
			if x >= end {
				return
			}
			screen.SetContent(x, y, r, nil, s.style)
			x++
		}
	}
}

// MouseHandler runs the click action of the segment clicked.
func (l *lineView) MouseHandler() func(action tview.MouseAction, event *tcell.EventMouse, setFocus func(p tview.Primitive)) (bool, tview.Primitive) {
	return l.WrapMouseHandler(func(action tview.MouseAction, event *tcell.EventMouse, _ func(p tview.Primitive)) (bool, tview.Primitive) {
		x, y := event.Position()
		if action != tview.MouseLeftClick && action != tview.MouseLeftDoubleClick || !l.InRect(x, y) {
			return false, nil
		}
		for _, s := range l.drawn {
			if x >= s.x && x < s.x+strlen(s.text) && s.click != nil {
				s.click()
				return true, nil
			}
		}
		return false, nil
	})
}

// part is one piece of a line: its text, a shorter form for narrow
// screens, and its priority. fit shortens, then drops, the parts of the
// highest priority first; it never drops a part of priority 0.
type part struct {
	text, short string
	style       tcell.Style
	prio        int
	click       func()
	// path says text is a file path: fit shortens it before anything else,
	// to its base name, then, once the parts of priority 2 and up are
	// short, with an ellipsis in the middle.
	path bool
}

// minPath is the fewest characters an ellipsis leaves of a path.
const minPath = 12

// fit joins parts with two spaces, shortening and then dropping the
// least important ones until the line fits in width.
func fit(parts []part, width int, lead string) []seg {
	over := func() int {
		n := strlen(lead)
		for i, p := range parts {
			if i > 0 {
				n += 2
			}
			n += strlen(p.text)
		}
		return n - width
	}
	for i := range parts {
		if parts[i].path && over() > 0 {
			parts[i].text = filepath.Base(parts[i].text)
		}
	}
	for prio := 9; prio >= 0 && over() > 0; prio-- {
		if prio == 1 {
			for i := range parts {
				if n := over(); parts[i].path && n > 0 {
					parts[i].text = ellipsize(parts[i].text, max(strlen(parts[i].text)-n, minPath))
				}
			}
			if over() <= 0 {
				break
			}
		}
		for i := range parts {
			if parts[i].prio == prio && parts[i].short != "" {
				parts[i].text = parts[i].short
			}
		}
	}
	for prio := 9; prio > 0 && over() > 0; prio-- {
		kept := parts[:0]
		for _, p := range parts {
			if p.prio != prio {
				kept = append(kept, p)
			}
		}
		parts = kept
	}
	segs := []seg{{text: lead}}
	for i, p := range parts {
		if i > 0 {
			segs = append(segs, seg{text: "  "})
		}
		segs = append(segs, seg{text: p.text, style: p.style, click: p.click})
	}
	return segs
}

// ellipsize shortens s to n characters with an ellipsis in the middle,
// keeping a little more of the end (a file's extension, its date).
func ellipsize(s string, n int) string {
	r := []rune(s)
	if len(r) <= n || n < 3 {
		return s
	}
	head := (n - 1) / 2
	tail := n - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// headerSegs is the first line: the capture's source and state.
func (u *ui) headerSegs(width int) []seg {
	th := u.theme
	h := &u.frame.head
	st := &h.st
	var parts []part
	if st.Err != "" {
		parts = append(parts, part{text: "error: " + st.Err, style: th.warn})
	}
	src := part{text: st.Source, style: th.key, prio: 1, path: !st.Live}
	switch {
	case st.Source == "":
		src.text, src.path = "flowtrack", false
	case st.Live:
		src.text += " (live)"
	}
	parts = append(parts, src)
	if st.Filter != "" {
		parts = append(parts, part{text: "filter " + st.Filter, prio: 6})
	}
	ct := time.Unix(0, h.capture)
	if h.capture <= 0 {
		parts = append(parts, part{text: "waiting for packets", style: th.base, prio: 2})
	} else {
		parts = append(parts, part{text: ct.UTC().Format("2006-01-02 15:04:05.000"), short: ct.UTC().Format("15:04:05"), prio: 2})
	}
	if p, ok := u.progressPart(st); ok {
		parts = append(parts, p)
	}
	parts = append(parts, part{
		text:  fmtRate(h.pps) + " pkt/s " + fmtRate(h.bps) + "B/s",
		short: fmtRate(h.pps) + " pkt/s",
		prio:  4,
	}, part{ // what a person watches: shortened last, never dropped
		text:  strconv.Itoa(h.active) + " active / " + strconv.FormatUint(h.total, 10) + " connections",
		short: strconv.Itoa(h.active) + "/" + strconv.FormatUint(h.total, 10) + " conns",
		prio:  0,
	})
	parts = u.appendWarnings(parts, h)
	if h.unshown > 0 {
		parts = append(parts, part{text: fmtCount(h.unshown) + " ended unseen", style: th.dim, prio: 7})
	}
	return fit(append(parts, processParts(st, th)...), width, " ")
}

// progressPart says how far a replay is, or that the capture ended; ok is
// false for a live capture still running.
func (u *ui) progressPart(st *Status) (p part, ok bool) {
	th := u.theme
	r := u.cfg.Replay
	switch {
	case r == nil && !st.Done:
		return p, false
	case r == nil && st.Live:
		return part{text: "capture stopped", style: th.key, prio: 1}, true
	case r == nil:
		return part{text: "end of input", style: th.key, prio: 1}, true
	case st.Done:
		return part{text: "end of file", style: th.key, prio: 1}, true
	case r.Paused():
		return part{text: "PAUSED " + fmtSpeed(r.Speed()), short: "PAUSED", style: th.warn, prio: 1}, true
	}
	t := "replay " + fmtSpeed(r.Speed())
	if st.Progress > 0 {
		t += " " + strconv.Itoa(int(st.Progress*100)) + "%"
	}
	return part{text: t, short: fmtSpeed(r.Speed()), prio: 3}, true
}

// appendWarnings appends what was lost or doubtful: drops, malformed
// packets, evictions, and how often this host's kernel confirmed an
// inferred state.
func (u *ui) appendWarnings(parts []part, h *header) []part {
	th := u.theme
	st := &h.st
	if st.Dropped > 0 {
		parts = append(parts, part{text: "dropped " + strconv.FormatUint(st.Dropped, 10), short: "drop " + fmtCount(st.Dropped), style: th.warn, prio: 0})
	}
	if st.Malformed > 0 {
		parts = append(parts, part{text: "malformed " + strconv.FormatUint(st.Malformed, 10), short: "bad " + fmtCount(st.Malformed), style: th.warn, prio: 0})
	}
	if h.evicted > 0 {
		parts = append(parts, part{text: "evicted " + strconv.FormatUint(h.evicted, 10), short: "evict " + fmtCount(h.evicted), style: th.warn, prio: 0})
	}
	if n := st.KernelAgree + st.KernelDisagree; n > 0 {
		p := part{
			text:  "kernel agreed " + strconv.FormatUint(st.KernelAgree, 10) + "/" + strconv.FormatUint(n, 10),
			short: "kernel " + fmtCount(st.KernelAgree) + "/" + fmtCount(n),
			prio:  5,
		}
		if st.KernelDisagree > 0 {
			p.style = th.warn
		}
		parts = append(parts, p)
	}
	return parts
}

// barSegs is the second line: the views, and what limits or freezes the
// one shown.
func (u *ui) barSegs(width int) []seg {
	th := u.theme
	f := u.frame
	tab := func(name string, active bool, v view) part {
		p := part{text: " " + name + " ", style: th.bar, click: func() { u.clickView(v) }}
		if active {
			p.style = th.barActive
		}
		return p
	}
	var parts []part
	conns := "Connections " + strconv.Itoa(len(f.order))
	svcs := "Services"
	if u.view == viewServices {
		svcs += " " + strconv.Itoa(len(f.svcs))
	}
	probs := "Problems"
	if u.view == viewProblems {
		probs += " " + strconv.Itoa(len(f.probs))
	}
	parts = append(parts, tab(conns, u.view == viewConns, viewConns), tab(svcs, u.view == viewServices, viewServices),
		tab(probs, u.view == viewProblems, viewProblems))
	if u.view == viewDetail {
		parts = append(parts, tab("Connection #"+strconv.FormatUint(u.detailID, 10), true, viewDetail))
	}
	f2 := f.req
	switch u.view {
	case viewProblems:
		parts = append(parts, part{text: "most severe first", style: th.dim, prio: 3})
	case viewServices:
		parts = append(parts, part{text: "sorted by " + svcColumns[f2.svcSort].name + " " + sortArrow(f2.svcDesc), style: th.dim, prio: 3})
	default:
		parts = append(parts, part{text: "sorted by " + columns[f2.sort].name + " " + sortArrow(f2.desc), style: th.dim, prio: 3})
	}
	if u.scope != nil {
		parts = append(parts, part{text: "service " + u.scope.String(), style: th.key, prio: 1})
	}
	if u.filter != "" {
		parts = append(parts, part{text: "filter: " + u.filter, style: th.key, prio: 1})
	}
	if u.frozen {
		parts = append(parts, part{text: "FROZEN", style: th.warn, prio: 0})
	}
	if u.hideClosed {
		parts = append(parts, part{text: "closed hidden", short: "-closed", style: th.dim, prio: 2})
	}
	if u.onlyProblems {
		parts = append(parts, part{text: "problems only", short: "!only", style: th.key, prio: 1})
	}
	return fit(parts, width, "")
}

// footerSegs is the last line: key hints from the key table.
func (u *ui) footerSegs(width int) []seg {
	th := u.theme
	segs := []seg{{text: " ", style: th.base}}
	n := 1
	for i, h := range u.hints() {
		add := strlen(h.key) + 1 + strlen(h.label)
		if i > 0 {
			add += 2
		}
		if n+add > width {
			break
		}
		if i > 0 {
			segs = append(segs, seg{text: "  ", style: th.base})
		}
		var click func()
		if do := h.a.do; do != nil {
			click = func() { do(u) }
		}
		segs = append(segs, seg{text: h.key, style: th.key, click: click}, seg{text: " " + h.label, style: th.base, click: click})
		n += add
	}
	return segs
}

// processParts says in the header which source names processes (with a
// warning when it is not eBPF) and how many eBPF events were lost.
func processParts(st *Status, th *theme) []part {
	var parts []part
	if st.LostEvents > 0 {
		parts = append(parts, part{text: "lost events " + strconv.FormatUint(st.LostEvents, 10), short: "lost " + fmtCount(st.LostEvents), style: th.warn, prio: 0})
	}
	if st.Processes != "" {
		// Shortened first: the detail view and the summary say it in full.
		p := part{text: st.Processes, short: st.ProcessesShort, style: th.dim, prio: 7}
		if st.ProcessesWarn {
			p.style = th.warn
		}
		parts = append(parts, p)
	}
	return parts
}
