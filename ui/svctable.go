package ui

import (
	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"
)

// svcTable is the services list: one row per server endpoint.
type svcTable struct {
	*tview.Table
	c *svcContent
}

type svcContent struct {
	tview.TableContentReadOnly
	u     *ui
	f     *frame
	width int
	cols  []svcCol
	w     []int
	names nameWidths // widest server name seen on screen (names shown)
	cache map[int][]*tview.TableCell
}

func newSvcTable(u *ui) *svcTable {
	c := &svcContent{u: u, f: &frame{req: &request{}}, cache: map[int][]*tview.TableCell{}}
	t := &svcTable{Table: tview.NewTable(), c: c}
	t.SetContent(c).SetFixed(1, 0).SetSelectable(true, false).SetSelectedStyle(u.theme.selected)
	t.SetSelectionChangedFunc(func(row, _ int) {
		if u.following || row < 1 || row > len(c.f.svcs) {
			return
		}
		u.selSvc = c.f.svcs[row-1].key()
	})
	return t
}

func (t *svcTable) setFrame(f *frame) {
	t.c.f = f
	t.c.width = -1
	clear(t.c.cache)
}

func (t *svcTable) Draw(screen tcell.Screen) {
	_, _, w, h := t.GetInnerRect()
	if t.c.u.showNames {
		// Widen the column for the names on screen, if there is room.
		off, _ := t.GetOffset()
		for i := off; i < min(off+h, len(t.c.f.svcs)); i++ {
			if t.c.f.svcs[i].name == 0 && t.c.names.seen(0, t.c.u.endpointText(t.c.f.svcs[i].ep)) {
				t.c.width = -1
			}
		}
	}
	if w != t.c.width {
		t.c.layout(w)
		t.c.u.svcCols = t.c.cols
		clear(t.c.cache)
	}
	t.Table.Draw(screen)
}

// MouseHandler adds double-click for the service's connections.
func (t *svcTable) MouseHandler() func(action tview.MouseAction, event *tcell.EventMouse, setFocus func(p tview.Primitive)) (bool, tview.Primitive) {
	return doubleClick(t.Table, t.c.u.openService)
}

// layout chooses the columns that fit in width, by priority.
func (c *svcContent) layout(width int) {
	cw := func(s svcCol) int {
		d := svcColumns[s].width
		if s == scServer {
			d = c.f.svcW
		}
		return max(d, strlen(svcColumns[s].name))
	}
	var in [numSvcCols]bool
	total := -1
	for prio := 0; prio <= int(numSvcCols); prio++ {
		for s := range numSvcCols {
			if svcColumns[s].keep == prio && !in[s] && (prio == 0 || s == c.f.req.svcSort || total+1+cw(s) <= width) {
				in[s] = true
				total += cw(s) + 1
			}
		}
	}
	c.width, c.cols, c.w = width, c.cols[:0], c.w[:0]
	for s := range numSvcCols {
		if in[s] {
			c.cols = append(c.cols, s)
			c.w = append(c.w, cw(s))
		}
	}
	if over := total - width; over > 0 {
		c.w[0] = max(c.w[0]-over, 8)
	}
	if c.u.showNames {
		growNames(c.w, [2]int{0, -1}, c.names, width)
	}
}

func (c *svcContent) GetRowCount() int    { return len(c.f.svcs) + 1 }
func (c *svcContent) GetColumnCount() int { return len(c.cols) }

func (c *svcContent) GetCell(row, col int) *tview.TableCell {
	if col < 0 || col >= len(c.cols) || row < 0 || row > len(c.f.svcs) {
		return nil
	}
	cells, ok := c.cache[row]
	if !ok {
		if len(c.cache) > 512 {
			clear(c.cache)
		}
		cells = c.cells(row)
		c.cache[row] = cells
	}
	return cells[col]
}

func (c *svcContent) cells(row int) []*tview.TableCell {
	th := c.u.theme
	req := c.f.req
	cells := make([]*tview.TableCell, len(c.cols))
	for j, id := range c.cols {
		col := &svcColumns[id]
		align := tview.AlignLeft
		if col.right {
			align = tview.AlignRight
		}
		if row == 0 {
			name, style := col.name, th.header
			if id == req.svcSort {
				style = th.sorted
				if strlen(name)+2 <= c.w[j] {
					name += " " + sortArrow(req.svcDesc)
				}
			}
			cells[j] = &tview.TableCell{
				Text:          escape(alignText(name, c.w[j], col.right)),
				MaxWidth:      c.w[j],
				Style:         style,
				NotSelectable: true,
				Clicked: func() bool {
					c.u.sortServicesBy(id)
					return true
				},
			}
			continue
		}
		s := &c.f.svcs[row-1]
		style := th.base
		if g := int(id - scConnecting); id >= scConnecting && id <= scClosed && s.groups[g] > 0 {
			style = th.group[[4]int{1, 2, 3, 0}[g]]
		}
		if id == scProblems && s.probs > 0 {
			style = th.problem
		}
		text := s.text(id)
		if id == scServer {
			text = c.u.endpointText(s.ep)
			if s.name != 0 {
				text = c.f.procs.names[s.name]
			}
		}
		if id == scServer && strlen(text) > c.w[j] {
			text = cutLeft(text, c.w[j])
		}
		cells[j] = &tview.TableCell{
			Text:     escape(text),
			Align:    align,
			MaxWidth: c.w[j],
			Style:    style,
		}
	}
	return cells
}
