package ui

import (
	"strings"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"
)

// highlight is how long a new connection's row stands out.
const highlight = 2 * time.Second

// connTable is the connection list: a tview.Table over a virtual content
// that lays its columns out for the width it is drawn at.
type connTable struct {
	*tview.Table
	c *connContent
}

// connContent is the tview.TableContent of the connection list: a
// read-only window onto the current frame that formats only the rows the
// table asks for, and caches them until the frame or the layout changes.
type connContent struct {
	tview.TableContentReadOnly
	u     *ui
	f     *frame
	lay   connLayout
	names nameWidths // widest client and server names seen on screen (names shown)
	cache map[int][]*tview.TableCell
}

// connLayout is the choice of columns for one width.
type connLayout struct {
	width int
	cols  []colID
	w     []int
	short bool // abbreviated state names
	cut   int  // characters taken from the addresses to fit
	value int  // how much the optional columns shown are worth
}

func newConnTable(u *ui) *connTable {
	c := &connContent{u: u, f: &frame{req: &request{}}, cache: map[int][]*tview.TableCell{}}
	t := &connTable{Table: tview.NewTable(), c: c}
	t.SetContent(c).SetFixed(1, 0).SetSelectable(true, false).SetSelectedStyle(u.theme.selected)
	t.SetSelectionChangedFunc(func(row, _ int) {
		if u.following || row < 1 || row > len(c.f.order) {
			return
		}
		u.selID = c.f.at(row - 1).id
	})
	return t
}

func (t *connTable) setFrame(f *frame) {
	t.c.f = f
	t.c.lay.width = -1
	clear(t.c.cache)
}

// Draw lays the columns out for the table's width, then draws it.
func (t *connTable) Draw(screen tcell.Screen) {
	_, _, w, h := t.GetInnerRect()
	c := t.c
	if c.u.showNames {
		// Widen the address columns for the names on screen, if there is
		// room.
		off, _ := t.GetOffset()
		for i := off; i < min(off+h, len(c.f.order)); i++ {
			r := c.f.at(i)
			if cw, sw := c.names.seen(0, c.u.hostPort(r.client())), c.names.seen(1, c.u.hostPort(r.server())); cw || sw {
				c.lay.width = -1
			}
		}
	}
	if w != t.c.lay.width {
		t.c.lay = layoutConns(&t.c.f.w, w, t.c.f.req.sort, optional{process: t.c.u.cfg.Processes, name: t.c.u.cfg.Local != nil && t.c.u.showNames}, c.names)
		t.c.u.connCols = t.c.lay.cols
		clear(t.c.cache)
	}
	if len(t.c.cache) > 512 {
		clear(t.c.cache)
	}
	t.Table.Draw(screen)
}

// MouseHandler adds double-click for details to the table's own handling.
func (t *connTable) MouseHandler() func(action tview.MouseAction, event *tcell.EventMouse, setFocus func(p tview.Primitive)) (bool, tview.Primitive) {
	return doubleClick(t.Table, t.c.u.openDetail)
}

// doubleClick wraps a table's mouse handling: a double click on a row
// selects it and opens it; one on the header row counts as a second click
// (which reverses the sort).
func doubleClick(tbl *tview.Table, open func()) func(action tview.MouseAction, event *tcell.EventMouse, setFocus func(p tview.Primitive)) (bool, tview.Primitive) {
	inner := tbl.MouseHandler()
	return func(action tview.MouseAction, event *tcell.EventMouse, setFocus func(p tview.Primitive)) (bool, tview.Primitive) {
		if action == tview.MouseLeftDoubleClick {
			if x, y := event.Position(); tbl.InRect(x, y) {
				row, _ := tbl.CellAt(x, y)
				if row > 0 {
					tbl.Select(row, 0)
					open()
					return true, nil
				}
				action = tview.MouseLeftClick
			}
		}
		return inner(action, event, setFocus)
	}
}

func (c *connContent) GetRowCount() int    { return len(c.f.order) + 1 }
func (c *connContent) GetColumnCount() int { return len(c.lay.cols) }

func (c *connContent) GetCell(row, col int) *tview.TableCell {
	if col < 0 || col >= len(c.lay.cols) || row < 0 || row > len(c.f.order) {
		return nil
	}
	cells, ok := c.cache[row]
	if !ok {
		if row == 0 {
			cells = c.headerCells()
		} else {
			cells = c.rowCells(row - 1)
		}
		c.cache[row] = cells
	}
	return cells[col]
}

func (c *connContent) headerCells() []*tview.TableCell {
	th := c.u.theme
	req := c.f.req
	cells := make([]*tview.TableCell, len(c.lay.cols))
	for i, id := range c.lay.cols {
		col := &columns[id]
		name := col.name
		if c.lay.short && col.short != "" {
			name = col.short
		}
		style := th.header
		if id == req.sort {
			style = th.sorted
			if strlen(name)+2 <= c.lay.w[i] {
				name += " " + sortArrow(req.desc)
			}
		}
		cells[i] = &tview.TableCell{
			Text:          escape(alignText(name, c.lay.w[i], col.right)),
			MaxWidth:      c.lay.w[i],
			Style:         style,
			NotSelectable: true,
			Clicked: func() bool {
				c.u.sortBy(id)
				return true
			},
		}
	}
	return cells
}

func sortArrow(desc bool) string {
	if desc {
		return "▼"
	}
	return "▲"
}

// alignText pads a header to its column's width, so that the header row
// fixes every column's width whatever the rows on screen hold.
func alignText(s string, w int, right bool) string {
	if n := strlen(s); n < w {
		if right {
			return strings.Repeat(" ", w-n) + s
		}
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

func (c *connContent) rowCells(i int) []*tview.TableCell {
	th := c.u.theme
	f := c.f
	r := f.at(i)
	fresh := r.born != 0 && f.wall-r.born < int64(highlight)
	cells := make([]*tview.TableCell, len(c.lay.cols))
	for j, id := range c.lay.cols {
		col := &columns[id]
		style := th.base
		switch {
		case r.ended():
			style = th.ended
		case id == colCState:
			style = th.group[r.cst.Group()]
		case id == colSState:
			style = th.group[r.sst.Group()]
		case id == colProblem && r.probs != 0:
			style = th.problem
		}
		if fresh {
			style = overlay(style, th.fresh)
		}
		align := tview.AlignLeft
		if col.right {
			align = tview.AlignRight
		}
		var text string
		switch id {
		case colClient:
			text = c.u.hostPort(r.client())
		case colServer:
			text = c.u.hostPort(r.server())
		case colName:
			text = r.text(id, f, c.lay.short)
			if r.name == 0 {
				if n := c.u.hostName(r.server().Addr()); n != "" {
					text = nameMarks[4] + " " + n
				}
			}
			if strlen(text) > c.lay.w[j] {
				text = text[:max(c.lay.w[j]-1, 0)] + "…"
			}
		default:
			text = r.text(id, f, c.lay.short)
		}
		if (id == colClient || id == colServer) && strlen(text) > c.lay.w[j] {
			text = cutLeft(text, c.lay.w[j])
		}
		cells[j] = &tview.TableCell{
			Text:     escape(text),
			Align:    align,
			MaxWidth: c.lay.w[j],
			Style:    style,
		}
	}
	return cells
}

// cutLeft shortens s to w characters by cutting its start, so that an
// address keeps its port: "…0.0.1:40001".
func cutLeft(s string, w int) string {
	r := []rune(s)
	if len(r) <= w || w < 1 {
		return s
	}
	return "…" + string(r[len(r)-w+1:])
}

// overlay adds o's background and attributes to s.
func overlay(s, o tcell.Style) tcell.Style {
	_, bg, attr := o.Decompose()
	if bg != tcell.ColorDefault {
		s = s.Background(bg)
	}
	_, _, a := s.Decompose()
	return s.Attributes(a | attr)
}

// escape keeps tview from reading "[...]" (an IPv6 address) as a style tag.
func escape(s string) string {
	if strings.IndexByte(s, '[') < 0 {
		return s
	}
	return tview.Escape(s)
}

// layoutConns chooses the columns that fit in width: the addresses, the
// states and the sort column always (addresses shortened if need be), then
// the others by priority; with abbreviated state names if that shows more
// important columns. The Process and Name columns are candidates only as
// opt says.
// Host names, longer than the numeric addresses the widths are of, get up
// to names' widths after the Age column and before the lesser ones.
func layoutConns(w *widths, width int, sorted colID, opt optional, names nameWidths) connLayout {
	long, short := tryLayout(w, width, false, sorted, opt, names), tryLayout(w, width, true, sorted, opt, names)
	best := long
	if short.cut < long.cut || short.cut == long.cut && short.value > long.value {
		best = short
	}
	best.width = width
	return best
}

// namesKeep is the priority of the room for host names.
const namesKeep = 4

// optional says which optional columns may be shown.
type optional struct{ process, name bool }

// allows reports whether column c may be shown: the Process and Name
// columns as opt says, the Problem column once a row has a problem.
func (opt optional) allows(c colID, w *widths) bool {
	switch c {
	case colProcess:
		return opt.process
	case colName:
		return opt.name
	case colProblem:
		return w[widProb] > 0
	}
	return true
}

func tryLayout(w *widths, width int, short bool, sorted colID, opt optional, names nameWidths) connLayout {
	cw := func(c colID) int {
		col := &columns[c]
		name := col.name
		if short && col.short != "" {
			name = col.short
		}
		d := w.data(c)
		if short && (c == colCState || c == colSState) {
			d = 10
		}
		return max(d, strlen(name))
	}
	total := -1
	var in [numCols]bool
	for c := range numCols {
		if columns[c].keep == 0 || c == sorted {
			in[c] = true
			total += cw(c) + 1
		}
	}
	value := 0
	var extra [2]int // room given to the names of the address columns
	for prio := 1; prio <= int(numCols); prio++ {
		for c := range numCols {
			if columns[c].keep == prio && !in[c] && total+1+cw(c) <= width && opt.allows(c, w) {
				in[c] = true
				total += cw(c) + 1
				value += 1 << (int(numCols) - prio) // any column beats all the lesser ones
			}
		}
		if prio == namesKeep {
			ws := []int{cw(colClient), cw(colServer)}
			growNames(ws, [2]int{0, 1}, names, width-total+sum(ws)+1)
			extra = [2]int{ws[0] - cw(colClient), ws[1] - cw(colServer)}
			total += extra[0] + extra[1]
		}
	}
	l := connLayout{short: short, value: value}
	for c := range numCols {
		if in[c] {
			l.cols = append(l.cols, c)
			l.w = append(l.w, cw(c))
		}
	}
	l.w[0] += extra[0] // colClient and colServer are always the first two
	l.w[1] += extra[1]
	growNames(l.w, [2]int{0, 1}, names, width) // and whatever is left over
	// Too narrow even for the essentials: shorten the addresses.
	for over := total - width; over > 0; over = sum(l.w) + len(l.w) - 1 - width {
		i := 0
		if l.w[1] > l.w[0] {
			i = 1
		}
		if l.w[i] <= 8 {
			break
		}
		l.w[i]--
		l.cut++
	}
	return l
}

func sum(s []int) int {
	n := 0
	for _, v := range s {
		n += v
	}
	return n
}
