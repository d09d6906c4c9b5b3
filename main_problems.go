package main

import (
	"cmp"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/export"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// problemJudge judges a headless run's connections as they are written
// (docs/problems.md): each against its service's earlier ones, which it
// then joins, in the order the output writes them, so that a replay
// gives the same verdicts every time.
type problemJudge struct {
	judge *diag.Judge
	svc   *diag.Services
	table atomic.Pointer[flows.Table] // for the time of the records still tracked at the end
}

func newProblemJudge(cfg diag.Config) *problemJudge {
	j := diag.New(cfg)
	return &problemJudge{judge: j, svc: diag.NewServices(j)}
}

// now returns the table's capture time: a record still tracked is judged
// as of it (Judge.Until).
func (p *problemJudge) now() time.Time {
	if t := p.table.Load(); t != nil {
		return t.Now()
	}
	return time.Time{}
}

// problems judges r and counts it in its service.
func (p *problemJudge) problems(r *flows.Record) []diag.Problem { return p.svc.Judge(r, p.now()) }

// kinds judges r, counts it in its service, and returns its problems'
// kinds.
func (p *problemJudge) kinds(r *flows.Record) diag.Set { return p.svc.JudgeKinds(r, p.now()) }

// problemSink is --problems: it keeps the connections with problems, as
// they are written, and at the end writes them by start time (a report,
// or NDJSON records) with a summary of each service.
type problemSink struct {
	w        io.Writer
	json     bool
	annotate local.Lookup
	judge    *problemJudge
	mu       sync.Mutex // guards the following (OnRetire may come from several goroutines)
	recs     []flows.Record
	probs    [][]diag.Problem
	total    int
}

func (s *problemSink) hook(cfg *flows.Config) { cfg.OnRetire = s.keep }

func (s *problemSink) keep(recs []flows.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range recs {
		s.total++
		if ps := s.judge.problems(&recs[i]); len(ps) > 0 {
			s.recs = append(s.recs, recs[i])
			s.probs = append(s.probs, ps)
		}
	}
}

func (s *problemSink) end(batch []flows.Record, _ time.Time) error {
	s.keep(batch)
	return nil
}
func (s *problemSink) flush() error { return nil }

func (s *problemSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	order := make([]int, len(s.recs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		ra, rb := &s.recs[a], &s.recs[b]
		if c := ra.FirstSeen.Compare(rb.FirstSeen); c != 0 {
			return c
		}
		return cmp.Compare(ra.ID, rb.ID)
	})
	recs := make([]flows.Record, len(order))
	probs := make([][]diag.Problem, len(order))
	for i, k := range order {
		recs[i], probs[i] = s.recs[k], s.probs[k]
	}
	services := s.judge.svc.Summaries()
	if s.json {
		return export.WriteProblemsJSON(s.w, recs, probs, services, s.annotate)
	}
	return export.WriteProblems(s.w, recs, probs, s.total, services)
}

// followSink streams NDJSON events (--follow): a connection's opening and
// state changes as they happen, "close" when it leaves the table, "end"
// for those still tracked when the capture stops, and "problem" when one
// of its problems begins (once per connection and kind). A problem that
// begins with a packet is seen at that packet (flows' open, state and
// note events); one that begins with time passing (a socket left in
// CLOSE_WAIT, a zero window that stays) when the connections that may
// have one are looked at again, each second of capture time (and of the
// wall clock, live).
type followSink struct {
	jw    *export.JSON
	judge *problemJudge
	mu    sync.Mutex // guards the following
	shown map[uint64]diag.Set
	watch map[uint64]flows.Key // connections whose problems may begin with time
	next  time.Time            // when to look at them again
}

func newFollowSink(jw *export.JSON, judge *problemJudge) *followSink {
	return &followSink{jw: jw, judge: judge, shown: map[uint64]diag.Set{}, watch: map[uint64]flows.Key{}}
}

func (s *followSink) hook(cfg *flows.Config) {
	cfg.OnChange = func(ev flows.Event) {
		at := time.Unix(0, ev.TS)
		if ev.Kind != flows.EventNote {
			_ = s.jw.WriteEvent(ev.Kind.String(), at, &ev.Record)
		}
		s.check(&ev.Record, at, false)
		s.tick(at)
	}
	cfg.OnRetire = func(recs []flows.Record) {
		for i := range recs {
			_ = s.jw.WriteEvent("close", recs[i].LastSeen, &recs[i])
			s.check(&recs[i], recs[i].LastSeen, true)
		}
	}
}

func (s *followSink) end(batch []flows.Record, now time.Time) error {
	var first error
	for i := range batch {
		if err := s.jw.WriteEvent("end", now, &batch[i]); err != nil && first == nil {
			first = err
		}
		s.check(&batch[i], now, true)
	}
	return first
}

func (s *followSink) flush() error {
	s.tick(s.judge.now())
	return s.jw.Flush()
}

func (s *followSink) close() error { return s.jw.Close() }

// check writes a "problem" event for each problem of r not shown yet, as
// of capture time now; last says r leaves (its record is final).
func (s *followSink) check(r *flows.Record, now time.Time, last bool) {
	j := s.judge.judge
	ps := j.Problems(r, j.Until(r, now), s.judge.svc)
	if last {
		s.judge.svc.Add(r, j.Until(r, now), kindsOf(ps))
	}
	s.mu.Lock()
	shown := s.shown[r.ID]
	var fresh []int
	for i := range ps {
		if !shown.Has(ps[i].Kind) {
			shown = shown.Add(ps[i].Kind)
			fresh = append(fresh, i)
		}
	}
	switch {
	case last:
		delete(s.shown, r.ID)
		delete(s.watch, r.ID)
	default:
		s.shown[r.ID] = shown
		if mayBegin(r) {
			s.watch[r.ID] = r.Key
		} else {
			delete(s.watch, r.ID)
		}
	}
	s.mu.Unlock()
	for _, i := range fresh {
		_ = s.jw.WriteProblem(&ps[i], r)
	}
}

// mayBegin reports whether a problem of r may begin without a packet:
// an endpoint waiting in CLOSE_WAIT or FIN_WAIT_2, a handshake without an
// answer, or a zero window still closed.
func mayBegin(r *flows.Record) bool {
	for _, st := range [2]flows.State{r.ClientState, r.ServerState} {
		switch st {
		case flows.StateCloseWait, flows.StateFinWait2, flows.StateSynSent:
			return true
		}
	}
	return r.Evidence().ZeroWindow.Open
}

// tick looks at the watched connections again once a second of capture
// time has passed since the last look.
func (s *followSink) tick(now time.Time) {
	t := s.judge.table.Load()
	s.mu.Lock()
	if t == nil || now.Before(s.next) {
		s.mu.Unlock()
		return
	}
	s.next = now.Add(time.Second)
	ids := slices.Sorted(maps.Keys(s.watch)) // in the order they opened: the same events every run
	keys := make([]flows.Key, len(ids))
	for i, id := range ids {
		keys[i] = s.watch[id]
	}
	s.mu.Unlock()
	for i, id := range ids {
		if r, ok := t.Lookup(keys[i], id); ok {
			s.check(&r, now, false)
		}
	}
}

// kindsOf returns the kinds of ps.
func kindsOf(ps []diag.Problem) diag.Set {
	var s diag.Set
	for i := range ps {
		s = s.Add(ps[i].Kind)
	}
	return s
}
