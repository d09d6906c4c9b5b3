package ui

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
)

func TestRadixSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 100, 10000} {
		for _, bits := range []uint{4, 20, 64} {
			a := make([]sortItem, n)
			for i := range a {
				a[i] = sortItem{r.Uint64() >> (64 - bits), uint32(i)}
			}
			want := slices.Clone(a)
			slices.SortStableFunc(want, func(x, y sortItem) int { return cmp.Compare(x.k, y.k) })
			got, _ := radixSort(a, nil)
			if !slices.Equal(got, want) {
				t.Errorf("n=%d, %d-bit keys: not sorted stably", n, bits)
			}
		}
	}
}

func TestCountWidth(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	check := func(n uint64) {
		if got, want := int(countWidth(n)), len(fmtCount(n)); got != want {
			t.Errorf("countWidth(%d) = %d, fmtCount gives %q", n, got, fmtCount(n))
		}
	}
	for n := uint64(0); n < 200000; n++ {
		check(n)
	}
	for range 100000 {
		check(r.Uint64() >> r.UintN(64))
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{fmtCount(999), "999"},
		{fmtCount(1023), "1023"},
		{fmtCount(1024), "1.0K"},
		{fmtCount(15 * 1024), "15K"},
		{fmtCount(3 << 30), "3.0G"},
		{fmtAge(850 * time.Millisecond), "850ms"},
		{fmtAge(9500 * time.Millisecond), "9.5s"},
		{fmtAge(42 * time.Second), "42s"},
		{fmtAge(184 * time.Second), "3m04s"},
		{fmtAge(125 * time.Minute), "2h05m"},
		{fmtAge(74 * time.Hour), "3d02h"},
		{fmtRTT(-1), "-"},
		{fmtRTT(850 * time.Microsecond), "850µs"},
		{fmtRTT(2350 * time.Microsecond), "2.35ms"},
		{fmtRTT(9999 * time.Microsecond), "10.0ms"},
		{fmtRTT(25900 * time.Microsecond), "25.9ms"},
		{fmtRTT(250 * time.Millisecond), "250ms"},
		{fmtRTT(1250 * time.Millisecond), "1.25s"},
		{fmtSpeed(0), "max"},
		{fmtSpeed(0.25), "0.25x"},
		{fmtSpeed(10), "10x"},
		{cutLeft("192.168.100.200:54321", 10), "…200:54321"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	for d := time.Duration(0); d < 100*time.Hour; d = d*11/10 + time.Millisecond {
		if n := len([]rune(fmtAge(d))); n > 6 {
			t.Errorf("fmtAge(%v) = %q is wider than its column", d, fmtAge(d))
		}
		if n := len([]rune(fmtRTT(d))); n > 6 {
			t.Errorf("fmtRTT(%v) = %q is wider than its column", d, fmtRTT(d))
		}
	}
}

// rowOf returns the row of a connection from client c to server s in
// the given states.
func rowOf(t *testing.T, c, s string, cst, sst flows.State) row {
	t.Helper()
	var ps []flows.Packet
	(&conv{c: c, s: s, out: &ps}).send(true, flows.SYN, 1000, 0, 0, 0)
	tab := flows.NewTable(flows.Config{})
	tab.Apply(&ps[0])
	rec := tab.Snapshot()[0]
	rec.ClientState, rec.ServerState = cst, sst
	var r row
	r.setRecord(&rec, false)
	return r
}

func TestFilter(t *testing.T) {
	r := rowOf(t, "10.0.0.1:40000", "192.168.7.9:443", flows.StateFinWait2, flows.StateCloseWait)
	r6 := rowOf(t, "[2001:db8::1]:40000", "[2001:db8::2]:8443", flows.StateEstablished, flows.StateEstablished)
	r.probs = diag.Set(0).Add(diag.CloseWait).Add(diag.FinWait2)
	r6.probs = diag.Set(0).Add(diag.ResetSuspect)
	for _, c := range []struct {
		expr   string
		r4, r6 bool
	}{
		{"", true, true},
		{"443", true, true},
		{":443", true, false},
		{":44", false, false},
		{"192.168.7", true, false},
		{"10.0.0.0/8", true, false},
		{"2001:db8::/32", false, true},
		{"2001:db8::2]:8443", false, true},
		{"fin_wait_2", true, false},
		{"FIN-WAIT-2", true, false},
		{"wait", true, false},
		{"estab", false, true},
		{"!estab", true, false},
		{"wait :443", true, false},
		{"wait :8443", false, false},
		{"S0", true, true}, // conn_state of a lone SYN
		{"nothing", false, false},
		{"problem:close-wait", true, false},
		{"PROBLEM:Close-Wait", true, false},
		{"problem:fin-wait-2 :443", true, false},
		{"problem:wait", true, false},
		{"problem:reset", false, true}, // every reset-* kind
		{"problem:rst-suspect", false, true},
		{"problem:zero-window", false, false},
		{"problem:any", true, true},
		{"problem:", true, true},
		{"!problem:any", false, false},
		{"!problem:reset", true, false},
		{"problem:nonsense", false, false},
	} {
		f := compileFilter(c.expr)
		if got := f.match(&r); got != c.r4 {
			t.Errorf("%q on %v: %v, want %v", c.expr, r.client(), got, c.r4)
		}
		if got := f.match(&r6); got != c.r6 {
			t.Errorf("%q on %v: %v, want %v", c.expr, r6.client(), got, c.r6)
		}
	}
}

func TestSortByAddress(t *testing.T) {
	// IPv6 keys are inexact: rows with the same first 63 bits are ordered
	// by the rest of the address and the port.
	rows := []row{
		rowOf(t, "[2001:db8::9]:2", "10.0.0.1:80", flows.StateSynSent, 0),
		rowOf(t, "10.0.0.2:1", "10.0.0.1:80", flows.StateSynSent, 0),
		rowOf(t, "[2001:db8::1]:5", "10.0.0.1:80", flows.StateSynSent, 0),
		rowOf(t, "[2001:db8::9]:1", "10.0.0.1:80", flows.StateSynSent, 0),
		rowOf(t, "10.0.0.10:1", "10.0.0.1:80", flows.StateSynSent, 0),
	}
	want := []string{"10.0.0.2:1", "10.0.0.10:1", "[2001:db8::1]:5", "[2001:db8::9]:1", "[2001:db8::9]:2"}
	for _, desc := range []bool{false, true} {
		var items []sortItem
		for i := range rows {
			k, _, _ := rows[i].sortKey(colClient, 0, nil)
			if desc {
				k = ^k
			}
			items = append(items, sortItem{k, uint32(i)})
		}
		sorted, _ := radixSort(items, nil)
		refine(sorted, rows, colClient, desc, nil)
		var got []string
		for _, it := range sorted {
			got = append(got, rows[it.i].client().String())
		}
		w := slices.Clone(want)
		if desc {
			slices.Reverse(w)
		}
		if !slices.Equal(got, w) {
			t.Errorf("desc=%v: %v, want %v", desc, got, w)
		}
	}
}

func TestRetiredBound(t *testing.T) {
	r := NewRetired(10)
	for i := range 25 {
		r.Add([]flows.Record{{ID: uint64(i + 1)}})
	}
	got := r.take(nil)
	if len(got) != 10 || got[0].rec.ID != 16 || got[9].rec.ID != 25 {
		t.Errorf("kept %d records from ID %d, want the newest 10 (16 to 25)", len(got), got[0].rec.ID)
	}
	if r.Dropped() != 15 {
		t.Errorf("dropped %d, want 15", r.Dropped())
	}
	if len(r.take(nil)) != 0 {
		t.Error("take did not empty the sink")
	}
}

func TestLayout(t *testing.T) {
	w := widths{widClient: 21, widServer: 17, widPkts: 2, widBytesUp: 4, widBytesDn: 4, widRateUp: 1, widRateDn: 1, widRetransU: 1, widRetransD: 1, widProb: 10}
	for _, width := range []int{40, 60, 80, 100, 120, 160, 200} {
		for sorted := range numCols {
			l := layoutConns(&w, width, sorted, optional{true, true}, nameWidths{})
			total := sum(l.w) + len(l.w) - 1
			if total > width && l.w[0] > 8 && l.w[1] > 8 {
				t.Errorf("width %d: the columns take %d", width, total)
			}
			if !slices.Contains(l.cols, sorted) {
				t.Errorf("width %d: the sort column %s is not shown", width, columns[sorted].name)
			}
			for _, c := range []colID{colClient, colServer, colCState, colSState} {
				if !slices.Contains(l.cols, c) {
					t.Errorf("width %d: no %s", width, columns[c].name)
				}
			}
		}
	}
	if l := layoutConns(&w, 200, colAge, optional{true, true}, nameWidths{}); len(l.cols) != int(numCols) {
		var names []string
		for _, c := range l.cols {
			names = append(names, columns[c].name)
		}
		t.Errorf("200 wide: only %s", strings.Join(names, ", "))
	}
}

// TestProblemColumn: the Problem column names a row's most severe kind
// (diag's order), and sorts by it, then by the number of problems.
func TestProblemColumn(t *testing.T) {
	set := func(ks ...diag.Kind) diag.Set {
		var s diag.Set
		for _, k := range ks {
			s = s.Add(k)
		}
		return s
	}
	if got := problemText(set(diag.SlowConnect, diag.CloseWait)); got != "close-wait" {
		t.Errorf("slow-connect and close-wait: %q, want close-wait (diag ranks it above)", got)
	}
	if got := problemText(set(diag.TimeoutRetransmit)); got != "timeout-rtx" {
		t.Errorf("timeout-retransmit: %q", got)
	}
	if got := problemText(0); got != "-" {
		t.Errorf("no problem: %q", got)
	}
	for a := range diag.NumKinds {
		for b := range diag.NumKinds {
			if diag.MoreSevere(a, b) && problemKey(set(a)) <= problemKey(set(b)) {
				t.Errorf("%v sorts below %v", a, b)
			}
		}
		if n := len(shortKind(a)); n > 11 {
			t.Errorf("%v is %d wide in the column", a, n)
		}
	}
	if problemKey(set(diag.Loss, diag.SlowConnect)) <= problemKey(set(diag.Loss)) {
		t.Error("two problems sort below one of the same kind")
	}
}
