package ui

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// ui is one run of the terminal UI. Its unexported state fields are owned by
// the tview event goroutine: only key and mouse handlers and functions
// queued with QueueUpdateDraw touch them.
type ui struct {
	cfg    Config
	opts   options
	theme  *theme
	app    *tview.Application
	cancel context.CancelFunc

	req  atomic.Pointer[request] // the latest request, for the builder
	kick chan struct{}           // wakes the builder for a new request

	// Event goroutine state.
	frame         *frame
	view          view
	listView      view // the list the detail view returns to
	sort          colID
	desc          bool
	svcSort       svcCol
	svcDesc       bool
	filter        string
	scope         *scope
	frozen        bool
	hideClosed    bool
	onlyProblems  bool      // only the connections with a problem
	probFilter    string    // the filter the Problems view's Enter set, which Esc takes back
	selKind       diag.Kind // the selected kind in the Problems view
	helpShown     bool
	filterOpen    bool
	showNames     bool   // host names rather than numeric addresses
	selID         uint64 // the selected connection
	selSvc        svcKey // the selected service
	svcByName     bool   // Services grouped by name
	detailID      uint64
	detailKey     flows.Key
	detailRec     *flows.Record  // last record the detail view got
	detailRetired bool           // it had left the table
	detailLocal   local.Info     // its process and kernel states then
	detailProbs   []diag.Problem // its problems then
	following     bool           // the UI, not the user, is moving the selection
	barrier       bool           // a test waits for the frame to catch up
	connCols      []colID        // the connection columns on screen, for s
	svcCols       []svcCol

	// Widgets.
	root        *tview.Pages
	body        *tview.Pages
	footerPages *tview.Pages
	header      *lineView
	bar         *lineView
	footer      *lineView
	conns       *connTable
	svcs        *svcTable
	probs       *probTable
	detail      *tview.TextView
	help        *tview.TextView
	input       *tview.InputField

	started   chan struct{} // closed after the first draw
	startOnce sync.Once
}

var stylesOnce sync.Once

func run(ctx context.Context, cfg Config, o options) error {
	if cfg.Table == nil {
		return errNoTable
	}
	if o.clock == nil {
		o.clock = time.Now
	}
	if o.tick <= 0 {
		o.tick = 100 * time.Millisecond
	}
	if cfg.Retired != nil {
		cfg.Retired.setClock(cfg.Table.Now)
	}
	stylesOnce.Do(useTerminalDefaults)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u := newUI(cfg, o, cancel)
	if o.ready != nil {
		o.ready(u)
	}
	stopped := make(chan struct{})
	built := make(chan struct{})
	go func() {
		defer close(built)
		b := newBuilder(&cfg, o.clock)
		if o.incremental {
			b.inc.min = 0
		}
		u.buildLoop(ctx, b, stopped)
	}()
	go u.stopWhenDone(ctx, stopped, built)
	err := u.app.Run()
	close(stopped)
	cancel()
	<-built
	return err
}

// newUI makes the UI's widgets and the application that runs them.
func newUI(cfg Config, o options, cancel context.CancelFunc) *ui {
	u := &ui{
		cfg:     cfg,
		opts:    o,
		theme:   newTheme(noColor()),
		app:     tview.NewApplication(),
		cancel:  cancel,
		kick:    make(chan struct{}, 1),
		sort:    colAge,
		desc:    true,
		svcSort: scConns,
		svcDesc: true,
		started: make(chan struct{}),

		showNames: cfg.ShowNames && cfg.Names != nil,
	}
	u.build()
	u.publish()

	if cfg.Screen != nil {
		u.app.SetScreen(cfg.Screen)
	}
	u.app.EnableMouse(true)
	u.app.SetInputCapture(u.onKey)
	u.app.SetAfterDrawFunc(func(tcell.Screen) {
		u.startOnce.Do(func() { close(u.started) })
		if u.opts.drawn != nil {
			u.opts.drawn(u.frame.seq)
		}
		u.checkBarrier()
	})
	return u
}

// stopWhenDone stops the application once ctx is done (unless it stopped
// on its own first). It stops it only once the builder has returned
// (built), so that no update is left queued that nobody will run (tview
// #1163), and only once it runs, so that Stop does not race Run's start.
func (u *ui) stopWhenDone(ctx context.Context, stopped, built <-chan struct{}) {
	select {
	case <-ctx.Done():
	case <-stopped:
		return
	}
	<-built
	select {
	case <-u.started:
		u.app.Stop()
	case <-stopped:
	}
}

// buildLoop builds frames, on each tick and on each new request, and hands
// them over to the event goroutine until ctx is done or the application
// stops.
func (u *ui) buildLoop(ctx context.Context, b *builder, stopped <-chan struct{}) {
	defer func() {
		if p := recover(); p != nil {
			u.app.Stop() // restore the terminal before the panic is printed
			panic(p)
		}
	}()
	ticks := u.opts.ticks
	var timer *time.Timer
	if ticks == nil {
		timer = time.NewTimer(0)
		defer timer.Stop()
	}
	for {
		full := false
		var timerC <-chan time.Time
		if timer != nil {
			timerC = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-stopped:
			return
		case <-timerC:
			full = true
		case <-ticks:
			full = true
		case <-u.kick:
		}
		req := u.req.Load()
		start := time.Now()
		var f *frame
		switch {
		case b.shown == nil || full && !req.frozen && b.changed():
			f = b.refresh(req)
		case full && b.namesMoved(req):
			f = b.derived(req) // the filter may match the new names
		case full:
			f = b.refreshed(req)
		default:
			f = b.derived(req)
		}
		if full && timer != nil {
			// Refresh at most every tick, and leave the CPU idle at least
			// as long as a frame takes to build: a large table's frames
			// must not take a whole core.
			timer.Reset(max(u.opts.tick, 2*time.Since(start)))
		}
		if !u.handOver(f, stopped) {
			return
		}
		b.commit(f)
	}
}

// handOver swaps f in on the event goroutine with one QueueUpdateDraw and
// waits until it has run. It returns false if the application stopped
// first; then the goroutine that queued the update stays blocked (tview
// #1163), which happens only when the terminal fails.
func (u *ui) handOver(f *frame, stopped <-chan struct{}) bool {
	done := make(chan struct{})
	go u.app.QueueUpdateDraw(func() {
		u.swap(f)
		close(done)
	})
	select {
	case <-done:
		return true
	case <-stopped:
		return false
	}
}

// publish hands the current UI state to the builder and wakes it. It never
// blocks.
func (u *ui) publish() {
	r := &request{
		view:       u.view,
		sort:       u.sort,
		desc:       u.desc,
		svcSort:    u.svcSort,
		svcDesc:    u.svcDesc,
		filter:     u.filter,
		scope:      u.scope,
		frozen:     u.frozen,
		hideClosed: u.hideClosed,
		problems:   u.onlyProblems,
		svcByName:  u.svcByName,
		names:      u.showNames,
	}
	if u.view == viewDetail {
		r.view = u.listView
		r.detailID, r.detailKey = u.detailID, u.detailKey
	}
	u.req.Store(r)
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// swap makes f the frame shown. It runs on the event goroutine.
func (u *ui) swap(f *frame) {
	u.frame = f
	u.conns.setFrame(f)
	u.svcs.setFrame(f)
	// A table shorter than the screen makes tview follow its end, as
	// tail -f does, whatever the selection; setting the offset stops that.
	u.conns.SetOffset(u.conns.GetOffset())
	u.svcs.SetOffset(u.svcs.GetOffset())
	u.followConn()
	u.followSvc()
	u.probs.setFrame(f)
	u.followProb()
	if u.view == viewDetail && f.req.detailID == u.detailID {
		if f.detail != nil {
			u.detailRec, u.detailRetired, u.detailLocal = f.detail, f.detailRetired, f.detailLocal
			u.detailProbs = f.detailProbs
		}
		u.showDetail(f.detail == nil)
	}
}

// followConn keeps the selection on the same connection across frames.
func (u *ui) followConn() {
	f := u.frame
	t := u.conns.Table
	if len(f.order) == 0 {
		return
	}
	idx := -1
	if i, ok := f.find(u.selID); ok && f.pos[i] >= 0 {
		idx = int(f.pos[i])
	}
	if idx < 0 {
		row, _ := t.GetSelection()
		idx = min(max(row-1, 0), len(f.order)-1)
		u.selID = f.at(idx).id
	}
	if row, _ := t.GetSelection(); row != idx+1 {
		u.following = true
		t.Select(idx+1, 0)
		u.following = false
	}
}

// followProb keeps the selection on the same kind of problem across
// frames.
func (u *ui) followProb() {
	f := u.frame
	t := u.probs.Table
	if len(f.probs) == 0 {
		return
	}
	idx := -1
	for i := range f.probs {
		if f.probs[i].kind == u.selKind {
			idx = i
			break
		}
	}
	if idx < 0 {
		row, _ := t.GetSelection()
		idx = min(max(row-1, 0), len(f.probs)-1)
		u.selKind = f.probs[idx].kind
	}
	if row, _ := t.GetSelection(); row != idx+1 {
		u.following = true
		t.Select(idx+1, 0)
		u.following = false
	}
}

// followSvc keeps the selection on the same service across frames.
func (u *ui) followSvc() {
	f := u.frame
	t := u.svcs.Table
	if len(f.svcs) == 0 {
		return
	}
	idx := -1
	for i := range f.svcs {
		if f.svcs[i].key() == u.selSvc {
			idx = i
			break
		}
	}
	if idx < 0 {
		row, _ := t.GetSelection()
		idx = min(max(row-1, 0), len(f.svcs)-1)
		u.selSvc = f.svcs[idx].key()
	}
	if row, _ := t.GetSelection(); row != idx+1 {
		u.following = true
		t.Select(idx+1, 0)
		u.following = false
	}
}

// build creates the widgets.
func (u *ui) build() {
	u.header = newLineView(u.headerSegs)
	u.bar = newLineView(u.barSegs)
	u.footer = newLineView(u.footerSegs)
	u.conns = newConnTable(u)
	u.svcs = newSvcTable(u)
	u.probs = newProbTable(u)
	u.detail = tview.NewTextView().SetDynamicColors(true).SetWrap(true).SetWordWrap(true)
	u.help = tview.NewTextView().SetDynamicColors(true).SetWrap(true).SetWordWrap(true)
	u.help.SetBorder(true).SetTitle(" flowtrack: keys and columns (Esc closes) ")
	what := "address, :port, state, conn_state or problem:KIND"
	if u.cfg.Processes {
		what = "address, :port, state, conn_state, process or problem:KIND"
	}
	if u.cfg.Local != nil {
		what += "; name:text for names"
	}
	u.input = tview.NewInputField().SetLabel("/").SetFieldStyle(tcell.StyleDefault.Underline(true)).
		SetPlaceholder(what + "; Enter keeps, Esc clears").
		SetPlaceholderStyle(u.theme.dim)
	u.input.SetChangedFunc(func(text string) {
		u.filter = text
		u.publish()
	})
	u.input.SetDoneFunc(u.filterDone)

	u.body = tview.NewPages().
		AddPage("conns", u.conns, true, true).
		AddPage("services", u.svcs, true, false).
		AddPage("problems", u.probs, true, false).
		AddPage("detail", u.detail, true, false)
	u.footerPages = tview.NewPages().
		AddPage("keys", u.footer, true, true).
		AddPage("filter", u.input, true, false)
	main := tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(u.header, 1, 0, false).
		AddItem(u.bar, 1, 0, false).
		AddItem(u.body, 0, 1, true).
		AddItem(u.footerPages, 1, 0, false)
	helpBox := tview.NewFlex().
		AddItem(nil, 0, 1, false).
		AddItem(tview.NewFlex().SetDirection(tview.FlexRow).
			AddItem(nil, 0, 1, false).
			AddItem(u.help, 0, 20, true).
			AddItem(nil, 0, 1, false), 0, 30, true).
		AddItem(nil, 0, 1, false)
	u.root = tview.NewPages().
		AddPage("main", main, true, true).
		AddPage("help", helpBox, true, false)
	u.app.SetRoot(u.root, true).SetFocus(u.conns)
	u.frame = &frame{req: &request{}}
}
