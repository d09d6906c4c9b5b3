package ui

import (
	"net/netip"
	"testing"
)

// TestAddListeners: a listener names the services it serves (its address,
// or every address on its port for a wildcard, IPv4 ones too for "::"),
// and one that serves none is a service of its own, with no connections.
func TestAddListeners(t *testing.T) {
	ep := func(s string) endpoint {
		ap := netip.MustParseAddrPort(s)
		return endpoint{addr: ap.Addr().As16(), port: ap.Port(), v6: ap.Addr().Is6() && !ap.Addr().Is4In6()}
	}
	svcs := []service{{ep: ep("10.0.0.1:80"), conns: 3}, {ep: ep("10.0.0.1:443"), conns: 1}, {ep: ep("[2001:db8::1]:22"), conns: 1}}
	got := addListeners(svcs, []Listener{
		{Addr: netip.MustParseAddrPort("0.0.0.0:80"), PID: 10, Process: "nginx"},
		{Addr: netip.MustParseAddrPort("[::]:22"), PID: 20, Process: "sshd"},
		{Addr: netip.MustParseAddrPort("127.0.0.1:5432"), PID: 30, Process: "postgres"},
		{Addr: netip.MustParseAddrPort("10.0.0.2:443"), PID: 40, Process: "other"},
	})
	want := map[string]struct {
		proc  string
		conns int
	}{
		"10.0.0.1:80":      {"nginx[10]", 3},
		"10.0.0.1:443":     {"", 1},
		"[2001:db8::1]:22": {"sshd[20]", 1},
		"127.0.0.1:5432":   {"postgres[30]", 0},
		"10.0.0.2:443":     {"other[40]", 0},
	}
	if len(got) != len(want) {
		t.Fatalf("%d services, want %d: %+v", len(got), len(want), got)
	}
	for _, s := range got {
		w, ok := want[s.ep.String()]
		if !ok || s.proc != w.proc || s.conns != w.conns {
			t.Errorf("%s: %q, %d connections; want %+v (listed %v)", s.ep, s.proc, s.conns, w, ok)
		}
	}
}
