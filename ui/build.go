package ui

import (
	"bytes"
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// request is what the UI asks the builder for: every piece of UI state that
// changes what a frame holds. The event goroutine publishes a new request
// on each change; a published request is never modified.
type request struct {
	view       view
	sort       colID
	desc       bool
	svcSort    svcCol
	svcDesc    bool
	filter     string
	scope      *scope // the service the connection list is limited to
	frozen     bool
	hideClosed bool
	problems   bool   // only the connections with a problem
	svcByName  bool   // the Services view groups connections by name where they have one
	names      bool   // host names shown: the filter matches them too
	detailID   uint64 // the connection the detail view shows
	detailKey  flows.Key
}

// frame is one immutable, ready-to-draw state of the UI's data. The builder
// never writes to a frame once handed over.
type frame struct {
	req    *request
	seq    uint64 // the builder numbers its frames
	now    int64  // capture time of the snapshot, Unix ns
	judged int64  // the table's clock then, as of which problems were judged
	wall   int64  // the builder's clock at the snapshot, for new-row highlights
	rows   []row  // every connection in the table and every lingering retired one, by ID
	order  []int32
	pos    []int32 // pos[i] is the index in order of rows[i], or -1
	w      widths
	svcs   []service
	svcW   int           // widest service name
	detail *flows.Record // nil if not asked for, or gone
	// detailRetired says the detail's connection has left the table.
	detailRetired bool
	detailLocal   local.Info     // the detail's process and kernel states (Config.Local)
	detailProbs   []diag.Problem // the detail's problems, in full
	probs         []probRow      // the Problems view's rows (when it is shown)
	procs         procNames
	head          header

	newRows, newOrder bool   // which builder buffers this frame took
	rowsSeq           uint64 // seq of the frame that built rows

	// What an incremental frame (incremental.go) builds on.
	keys    []uint64 // the sort key of each entry of order
	exact   bool     // keys alone give order (no run was refined)
	touched []int32  // rows this frame changed, by index; nil after a full frame
	layout  bool     // the rows moved since the last frame: not just changed or appended
	gone    int      // rows marked rowGone
}

// header is the capture status shown on the first line.
type header struct {
	st       Status
	capture  int64 // capture time, Unix ns
	pps, bps float64
	active   int    // connections in the table
	total    uint64 // connections ever opened
	unshown  uint64 // retired records dropped by the bounded sink
	evicted  uint64 // connections evicted to respect the table's bound
}

// find returns the index of the row with the given ID.
func (f *frame) find(id uint64) (int, bool) {
	i, ok := slices.BinarySearchFunc(f.rows, id, func(r row, id uint64) int { return cmp.Compare(r.id, id) })
	return i, ok && f.rows[i].flags&rowGone == 0
}

// at returns the row at position i of the view order.
func (f *frame) at(i int) *row { return &f.rows[f.order[i]] }

// builder turns snapshots of the flow table into frames. It runs on one
// goroutine; its buffers are reused from frame to frame, double-buffered
// against the frame the UI shows.
type builder struct {
	table   *flows.Table
	retired *Retired
	status  func() Status
	linger  int64
	clock   func() time.Time
	local   local.Lookup
	listen  func() []Listener
	names   Names
	judge   *diag.Judge
	judgeAt time.Time // the table's clock at the last snapshot: problems are judged as of it
	usual   usualRTTs // the services' usual handshake RTTs, for slow-connect
	tally   probTally // the problems of the connections that left the table

	procs    procTable
	namesVer uint64 // the names' version the shown frame was filtered with

	items     []sortItem
	scratch   []sortItem
	rowBuf    [2][]row
	rowCur    int // rowBuf[rowCur] is what the shown frame uses
	ordBuf    [2][]int32
	posBuf    [2][]int32
	keyBuf    [2][]uint64 // sort keys of ordBuf
	inc       incState    // incremental.go
	svc       svcState    // the services of the last frame that showed them
	ordCur    int
	svcIdx    []int32
	rank      []uint32
	lingering []retiredRec
	shown     *frame
	builds    int
	seq       uint64

	prevPkts, prevBytes uint64
	prevAt              int64
	pps, bps            float64
	live                bool      // a live capture, still running
	sig                 [4]uint64 // what the last full frame saw; see changed
}

func newBuilder(cfg *Config, clock func() time.Time) *builder {
	b := &builder{
		table:   cfg.Table,
		retired: cfg.Retired,
		status:  cfg.Status,
		linger:  int64(cfg.Linger),
		clock:   clock,
		local:   cfg.Local,
		listen:  cfg.Listeners,
		names:   cfg.Names,
		judge:   cfg.Judge,
	}
	if b.judge == nil {
		b.judge = diag.New(diag.Config{})
	}
	b.inc.min, b.inc.fullEvery = incrementalFrom, fullEvery
	if b.retired == nil {
		b.retired = NewRetired(0)
	}
	return b
}

// changed reports whether the table may have changed since the last full
// frame: a new packet, connection or retired record. A finished or paused
// replay does not need a new snapshot every tick (a large table's is
// costly). A running live capture always has: its clock goes on.
func (b *builder) changed() bool {
	var st Status
	if b.status != nil {
		st = b.status()
	}
	sig := [4]uint64{uint64(b.table.Now().UnixNano()), b.table.Opened(), st.Packets, uint64(b.retired.waiting())}
	return st.Live && !st.Done || sig != b.sig
}

// newFrame starts a frame with new rows: numbered, with the capture status
// and the time of its snapshot.
func (b *builder) newFrame(req *request) *frame {
	b.seq++
	f := &frame{req: req, seq: b.seq, rowsSeq: b.seq, wall: b.clock().UnixNano(), newRows: true, newOrder: true}
	b.poll(&f.head)
	b.judgeAt = b.table.Now()
	f.now = b.judgeAt.UnixNano()
	f.judged = f.now
	if b.live {
		f.now = max(f.now, f.head.capture)
	}
	return f
}

// saw records what the table had when f took its rows (see changed).
func (b *builder) saw(f *frame) {
	b.sig = [4]uint64{uint64(b.table.Now().UnixNano()), b.table.Opened(), f.head.st.Packets, 0}
}

// full builds a frame from a new snapshot of the table.
func (b *builder) full(req *request) *frame {
	f := b.newFrame(req)
	b.takeRetired(f.now)
	if len(b.procs.names) > maxProcNames {
		b.procs.reset() // before any row of this frame refers to it
	}
	rows, upto := b.snapshot()
	b.saw(f)
	rows = b.addLingering(rows, upto)
	f.procs = b.procs.view()
	b.sortByID(rows)
	rows = b.mergeShown(f, rows)
	b.usual.update(rows)
	b.rowBuf[1-b.rowCur] = rows
	f.rows = rows
	f.layout = true
	b.builds++
	b.inc.full(b, rows)
	b.derive(f, req)
	return f
}

// snapshot converts each record of the table to a row as the table hands
// it over, without a copy of them all (a Record is several times the size
// of its row). Connections opened from here on wait for the next frame,
// so that an incremental one finds them all newer than these rows: upto
// is the last ID taken.
func (b *builder) snapshot() (rows []row, upto uint64) {
	rows = sized(b.rowBuf[1-b.rowCur], b.table.Len()+len(b.lingering)+1024)
	upto = uint64(math.MaxUint64)
	if b.table.TracksChanges() {
		upto = b.table.IDMark()
	}
	b.table.EachSnapshotUpTo(upto, func(rec *flows.Record) {
		rows = b.appendRow(rows, rec, false)
	})
	return rows, upto
}

// appendRow appends the row of rec to rows, retired or not, with its local
// process.
func (b *builder) appendRow(rows []row, rec *flows.Record, retired bool) []row {
	rows = append(rows, row{})
	r := &rows[len(rows)-1]
	r.setRecord(rec, retired)
	b.setLocal(r, rec)
	b.judgeRow(r, rec)
	return rows
}

// addLingering appends the rows of the retired connections lingering on
// screen (those up to the snapshot's last ID, upto: the others wait for
// the next frame).
func (b *builder) addLingering(rows []row, upto uint64) []row {
	for i := range b.lingering {
		l := &b.lingering[i]
		if l.shown = l.rec.ID <= upto; !l.shown {
			continue
		}
		rows = b.appendRow(rows, &l.rec, true)
	}
	return rows
}

// sortByID puts rows in ID order, stably: a connection both in the table
// and lingering has its table row first.
func (b *builder) sortByID(rows []row) {
	n := len(rows)
	items := sized(b.items, n)
	for i := range rows {
		items = append(items, sortItem{rows[i].id, uint32(i)})
	}
	sorted, scratch := radixSort(items, b.scratch)
	perm := sized(b.rank, n)[:n]
	for j, it := range sorted {
		perm[j] = it.i
	}
	permute(rows, perm)
	b.rank = perm
	b.items, b.scratch = sorted[:0], scratch
}

// permute moves the elements of s in place so that position j takes the
// element that was at perm[j], a cycle of the permutation at a time: rows
// are large, and a sorted copy of a million would be as large again. It
// overwrites perm.
func permute[T any](s []T, perm []uint32) {
	const done = ^uint32(0)
	for i := range perm {
		if perm[i] == done {
			continue
		}
		tmp := s[i]
		j := i
		for {
			k := perm[j]
			perm[j] = done
			if int(k) == i {
				s[j] = tmp
				break
			}
			s[j] = s[k]
			j = int(k)
		}
	}
}

// mergeShown merges rows with the rows shown, both in ID order, for rates
// and first sightings, and lists the rows with rates in f.touched (the
// next frame must see them fall to zero). A connection both in the table
// and retired (it left the table between the two copies) keeps its
// retired row, the later one.
func (b *builder) mergeShown(f *frame, rows []row) []row {
	var prev []row
	var dt float64
	if b.shown != nil {
		prev = b.shown.rows
		dt = float64(f.now-b.shown.now) / 1e9
	}
	out, p := 0, 0
	touched := b.inc.touchBuf[1-b.rowCur][:0]
	for i := range rows {
		if out > 0 && rows[out-1].id == rows[i].id {
			out--
		}
		if out != i {
			rows[out] = rows[i]
		}
		r := &rows[out]
		out++
		for p < len(prev) && prev[p].id < r.id {
			p++
		}
		var before [2]uint64
		switch {
		case p < len(prev) && prev[p].id == r.id && prev[p].flags&rowGone == 0:
			r.born = prev[p].born
			before = prev[p].bytes
		case b.builds > 0:
			r.born = f.wall
		}
		if r.setRate(before, dt) {
			touched = append(touched, int32(out-1))
		}
	}
	b.inc.touchBuf[1-b.rowCur], f.touched = touched, touched
	return rows[:out]
}

// sized returns s emptied, with room for n elements: grown with some slack
// rather than by doubling, and shrunk when it is far too large, so that a
// burst of connections does not hold memory for ever.
func sized[T any](s []T, n int) []T {
	if c := cap(s); c < n || c > 4*n && c > 1<<16 {
		return make([]T, 0, n+n/8)
	}
	return s[:0]
}

// takeRetired moves the records retired since the last frame into the
// lingering set, stamped with the capture time, and expires those older
// than the linger. It returns the IDs of the expired ones that had rows,
// for an incremental frame to drop (a full frame has no use for them).
func (b *builder) takeRetired(now int64) []uint64 {
	n := len(b.lingering)
	b.lingering = b.retired.take(b.lingering)
	for i := n; i < len(b.lingering); i++ {
		if b.lingering[i].at == 0 {
			b.lingering[i].at = now
		}
		b.tally.add(b, &b.lingering[i].rec)
	}
	expired := b.inc.expired[:0]
	keep := b.lingering[:0]
	for _, l := range b.lingering {
		if now-l.at < b.linger {
			keep = append(keep, l)
		} else if l.shown {
			expired = append(expired, l.rec.ID)
		}
	}
	if over := len(keep) - b.retired.limit; over > 0 {
		for _, l := range keep[:over] {
			if l.shown {
				expired = append(expired, l.rec.ID)
			}
		}
		keep = keep[:copy(keep, keep[over:])]
	}
	clear(b.lingering[len(keep):])
	b.lingering = keep
	b.inc.expired = expired
	return expired
}

// derived builds a frame from the rows shown, for a new sort, filter or
// view, without a new snapshot.
func (b *builder) derived(req *request) *frame {
	f := *b.shown
	b.seq++
	f.req, f.seq, f.newRows, f.newOrder = req, b.seq, false, true
	f.detail, f.detailRetired, f.detailLocal, f.detailProbs = nil, false, local.Info{}, nil
	b.derive(&f, req)
	return &f
}

// namesMoved reports whether new host names have arrived since the shown
// frame was filtered, when the filter looks at them.
func (b *builder) namesMoved(req *request) bool {
	return req.names && req.filter != "" && b.names != nil && b.names.Version() != b.namesVer
}

// refreshed is the frame shown with a new status line: what a frozen display
// gets on each tick.
func (b *builder) refreshed(req *request) *frame {
	f := *b.shown
	b.seq++
	f.req, f.seq, f.newRows, f.newOrder = req, b.seq, false, false
	b.poll(&f.head)
	return &f
}

// commit records that f is now the frame shown.
func (b *builder) commit(f *frame) {
	if f.newRows {
		b.rowCur = 1 - b.rowCur
	}
	if f.newOrder {
		b.ordCur = 1 - b.ordCur
	}
	b.shown = f
}

// derive filters and sorts f.rows into f.order, aggregates services when
// they are shown, and fetches the connection the detail view asks for.
func (b *builder) derive(f *frame, req *request) {
	rows := f.rows
	flt := b.filter(req, f)
	items := sized(b.items, len(rows))
	svcIdx := b.svcIdx[:0]
	exact := true
	f.w = widths{}
	agg := probAgg{now: b.judgeAt.UnixNano()}
	for i := range rows {
		r := &rows[i]
		if !req.lists(r, flt) {
			continue
		}
		if req.view == viewProblems && r.probs != 0 {
			agg.add(r)
		}
		if req.view == viewServices {
			svcIdx = append(svcIdx, int32(i))
		}
		if !req.scope.has(r, &f.procs) {
			continue
		}
		k, ex := req.key(r, f)
		exact = exact && ex
		items = append(items, sortItem{k, uint32(i)})
		f.w.add(r) // here, in row order: in view order it would miss the cache
	}
	sorted, scratch := radixSort(items, b.scratch)
	if !exact {
		refine(sorted, rows, req.sort, req.desc, &f.procs)
	}
	order := sized(b.ordBuf[1-b.ordCur], len(sorted))
	keys := sized(b.keyBuf[1-b.ordCur], len(sorted))
	for _, it := range sorted {
		order = append(order, int32(it.i))
		keys = append(keys, it.k)
	}
	b.ordBuf[1-b.ordCur], b.keyBuf[1-b.ordCur] = order, keys
	b.items, b.scratch, b.svcIdx = sorted[:0], scratch, svcIdx
	f.order, f.keys, f.exact = order, keys, exact
	f.pos = b.positions(len(rows), order)

	f.probs = nil
	if req.view == viewProblems {
		f.probs = agg.rows(&b.tally)
	}
	f.svcs, f.svcW = nil, 0
	if req.view == viewServices {
		if !b.svc.follows(f, req) { // else only their order changes
			b.svc.set(aggregate(rows, svcIdx, len(b.shown.svcsOrNil()), req.svcByName), f.rowsSeq, req)
		}
		b.svc.publish(f, req, b.listeners())
	}
	b.fetchDetail(f, req)
}

// filter compiles the request's filter for f's rows, with the process
// names and, when they are shown, the host names.
func (b *builder) filter(req *request, f *frame) *filter {
	flt := compileFilter(req.filter)
	flt.procs = &f.procs
	if req.names && b.names != nil {
		b.namesVer = b.names.Version() // before the names are asked for
		flt.names = b.names
	}
	return flt
}

// listeners returns this host's listeners, if the UI is told them.
func (b *builder) listeners() []Listener {
	if b.listen == nil {
		return nil
	}
	return b.listen()
}

// positions returns the inverse of order for n rows: the index in order of
// each row, or -1.
func (b *builder) positions(n int, order []int32) []int32 {
	pos := sized(b.posBuf[1-b.ordCur], n)[:n]
	for i := range pos {
		pos[i] = -1
	}
	for j, i := range order {
		pos[i] = int32(j)
	}
	b.posBuf[1-b.ordCur] = pos
	return pos
}

// fetchDetail fetches the connection the detail view asks for.
func (b *builder) fetchDetail(f *frame, req *request) {
	if req.detailID != 0 {
		f.detail, f.detailRetired = b.lookup(req.detailKey, req.detailID)
		if f.detail != nil && b.local != nil {
			f.detailLocal = b.local(f.detail)
		}
		if f.detail != nil {
			f.detailProbs = b.detailProblems(f.detail)
		}
	}
}

func (f *frame) svcsOrNil() []service {
	if f == nil {
		return nil
	}
	return f.svcs
}

// lookup returns the record, with its transitions, of a lingering or live
// connection, and whether it has left the table.
func (b *builder) lookup(key flows.Key, id uint64) (*flows.Record, bool) {
	for i := range b.lingering {
		if b.lingering[i].rec.ID == id {
			r := b.lingering[i].rec
			return &r, true
		}
	}
	if r, ok := b.table.Lookup(key, id); ok {
		return &r, false
	}
	return nil, false
}

// lists reports whether the view req asks for shows row r (the Services
// view counts it), whatever the service it is limited to.
func (req *request) lists(r *row, flt *filter) bool {
	return r.flags&rowGone == 0 && !(req.hideClosed && r.ended()) && !(req.problems && r.probs == 0) &&
		(flt.empty() || flt.match(r))
}

// key returns row r's sort key in the view req asks for, and whether the
// key alone orders it (see refine).
func (req *request) key(r *row, f *frame) (uint64, bool) {
	k, exact, missing := r.sortKey(req.sort, f.now, &f.procs)
	if req.desc {
		k = ^k
	}
	if missing {
		k = math.MaxUint64 // last, either way
	}
	return k, exact
}

// setRate sets the rates of a row that was counting before bytes at the
// previous frame, dt seconds ago, and reports whether it has one. A row
// that left the table has none.
func (r *row) setRate(before [2]uint64, dt float64) bool {
	if dt <= 0 || r.flags&rowRetired != 0 {
		return false
	}
	r.rate[0] = float32(float64(r.bytes[0]-min(before[0], r.bytes[0])) / dt)
	r.rate[1] = float32(float64(r.bytes[1]-min(before[1], r.bytes[1])) / dt)
	r.setRateWidths()
	return r.rate != [2]float32{}
}

// refine sorts the runs of equal keys that an inexact key (an IPv6
// address's first 63 bits, a process name's first 8 bytes) left
// unordered.
func refine(items []sortItem, rows []row, c colID, desc bool, procs *procNames) {
	for i := 0; i < len(items); {
		j := i + 1
		for j < len(items) && items[j].k == items[i].k {
			j++
		}
		if j-i > 1 {
			slices.SortStableFunc(items[i:j], func(a, b sortItem) int {
				ra, rb := &rows[a.i], &rows[b.i]
				if c == colProcess || c == colName {
					r := cmpProc(ra, rb, procs)
					if c == colName {
						r = strings.Compare(procs.lower[ra.name], procs.lower[rb.name])
					}
					if desc {
						r = -r
					}
					return r
				}
				ia, ib := ra.ci(), rb.ci()
				if c == colServer {
					ia, ib = ra.si(), rb.si()
				}
				r := bytes.Compare(ra.key.Addr[ia][:], rb.key.Addr[ib][:])
				if r == 0 {
					r = cmp.Compare(ra.key.Port[ia], rb.key.Port[ib])
				}
				if desc {
					r = -r
				}
				return r
			})
		}
		i = j
	}
}

// poll reads the capture status and the replay's state, and derives the
// packet and byte rates from the previous poll, over capture time.
func (b *builder) poll(h *header) {
	var st Status
	if b.status != nil {
		st = b.status()
	}
	at := st.CaptureTime.UnixNano()
	if st.CaptureTime.IsZero() {
		at = b.table.Now().UnixNano()
	}
	b.live = st.Live && !st.Done
	if b.live {
		// Live, packet timestamps are the host's clock: keep time going
		// while no packet comes, so that idle times grow.
		at = max(at, b.clock().UnixNano())
	}
	switch {
	case at > b.prevAt && b.prevAt != 0 && st.Packets >= b.prevPkts:
		dt := float64(at-b.prevAt) / 1e9
		b.pps = float64(st.Packets-b.prevPkts) / dt
		b.bps = float64(st.Bytes-min(b.prevBytes, st.Bytes)) / dt
	case at == b.prevAt:
		b.pps, b.bps = 0, 0
	}
	b.prevAt, b.prevPkts, b.prevBytes = at, st.Packets, st.Bytes
	*h = header{
		st:      st,
		capture: at,
		pps:     b.pps,
		bps:     b.bps,
		active:  b.table.Len(),
		total:   b.table.Opened(),
		unshown: b.retired.Dropped(),
		evicted: b.table.Evicted(),
	}
}
