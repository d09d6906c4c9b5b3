package ui

import (
	"github.com/gdamore/tcell/v2"
)

// onKey is the application's input capture: it looks every key up in the
// key table. It runs on the event goroutine, and like every handler it only
// changes UI state and publishes it; it never draws or queues updates.
func (u *ui) onKey(ev *tcell.EventKey) *tcell.EventKey {
	if u.opts.barrier != 0 && ev.Key() == u.opts.barrier {
		u.barrier = true
		u.checkBarrier()
		return nil
	}
	if ev.Key() == tcell.KeyCtrlC {
		u.quit()
		return nil
	}
	if u.filterOpen {
		return ev // the input field has the keys; its done func closes it
	}
	if u.helpShown {
		switch {
		case ev.Key() == tcell.KeyEscape, ev.Key() == tcell.KeyEnter, ev.Rune() == '?':
			u.toggleHelp()
		case ev.Rune() == 'q':
			u.quit()
		default:
			return ev // scroll the help
		}
		return nil
	}
	a := u.lookup(ev)
	switch {
	case a == nil:
		return nil // unknown keys do nothing (no sideways scrolling)
	case a.do == nil:
		return ev // movement: the focused table or text view handles it
	}
	a.do(u)
	return nil
}

// checkBarrier tells a waiting test that the UI has settled.
func (u *ui) checkBarrier() {
	if u.barrier && u.frame.req == u.req.Load() {
		u.barrier = false
		if u.opts.settled != nil {
			u.opts.settled()
		}
	}
}

func (u *ui) quit() { u.cancel() }

func (u *ui) toggleHelp() {
	u.helpShown = !u.helpShown
	if u.helpShown {
		u.help.SetText(u.helpText()).ScrollToBeginning()
		u.root.ShowPage("help")
		u.app.SetFocus(u.help)
		return
	}
	u.root.HidePage("help")
	u.focusBody()
}

func (u *ui) focusBody() {
	switch u.view {
	case viewConns:
		u.app.SetFocus(u.conns)
	case viewServices:
		u.app.SetFocus(u.svcs)
	case viewDetail:
		u.app.SetFocus(u.detail)
	case viewProblems:
		u.app.SetFocus(u.probs)
	}
}

// setView switches the body to view v.
func (u *ui) setView(v view) {
	u.view = v
	switch v {
	case viewConns:
		u.body.SwitchToPage("conns")
	case viewServices:
		u.body.SwitchToPage("services")
	case viewDetail:
		u.body.SwitchToPage("detail")
	case viewProblems:
		u.body.SwitchToPage("problems")
	}
	u.focusBody()
	u.publish()
}

func (u *ui) openDetail() {
	f := u.frame
	row, _ := u.conns.GetSelection()
	if row < 1 || row > len(f.order) {
		return
	}
	r := f.at(row - 1)
	u.selID = r.id
	u.detailID, u.detailKey, u.detailRec = r.id, r.key, nil
	u.listView = u.view
	u.detail.SetText("").ScrollToBeginning()
	u.setView(viewDetail)
}

func (u *ui) closeDetail() {
	u.detailID, u.detailRec = 0, nil
	u.setView(u.listView)
}

func (u *ui) openService() {
	f := u.frame
	row, _ := u.svcs.GetSelection()
	if row < 1 || row > len(f.svcs) {
		return
	}
	s := &f.svcs[row-1]
	u.selSvc = s.key()
	u.scope = &scope{ep: s.ep}
	if s.name != 0 {
		u.scope = &scope{name: f.procs.names[s.name]}
	}
	u.selID = 0
	u.setView(viewConns)
}

// clickView switches to the view whose tab was clicked.
func (u *ui) clickView(v view) {
	if v == u.view || u.helpShown || u.filterOpen {
		return
	}
	if u.view == viewDetail {
		u.detailID, u.detailRec = 0, nil
	}
	u.setView(v)
}

// viewCycle is the order Tab goes through the views in.
var viewCycle = [...]view{viewConns, viewServices, viewProblems}

// viewNames name the views in the footer.
var viewNames = [...]string{viewConns: "connections", viewServices: "services", viewProblems: "problems", viewDetail: "details"}

// nextView returns the view step places after v in viewCycle.
func nextView(v view, step int) view {
	for i, w := range viewCycle {
		if w == v {
			return viewCycle[(i+step+len(viewCycle))%len(viewCycle)]
		}
	}
	return viewConns
}

func (u *ui) nextView() { u.setView(nextView(u.view, 1)) }
func (u *ui) prevView() { u.setView(nextView(u.view, -1)) }

// openProblem lists the connections with the selected kind of problem:
// the connection view, filtered by problem:KIND.
func (u *ui) openProblem() {
	f := u.frame
	row, _ := u.probs.GetSelection()
	if row < 1 || row > len(f.probs) {
		return
	}
	u.selKind = f.probs[row-1].kind
	u.scope = nil
	u.probFilter = "problem:" + u.selKind.String()
	u.input.SetText(u.probFilter) // its changed func sets the filter and publishes
	u.selID = 0
	u.setView(viewConns)
}

func (u *ui) toggleProblems() {
	u.onlyProblems = !u.onlyProblems
	u.publish()
}

// escape clears the filter, and then the service the list is limited to;
// a problem's connections (openProblem) go back to the Problems view.
func (u *ui) escape() {
	switch {
	case u.filter != "" && u.filter == u.probFilter && u.view == viewConns:
		u.probFilter = ""
		u.input.SetText("")
		u.setView(viewProblems)
		return
	case u.filter != "":
		u.filter = ""
		u.input.SetText("")
	case u.scope != nil && u.view == viewConns:
		u.scope = nil
		u.setView(viewServices)
		return
	default:
		return
	}
	u.publish()
}

func (u *ui) openFilter() {
	u.filterOpen = true
	u.input.SetText(u.filter)
	u.footerPages.SwitchToPage("filter")
	u.app.SetFocus(u.input)
}

// filterDone closes the filter input: Enter keeps the filter, Esc clears
// it.
func (u *ui) filterDone(k tcell.Key) {
	if k == tcell.KeyEscape {
		u.input.SetText("") // calls the changed func, which publishes
	}
	u.filterOpen = false
	u.footerPages.SwitchToPage("keys")
	u.focusBody()
}

// cycleSort sorts by the next column on screen, in its natural direction.
func (u *ui) cycleSort() {
	if u.view == viewServices {
		next := u.svcCols[0]
		for i, c := range u.svcCols {
			if c == u.svcSort && i+1 < len(u.svcCols) {
				next = u.svcCols[i+1]
			}
		}
		u.sortServicesBy(next)
		return
	}
	next := u.connCols[0]
	for i, c := range u.connCols {
		if c == u.sort && i+1 < len(u.connCols) {
			next = u.connCols[i+1]
		}
	}
	u.sortBy(next)
}

// sortBy sorts the connections by column c; by c again reverses.
func (u *ui) sortBy(c colID) {
	if c == u.sort {
		u.desc = !u.desc
	} else {
		u.sort, u.desc = c, columns[c].desc
	}
	u.publish()
}

func (u *ui) sortServicesBy(c svcCol) {
	if c == u.svcSort {
		u.svcDesc = !u.svcDesc
	} else {
		u.svcSort, u.svcDesc = c, svcColumns[c].desc
	}
	u.publish()
}

func (u *ui) reverseSort() {
	if u.view == viewServices {
		u.svcDesc = !u.svcDesc
	} else {
		u.desc = !u.desc
	}
	u.publish()
}

func (u *ui) toggleFreeze() {
	u.frozen = !u.frozen
	u.publish()
}

func (u *ui) toggleByName() {
	u.svcByName = !u.svcByName
	u.publish()
}

func (u *ui) toggleClosed() {
	u.hideClosed = !u.hideClosed
	u.publish()
}

// speeds are the replay speeds + and - step through; 0 is as fast as
// possible.
var speeds = []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 0}

func (u *ui) faster() {
	s := u.cfg.Replay.Speed()
	if s <= 0 {
		return
	}
	for _, v := range speeds {
		if v > s || v == 0 {
			u.cfg.Replay.SetSpeed(v)
			return
		}
	}
}

func (u *ui) slower() {
	s := u.cfg.Replay.Speed()
	if s <= 0 {
		u.cfg.Replay.SetSpeed(speeds[len(speeds)-2])
		return
	}
	for i := len(speeds) - 2; i >= 0; i-- {
		if speeds[i] < s {
			u.cfg.Replay.SetSpeed(speeds[i])
			return
		}
	}
}

func (u *ui) togglePause() { u.cfg.Replay.SetPaused(!u.cfg.Replay.Paused()) }

func (u *ui) step() {
	if !u.cfg.Replay.Paused() {
		u.cfg.Replay.SetPaused(true)
	}
	u.cfg.Replay.Step()
}
