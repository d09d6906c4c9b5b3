package sockets

import (
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flowtrack/flowtrack/flows"
)

// ssRow is one line of ss -tanp.
type ssRow struct {
	state flows.State
	pids  []int
}

var ssPID = regexp.MustCompile(`pid=(\d+)`)

// readSS runs ss -tanpH and indexes its connection sockets by endpoints.
func readSS(t *testing.T) map[sockKey]ssRow {
	t.Helper()
	out, err := exec.Command("ss", "-tanpH").Output()
	if err != nil {
		t.Skipf("ss (iproute2) is needed to compare with: %v", err)
	}
	rows := make(map[sockKey]ssRow)
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[0] == "LISTEN" {
			continue
		}
		st, ok := flows.ParseState(f[0])
		l, err1 := netip.ParseAddrPort(strings.Replace(f[3], "%lo", "", 1))
		r, err2 := netip.ParseAddrPort(f[4])
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		row := ssRow{state: st}
		for _, m := range ssPID.FindAllStringSubmatch(line, -1) {
			pid, _ := strconv.Atoi(m[1])
			row.pids = append(row.pids, pid)
		}
		rows[keyOf(l, r)] = row
	}
	return rows
}

// TestMatchesSS compares the table with ss -tanp, the kernel's own tool:
// on this test's sockets, which do not change meanwhile, state and process
// must agree exactly; on the rest of the host, which may, the agreement is
// logged.
func TestMatchesSS(t *testing.T) {
	ps := []pair{
		connect(t, "tcp4", "127.0.0.1:0", "127.0.0.1"),
		connect(t, "tcp6", "[::1]:0", "::1"),
		connect(t, "tcp4", "127.0.0.1:0", "127.0.0.1"),
	}
	ps[2].client.CloseWrite()
	r := New()
	await(t, r, ps[2].c, ps[2].s, flows.StateFinWait2)
	ss := readSS(t)
	for _, p := range ps {
		for _, e := range [][2]netip.AddrPort{{p.c, p.s}, {p.s, p.c}} {
			o, ok := r.Lookup(e[0], e[1])
			want, inSS := ss[keyOf(e[0], e[1])]
			if !ok || !inSS || o.KernelState != want.state || len(want.pids) == 0 || want.pids[0] != os.Getpid() || o.PID != os.Getpid() {
				t.Errorf("%v→%v: ours %v %+v, ss %v %+v", e[0], e[1], ok, o, inSS, want)
			}
		}
	}
	same, differ, missing := 0, 0, 0
	for k, want := range ss {
		o, ok := r.lookup(k)
		switch {
		case !ok || o.Gone:
			missing++
		case o.KernelState == want.state && (len(want.pids) == 0) == (o.Via != ViaFD) && (o.Via != ViaFD || slices.Contains(want.pids, o.PID)):
			same++
		default:
			differ++
		}
	}
	t.Logf("of %d sockets ss lists, %d agree, %d differ (state or process), %d not in the table (opened since)", len(ss), same, differ, missing)
}
