package ui

import (
	"strconv"
	"strings"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"
)

// probTable is the Problems view: one row per kind of problem, with the
// connections that have it, their services and when it was last seen.
// Enter lists those connections (problem:KIND in the filter).
type probTable struct {
	*tview.Table
	c *probContent
}

type probContent struct {
	tview.TableContentReadOnly
	u *ui
	f *frame
	w [numProbCols]int // the columns' widths, for the width drawn
}

// The Problems view's columns.
const (
	pcKind = iota
	pcConns
	pcEnded
	pcSvcs
	pcLast
	pcWhere
	numProbCols
)

var probColumns = [numProbCols]column{
	pcKind:  {name: "Problem", width: 19, help: "the kind of problem; Enter lists its connections"},
	pcConns: {name: "Conns", width: 5, right: true, help: "connections listed that have it (Enter lists them)"},
	pcEnded: {name: "Ended", width: 5, right: true, help: "connections that had it and left the table since the start"},
	pcSvcs:  {name: "Svcs", width: 4, right: true, help: "the services (server address:port) of both"},
	pcLast:  {name: "Last seen", width: 9, right: true, help: "since one last had it: now while one still open has it"},
	pcWhere: {name: "Services", help: "those services, in address order"},
}

func newProbTable(u *ui) *probTable {
	c := &probContent{u: u, f: &frame{req: &request{}}}
	t := &probTable{Table: tview.NewTable(), c: c}
	t.SetContent(c).SetFixed(1, 0).SetSelectable(true, false).SetSelectedStyle(u.theme.selected)
	t.SetSelectionChangedFunc(func(row, _ int) {
		if u.following || row < 1 || row > len(c.f.probs) {
			return
		}
		u.selKind = c.f.probs[row-1].kind
	})
	return t
}

func (t *probTable) setFrame(f *frame) { t.c.f = f }

// Draw lays the columns out for the width: the list of services takes
// what the others leave.
func (t *probTable) Draw(screen tcell.Screen) {
	_, _, w, _ := t.GetInnerRect()
	used := 0
	for i := range pcWhere {
		t.c.w[i] = max(probColumns[i].width, strlen(probColumns[i].name))
		used += t.c.w[i] + 1
	}
	t.c.w[pcWhere] = max(w-used, len(probColumns[pcWhere].name))
	t.Table.Draw(screen)
}

// MouseHandler adds double-click for the kind's connections.
func (t *probTable) MouseHandler() func(action tview.MouseAction, event *tcell.EventMouse, setFocus func(p tview.Primitive)) (bool, tview.Primitive) {
	return doubleClick(t.Table, t.c.u.openProblem)
}

func (c *probContent) GetRowCount() int    { return len(c.f.probs) + 1 }
func (c *probContent) GetColumnCount() int { return int(numProbCols) }

func (c *probContent) GetCell(row, col int) *tview.TableCell {
	if col < 0 || col >= int(numProbCols) || row < 0 || row > len(c.f.probs) {
		return nil
	}
	th := c.u.theme
	pc := &probColumns[col]
	if row == 0 {
		return &tview.TableCell{Text: alignText(pc.name, c.w[col], pc.right), MaxWidth: c.w[col], Style: th.header, NotSelectable: true}
	}
	p := &c.f.probs[row-1]
	align, style := tview.AlignLeft, th.base
	if pc.right {
		align = tview.AlignRight
	}
	var text string
	switch col {
	case pcKind:
		text, style = p.kind.String(), th.problem
	case pcConns:
		text = strconv.Itoa(p.conns)
	case pcEnded:
		text = strconv.Itoa(p.ended)
	case pcSvcs:
		text = strconv.Itoa(len(p.svcs))
		if p.more {
			text += "+"
		}
	case pcLast:
		text = "now"
		if p.last < c.f.judged {
			text = fmtAge(time.Duration(c.f.now-p.last)) + " ago"
		}
	case pcWhere:
		text = c.u.serviceList(p.svcs, c.w[col])
	}
	return &tview.TableCell{Text: escape(text), Align: align, MaxWidth: c.w[col], Style: style}
}

// serviceList lists services in at most width characters, saying how
// many more there are when they do not all fit.
func (u *ui) serviceList(svcs []endpoint, width int) string {
	var b strings.Builder
	for i, ep := range svcs {
		s := u.endpointText(ep)
		more := ""
		if i+1 < len(svcs) {
			more = " +" + strconv.Itoa(len(svcs)-i-1) + " more"
		}
		sep := 0
		if i > 0 {
			sep = 2
		}
		if b.Len()+sep+strlen(s)+strlen(more) > width && (i > 0 || strlen(s) > width) {
			if i == 0 {
				return cutLeft(s, width)
			}
			b.WriteString(" +" + strconv.Itoa(len(svcs)-i) + " more")
			return b.String()
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s)
	}
	return b.String()
}
