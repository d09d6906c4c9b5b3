package sockets

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"

	"github.com/flowtrack/flowtrack/flows"
	"golang.org/x/sys/unix"
)

// hostOrderHex writes 4 bytes of an address as the kernel prints them in
// /proc/net/tcp: one 32-bit word in host byte order, in hex.
func hostOrderHex(b []byte) string {
	const digits = "0123456789ABCDEF"
	v := binary.NativeEndian.Uint32(b)
	var s [8]byte
	for i := 7; i >= 0; i-- {
		s[i] = digits[v&15]
		v >>= 4
	}
	return string(s[:])
}

func procAddr(ap netip.AddrPort) string {
	a := ap.Addr().AsSlice()
	s := ""
	for i := 0; i < len(a); i += 4 {
		s += hostOrderHex(a[i : i+4])
	}
	const digits = "0123456789ABCDEF"
	p := ap.Port()
	return s + ":" + string([]byte{digits[p>>12], digits[p>>8&15], digits[p>>4&15], digits[p&15]})
}

func TestParseProcNet(t *testing.T) {
	c4, s4 := mustAddrPort("127.0.0.1:49322"), mustAddrPort("10.1.2.3:8080")
	c6, s6 := mustAddrPort("[2001:db8::1]:443"), mustAddrPort("[fe80::2]:51000")
	text := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: " + procAddr(c4) + " " + procAddr(s4) + " 01 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0000000000000000 20 4 30 10 -1\n" +
		"   1: " + procAddr(s6) + " " + procAddr(c6) + " 0A 00000000:00000000 00:00000000 00000000     0        0 4294967295 1\n" +
		"   2: garbage\n" +
		"   3: " + procAddr(c4) + " " + procAddr(s4) + " 06 00000000:00000000 03:000015E0 00000000     0        0 0 3 0000000037d4d637"
	rows, err := parseProcNet([]byte(text), 7, nil, 10)
	if err != nil || len(rows) != 3 {
		t.Fatalf("%d rows, %v; want 3", len(rows), err)
	}
	want := []row{
		{key: keyOf(c4, s4), netns: 7, inode: 123456, uid: 1000, state: tcpEstablished},
		{key: keyOf(s6, c6), netns: 7, inode: 4294967295, state: tcpListen},
		{key: keyOf(c4, s4), netns: 7, state: tcpTimeWait},
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, rows[i], want[i])
		}
	}
	if rows, err := parseProcNet([]byte(text), 7, nil, 2); !errors.Is(err, errFull) || len(rows) != 2 {
		t.Errorf("bounded at 2: %d rows, %v", len(rows), err)
	}
}

func TestParseUint(t *testing.T) {
	for _, tc := range []struct {
		s          string
		base, bits int
		v          uint64
		ok         bool
	}{
		{"1F90", 16, 16, 8080, true}, {"1f90", 16, 16, 8080, true}, {"10000", 16, 16, 0, false},
		{"18446744073709551615", 10, 64, 1<<64 - 1, true}, {"18446744073709551616", 10, 64, 0, false},
		{"", 10, 64, 0, false}, {"12a", 10, 64, 0, false}, {"FF", 16, 8, 255, true},
	} {
		v, ok := parseUint([]byte(tc.s), tc.base, tc.bits)
		if v != tc.v || ok != tc.ok {
			t.Errorf("parseUint(%q, %d, %d) = %d %v, want %d %v", tc.s, tc.base, tc.bits, v, ok, tc.v, tc.ok)
		}
	}
}

// TestProcNetMatchesNetlink reads this namespace's sockets both ways: the
// two sources must agree on this test's sockets, which do not change
// between the readings.
func TestProcNetMatchesNetlink(t *testing.T) {
	ps := []pair{
		connect(t, "tcp4", "127.0.0.1:0", "127.0.0.1"),
		connect(t, "tcp6", "[::1]:0", "::1"),
		connect(t, "tcp", "[::]:0", "127.0.0.1"),
	}
	ps[0].client.CloseWrite()
	r := New()
	fd, err := openDiag()
	if err != nil {
		t.Skipf("netlink sock_diag: %v", err)
	}
	defer unix.Close(fd)
	await(t, r, ps[0].c, ps[0].s, flows.StateFinWait2)
	nl, err := r.diag.dump(fd, unix.AF_INET, allStates, 1, nil, MaxSockets)
	if err == nil {
		nl, err = r.diag.dump(fd, unix.AF_INET6, allStates, 1, nl, MaxSockets)
	}
	if err != nil {
		t.Fatal(err)
	}
	pn, err := r.procNet.read(r.selfDir+"/net/tcp", 1, nil, MaxSockets)
	if err == nil {
		pn, err = r.procNet.read(r.selfDir+"/net/tcp6", 1, pn, MaxSockets)
	}
	if err != nil {
		t.Fatal(err)
	}
	index := func(rows []row) map[sockKey]row {
		m := make(map[sockKey]row)
		for _, r := range rows {
			if _, listen, _ := kernelState(r.state); !listen {
				m[r.key] = r
			}
		}
		return m
	}
	a, b := index(nl), index(pn)
	t.Logf("netlink %d rows, proc %d rows; %d %d", len(nl), len(pn), len(a), len(b))
	for _, p := range ps {
		for _, k := range []sockKey{keyOf(p.c, p.s), keyOf(p.s, p.c)} {
			x, ok1 := a[k]
			y, ok2 := b[k]
			if !ok1 || !ok2 || x != y || x.inode == 0 || x.uid != uint32(os.Getuid()) {
				t.Errorf("netlink %v %+v, /proc %v %+v", ok1, x, ok2, y)
			}
		}
	}
}
