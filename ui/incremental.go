package ui

import (
	"slices"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// Incremental frames. A full frame copies every connection from the flow
// table, puts the rows in ID order and sorts them: its cost grows with the
// table (BenchmarkFrame). Once the table is large, a frame instead takes
// only what changed since the last one (flows.Table.EachChange) and the
// records retired since, and builds on the frame shown:
//
//   - Rows stay in ID order. The other row buffer is brought up to the
//     shown frame by copying the rows that frame changed (its touched
//     list), then this frame's changes are written over it. A connection
//     new since the last frame has a higher ID than every row (EachChange
//     and the retired records are cut at one ID mark), so it is appended;
//     only a handshake back from the table's limbo, never shown, is merged
//     in among the others (insert). A row that leaves is marked rowGone,
//     not removed, so that no row moves.
//   - The view order is the shown order with the changed rows taken out
//     and put back in by a merge of their new keys: row keys do not depend
//     on the time (ages sort by first-seen time), so the other rows keep
//     their places. A new sort, filter or view sorts every row again
//     (derive), without a new snapshot.
//   - Rates are recomputed for the rows that changed in this frame or the
//     last (a row that changed then and not now falls to zero).
//   - The Services view's counts are updated from the changed rows
//     (svcState.update).
//   - Problems are judged on the rows that changed, and once a second of
//     capture time on those whose problems may begin with time alone
//     (rejudge, problems.go).
//
// Column widths only grow between full frames. When gone rows pile up (a
// quarter of all), a frame drops them and sorts every row again (compact).
// A full frame still comes every fullEvery, and when the change lists
// overflowed; it also shows what only time changes without a packet: a
// half-open connection's handshake timing out (a full connection's timers
// are applied by the table's sweep, which lists the change).

// incState is the builder's incremental state.
type incState struct {
	min       int           // rows from which frames are incremental
	fullEvery time.Duration // a full frame at least this often
	lastFull  time.Time
	ids       []uint64 // row IDs in the rows' layout (both buffers once in step)
	maxID     uint64   // highest row ID
	touchBuf  [2][]int32
	mark      []bool // rows in this frame's change set (scratch)
	gone      []uint64
	expired   []uint64
	inserted  []int32 // new indices of the rows insert placed
	ups       []row
	upItems   []sortItem
	items     []sortItem
	fulls     int // full frames built, for tests
	inserts   int // frames that inserted rows, for tests
	compacts  int // frames that dropped gone rows, for tests
	remap     []int32
	rejudged  time.Time // when rejudge last began a pass (capture time)
	watchAt   int       // the row its pass goes on from; 0: none under way
}

const (
	incrementalFrom = 50_000
	fullEvery       = 30 * time.Second
)

// full records a full frame's rows.
func (s *incState) full(b *builder, rows []row) {
	s.ids = sized(s.ids, len(rows))
	for i := range rows {
		s.ids = append(s.ids, rows[i].id)
	}
	s.maxID = 0
	if len(rows) > 0 {
		s.maxID = rows[len(rows)-1].id
	}
	s.lastFull = b.clock()
	s.fulls++
}

// refresh builds a frame from the table: incrementally when it can, else
// in full.
func (b *builder) refresh(req *request) *frame {
	if f := b.incremental(req); f != nil {
		return f
	}
	return b.full(req)
}

// incremental builds a frame from the changes since the shown frame, or
// returns nil when a full frame is needed.
func (b *builder) incremental(req *request) *frame {
	s := &b.inc
	prev := b.shown
	if prev == nil || len(prev.rows) < s.min ||
		b.clock().Sub(s.lastFull) >= s.fullEvery || len(b.procs.names) > maxProcNames {
		return nil
	}
	// What changed: IDs up to the mark, from the table and the retired,
	// judged as of the table's clock now.
	b.judgeAt = b.table.Now()
	upto := b.table.IDMark()
	if !b.takeChanges(upto) {
		return nil
	}
	x := &incFrame{b: b, s: s, f: b.newFrame(req), prev: prev}
	b.saw(x.f)
	expired := b.takeRetired(x.f.now)
	b.takeLingering(upto)
	x.f.procs = b.procs.view()
	x.catchUp()
	x.markGone(expired)
	x.update()
	x.fadeRates()
	x.rejudge() // after fadeRates: a row it touches keeps no rate it lost
	x.placeFresh()
	b.builds++
	if x.f.gone > len(x.rows)/4 {
		x.compact(req)
		return x.f
	}
	b.rowBuf[1-b.rowCur] = x.rows
	x.f.rows, x.f.touched = x.rows, x.touched
	s.touchBuf[1-b.rowCur] = x.touched
	b.deriveChanged(x.f, req, prev, x.shift)
	return x.f
}

// takeChanges lists the table's changes up to the connection ID upto: the
// IDs of the connections that left (inc.gone) and the rows of those that
// changed (inc.ups). It returns false if the table could not list them
// all, when a full frame is needed.
func (b *builder) takeChanges(upto uint64) bool {
	s := &b.inc
	gone, ups := s.gone[:0], s.ups[:0]
	ok := b.table.EachChange(upto,
		func(id uint64) { gone = append(gone, id) },
		func(rec *flows.Record) {
			ups = b.appendRow(ups, rec, false)
		})
	s.gone, s.ups = gone, ups
	return ok
}

// takeLingering adds to inc.ups the rows of the connections retired since
// the last frame (up to the connection ID upto): their last records,
// lingering on screen.
func (b *builder) takeLingering(upto uint64) {
	ups := b.inc.ups
	for i := range b.lingering {
		l := &b.lingering[i]
		if !l.shown && l.rec.ID <= upto {
			l.shown = true
			ups = b.appendRow(ups, &l.rec, true)
		}
	}
	b.inc.ups = ups
}

// incFrame is an incremental frame being built on the one shown.
type incFrame struct {
	b       *builder
	s       *incState
	f, prev *frame
	rows    []row             // the other row buffer: the shown frame's rows, then this frame's
	touched []int32           // the rows this frame changed
	fresh   []sortItem        // rows new in this frame (of inc.ups), in ID order
	shift   func(int32) int32 // an old row's new index, if rows were inserted; nil if none moved
	dt      float64           // seconds of capture time since the shown frame
}

// catchUp brings the other row buffer up to the shown frame: it copies the
// rows the shown frame changed, or all of them if it moved rows.
func (x *incFrame) catchUp() {
	b, prev := x.b, x.prev
	cur := prev.rows
	rows := b.rowBuf[1-b.rowCur]
	if prev.layout || cap(rows) < len(cur) || len(rows) > len(cur) {
		rows = append(sized(rows, len(cur)+len(cur)/8), cur...)
	} else {
		n0 := len(rows)
		rows = rows[:len(cur)]
		copy(rows[n0:], cur[n0:])
		for _, i := range prev.touched {
			if int(i) < n0 {
				rows[i] = cur[i]
			}
		}
	}
	x.rows = rows
	x.touched = x.s.touchBuf[1-b.rowCur][:0]
	x.f.gone = prev.gone
	if x.f.now > prev.now {
		x.dt = float64(x.f.now-prev.now) / 1e9
	}
}

// markGone marks the rows that left: the table's (unless retired since,
// which keeps the row for the linger) and the retired whose linger ended
// (expired).
func (x *incFrame) markGone(expired []uint64) {
	slices.Sort(x.s.gone)
	slices.Sort(expired)
	at := 0
	for _, id := range x.s.gone {
		if i, ok := x.s.locate(id, &at); ok && x.rows[i].flags&(rowGone|rowRetired) == 0 {
			x.gone(i)
		}
	}
	at = 0
	for _, id := range expired {
		if i, ok := x.s.locate(id, &at); ok && x.rows[i].flags&rowRetired != 0 && x.rows[i].flags&rowGone == 0 {
			x.gone(i)
		}
	}
}

func (x *incFrame) gone(i int) {
	x.rows[i].flags |= rowGone
	x.f.gone++
	x.touched = append(x.touched, int32(i))
}

// update writes the changed rows over the shown ones, in ID order; of a
// connection listed twice, the last (a retired record comes after the
// table's). The rows not there before are kept aside in x.fresh.
func (x *incFrame) update() {
	b, s, ups, cur := x.b, x.s, x.s.ups, x.prev.rows
	items := s.upItems[:0]
	for i := range ups {
		items = append(items, sortItem{ups[i].id, uint32(i)})
	}
	items, b.scratch = radixSort(items, b.scratch)
	s.upItems = items
	at := 0
	for j, it := range items {
		if j+1 < len(items) && items[j+1].k == it.k {
			continue
		}
		u := &ups[it.i]
		i, ok := s.locate(u.id, &at)
		if !ok {
			x.fresh = append(x.fresh, it)
			continue
		}
		r := &x.rows[i]
		if r.flags&rowGone != 0 {
			x.f.gone-- // it comes back, or it left and is retired now
		}
		// Born and the bytes the rates start from are the shown row's.
		var before [2]uint64
		if i < len(cur) && cur[i].flags&rowGone == 0 {
			u.born, before = cur[i].born, cur[i].bytes
		} else if b.builds > 0 {
			u.born = x.f.wall
		}
		*r = *u
		r.setRate(before, x.dt)
		x.touched = append(x.touched, int32(i))
	}
}

// fadeRates sets the rates to zero on the rows that changed in the shown
// frame and not in this one.
func (x *incFrame) fadeRates() {
	mark := x.s.marks(len(x.rows))
	for _, i := range x.touched {
		mark[i] = true
	}
	nt := len(x.touched)
	for _, i := range x.prev.touched {
		if int(i) < len(x.rows) && !mark[i] {
			r := &x.rows[i]
			if r.rate != [2]float32{} {
				r.rate = [2]float32{}
				r.setRateWidths()
				x.touched = append(x.touched, i) // the other buffer must copy it too
			}
		}
	}
	for _, i := range x.touched[:nt] {
		mark[i] = false
	}
}

// placeFresh adds the rows new in this frame: after the others, as a new
// connection has a higher ID than every row, or merged in among them.
func (x *incFrame) placeFresh() {
	s, ups := x.s, x.s.ups
	for _, it := range x.fresh {
		u := &ups[it.i]
		if x.b.builds > 0 {
			u.born = x.f.wall
		}
		u.setRate([2]uint64{}, x.dt)
	}
	if len(x.fresh) > 0 && x.fresh[0].k <= s.maxID {
		// A connection older than the newest row, never shown (a
		// handshake back from the table's limbo): the rows after it move.
		x.rows, x.shift = s.insert(x.rows, ups, x.fresh)
		for j, i := range x.touched {
			x.touched[j] = x.shift(i)
		}
		x.f.layout = true // the other buffer copies them all
	} else {
		for _, it := range x.fresh {
			x.rows = append(x.rows, ups[it.i])
			s.ids = append(s.ids, ups[it.i].id)
			x.touched = append(x.touched, int32(len(x.rows)-1))
		}
	}
	if len(x.rows) > 0 {
		s.maxID = max(s.maxID, x.rows[len(x.rows)-1].id)
	}
}

// compact drops the gone rows, which have piled up, and sorts what is left
// again.
func (x *incFrame) compact(req *request) {
	b, s, f := x.b, x.s, x.f
	touched := x.touched
	if x.shift != nil {
		touched = append(touched, s.inserted...)
	}
	rows, touched := s.compact(x.rows, touched)
	f.gone, f.layout = 0, true
	b.rowBuf[1-b.rowCur], f.rows = rows, rows
	f.touched, s.touchBuf[1-b.rowCur] = touched, touched
	b.derive(f, req)
}

// compact drops the rows marked gone, keeping the others in order, and
// maps the indices in touched to the rows' new places (dropping the gone
// ones).
func (s *incState) compact(rows []row, touched []int32) ([]row, []int32) {
	s.compacts++
	remap := sized(s.remap, len(rows))[:len(rows)]
	n := 0
	for i := range rows {
		if rows[i].flags&rowGone != 0 {
			remap[i] = -1
			continue
		}
		remap[i] = int32(n)
		if n != i {
			rows[n] = rows[i]
		}
		n++
	}
	rows = rows[:n]
	s.ids = s.ids[:0]
	for i := range rows {
		s.ids = append(s.ids, rows[i].id)
	}
	out := touched[:0]
	for _, i := range touched {
		if j := remap[i]; j >= 0 {
			out = append(out, j)
		}
	}
	s.remap = remap
	return rows, out
}

// insert merges the fresh rows (ups in ID order) into rows, from the back,
// so that only the rows after the first of them move, and returns the rows
// and the map from an old row index to its new one. The fresh rows'
// indices are added to touched by the caller through the map: they are
// where no old row maps.
func (s *incState) insert(rows, ups []row, fresh []sortItem) ([]row, func(int32) int32) {
	s.inserts++
	n, m := len(rows), len(fresh)
	// at[j] is the number of old rows before fresh row j.
	at := make([]int32, m)
	pos := 0
	for j, it := range fresh {
		i, _ := s.locate(it.k, &pos)
		at[j] = int32(i)
	}
	rows = slices.Grow(rows, m)[:n+m]
	s.ids = slices.Grow(s.ids, m)[:n+m]
	i, k := n-1, n+m-1
	for j := m - 1; j >= 0; j-- {
		for ; i >= int(at[j]); i, k = i-1, k-1 {
			rows[k], s.ids[k] = rows[i], s.ids[i]
		}
		rows[k], s.ids[k] = ups[fresh[j].i], ups[fresh[j].i].id
		k--
	}
	s.inserted = s.inserted[:0]
	for j := range at {
		s.inserted = append(s.inserted, at[j]+int32(j))
	}
	shift := func(i int32) int32 {
		// The number of fresh rows placed before old row i.
		j, _ := slices.BinarySearch(at, i+1)
		return i + int32(j)
	}
	return rows, shift
}

// marks returns the mark slice sized for n rows, all false.
func (s *incState) marks(n int) []bool {
	if cap(s.mark) < n {
		s.mark = make([]bool, n+n/8)
	}
	s.mark = s.mark[:n]
	return s.mark
}

// locate finds the row of id in the layout, searching from *at onward
// (the IDs asked for come in increasing order) by galloping.
func (s *incState) locate(id uint64, at *int) (int, bool) {
	ids := s.ids
	lo := *at
	step := 1
	hi := lo
	for hi < len(ids) && ids[hi] < id {
		lo = hi + 1
		hi += step
		step *= 2
	}
	hi = min(hi+1, len(ids))
	i, ok := slices.BinarySearch(ids[lo:hi], id)
	i += lo
	*at = i
	return i, ok
}

// orderEqual reports whether two requests put the same rows in the same
// order.
func orderEqual(a, b *request) bool {
	return a.view == b.view && a.sort == b.sort && a.desc == b.desc && a.filter == b.filter &&
		a.scope == b.scope && a.hideClosed == b.hideClosed && a.names == b.names && a.problems == b.problems
}

// deriveChanged is derive for an incremental frame: the shown order with
// the changed rows taken out and merged back in with their new keys.
func (b *builder) deriveChanged(f *frame, req *request, prev *frame, shift func(int32) int32) {
	s := &b.inc
	if shift != nil {
		f.touched = append(f.touched, s.inserted...)
		s.touchBuf[1-b.rowCur] = f.touched
	}
	if !orderEqual(req, prev.req) || !prev.exact || prev.keys == nil || b.namesMoved(req) ||
		req.view == viewServices && !b.svc.follows(prev, req) {
		b.derive(f, req)
		return
	}
	changed := b.changedRows(f, prev, shift)
	flt := b.filter(req, f)
	items, w, exact := b.keyRows(f, req, flt, changed, prev.w)
	if !exact {
		s.unmark(changed)
		b.derive(f, req)
		return
	}
	if req.view == viewServices {
		b.svc.update(f, prev, changed, s.inserted, shift != nil, req, flt)
	}
	items, b.scratch = radixSort(items, b.scratch)
	s.items = items
	order, keys := b.mergeOrder(prev, items, shift)
	s.unmark(changed)
	b.ordBuf[1-b.ordCur], b.keyBuf[1-b.ordCur] = order, keys
	f.order, f.keys, f.exact, f.w = order, keys, true, w
	f.pos = b.positions(len(f.rows), order)
	f.svcs, f.svcW, f.probs = nil, 0, nil
	if req.view == viewServices {
		b.svc.publish(f, req, b.listeners())
	}
	if req.view == viewProblems {
		f.probs = b.problemRows(f, req, flt)
	}
	b.fetchDetail(f, req)
}

// changedRows lists, in order and marked (inc.mark), the rows that changed
// in the shown frame or in f: their places in the view order may change.
func (b *builder) changedRows(f, prev *frame, shift func(int32) int32) []uint32 {
	s := &b.inc
	rows := f.rows
	s.marks(len(rows))
	changed := sized(b.rank, len(prev.touched)+len(f.touched))
	add := func(i int32) {
		if int(i) < len(rows) && !s.mark[i] {
			s.mark[i] = true
			changed = append(changed, uint32(i))
		}
	}
	for _, i := range prev.touched {
		if shift != nil {
			i = shift(i)
		}
		add(i)
	}
	for _, i := range f.touched {
		add(i)
	}
	b.rank = changed
	slices.Sort(changed)
	return changed
}

// keyRows returns the sort items of the changed rows that the request
// lists, with the column widths w grown to fit them; exact is false if
// some keys do not decide the order alone (a full sort is needed).
func (b *builder) keyRows(f *frame, req *request, flt *filter, changed []uint32, w widths) (items []sortItem, _ widths, exact bool) {
	items = b.inc.items[:0]
	exact = true
	for _, i := range changed {
		r := &f.rows[i]
		if !req.lists(r, flt) || !req.scope.has(r, &f.procs) {
			continue
		}
		k, ex := req.key(r, f)
		exact = exact && ex
		items = append(items, sortItem{k, i})
		w.add(r)
	}
	b.inc.items = items
	return items, w, exact
}

// mergeOrder merges the entries of the shown order that did not change
// (unmarked) with the changed rows' items, both sorted.
func (b *builder) mergeOrder(prev *frame, items []sortItem, shift func(int32) int32) (order []int32, keys []uint64) {
	n := len(prev.order) + len(items)
	order = sized(b.ordBuf[1-b.ordCur], n)
	keys = sized(b.keyBuf[1-b.ordCur], n)
	mark := b.inc.mark
	j := 0
	for p, i := range prev.order {
		if shift != nil {
			i = shift(i)
		}
		if mark[i] {
			continue
		}
		k, i := prev.keys[p], uint32(i)
		for j < len(items) && (items[j].k < k || items[j].k == k && items[j].i < i) {
			order = append(order, int32(items[j].i))
			keys = append(keys, items[j].k)
			j++
		}
		order = append(order, int32(i))
		keys = append(keys, k)
	}
	for ; j < len(items); j++ {
		order = append(order, int32(items[j].i))
		keys = append(keys, items[j].k)
	}
	return order, keys
}

// unmark clears the marks of the rows listed.
func (s *incState) unmark(rows []uint32) {
	for _, i := range rows {
		s.mark[i] = false
	}
}
