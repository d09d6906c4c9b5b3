package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// methods are the capture methods the live tests run with: libpcap, one
// AF_PACKET socket, and a fanout group of two.
var methods = []struct {
	name    string
	method  string
	sockets int
}{{"pcap", MethodPcap, 1}, {"afpacket", MethodAFPacket, 1}, {"fanout", MethodAFPacket, 2}}

// openLoopback opens a live capture on lo, or skips the test when this
// process may not capture.
func openLoopback(t *testing.T, filter, method string, sockets int) Source {
	t.Helper()
	src, err := OpenLive("lo", LiveConfig{Filter: filter, Timeout: 50 * time.Millisecond, Method: method, Sockets: sockets})
	switch {
	case errors.Is(err, ErrPermission):
		t.Skipf("not allowed to capture (run as root or with CAP_NET_RAW): %v", err)
	case errors.Is(err, ErrNoInterface):
		t.Skipf("no loopback interface named lo: %v", err)
	case err != nil:
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	return src
}

// A TCP handshake over 127.0.0.1 is captured and decoded live, each
// packet once (loopback frames pass the capture point twice), by libpcap
// and by one AF_PACKET socket.
func TestLiveLoopbackHandshake(t *testing.T) {
	for _, m := range methods[:2] {
		t.Run(m.name, func(t *testing.T) { testLoopbackHandshake(t, m.method) })
	}
}

func testLoopbackHandshake(t *testing.T, method string) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	src := openLoopback(t, fmt.Sprintf("tcp port %d", port), method, 1)
	if src.Name() != "lo" {
		t.Errorf("Name %q", src.Name())
	}

	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := uint16(conn.LocalAddr().(*net.TCPAddr).Port)

	d := NewDecoder()
	var p flows.Packet
	var seen []string
	deadline := time.Now().Add(5 * time.Second)
	for len(seen) < 3 && time.Now().Before(deadline) {
		data, ci, link, err := src.Next()
		if errors.Is(err, ErrTimeout) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if r := d.Decode(link, data, ci, &p); r != ResultTCP {
			t.Fatalf("a frame matching the filter decoded as %v", r)
		}
		lo := netip4("127.0.0.1")
		if p.Tuple.V6 || p.Tuple.Src != lo || p.Tuple.Dst != lo {
			t.Errorf("tuple %+v", p.Tuple)
		}
		switch {
		case p.Flags == flows.SYN && p.Tuple.SrcPort == client && p.Tuple.DstPort == port:
			seen = append(seen, "SYN")
			if p.WScale < 0 {
				t.Error("Linux's SYN carries a window scale option")
			}
		case p.Flags == flows.SYN|flows.ACK && p.Tuple.SrcPort == port && p.Tuple.DstPort == client:
			seen = append(seen, "SYN-ACK")
		case p.Flags == flows.ACK && p.Tuple.SrcPort == client && p.Tuple.DstPort == port && len(seen) == 2:
			seen = append(seen, "ACK")
		default:
			t.Errorf("frame %v %v (a copy?) after %v", p.Flags, p.Tuple, seen)
		}
		if p.FrameLen == 0 || p.TS == 0 {
			t.Errorf("packet %+v", p)
		}
	}
	if !slices.Equal(seen, []string{"SYN", "SYN-ACK", "ACK"}) {
		t.Fatalf("saw %v of the handshake between ports %d and %d", seen, client, port)
	}
	if st, err := src.Stats(); err != nil || st.PacketsReceived < 3 {
		t.Errorf("Stats %+v, %v", st, err)
	}
}

func netip4(s string) [16]byte {
	var a [16]byte
	a[10], a[11] = 0xff, 0xff
	copy(a[12:], net.ParseIP(s).To4())
	return a
}

// Run on a silent interface returns promptly once its context is done,
// whatever reads it.
func TestLiveRunStopsOnCancel(t *testing.T) {
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) { testRunStopsOnCancel(t, m.method, m.sockets) })
	}
}

func testRunStopsOnCancel(t *testing.T, method string, sockets int) {
	src := openLoopback(t, "tcp port 9 and host 192.0.2.77", method, sockets) // matches nothing on lo
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var c Counters
	go func() { done <- Run(ctx, src, NewDecoder(), &c, 0, PacketFunc(func(*flows.Packet) {})) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Run took %v to stop", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2 s of the cancel")
	}
	if c.Timeouts.Load() == 0 || c.Frames.Load() != 0 {
		t.Errorf("%d timeouts, %d frames", c.Timeouts.Load(), c.Frames.Load())
	}
}

// Run with maxFrames returns once it has read that many frames, whatever
// reads them, without waiting for another (-c).
func TestLiveRunStopsAtCount(t *testing.T) {
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) { testRunStopsAtCount(t, m.method, m.sockets) })
	}
}

func testRunStopsAtCount(t *testing.T, method string, sockets int) {
	ln, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.LocalAddr().(*net.UDPAddr).Port
	src := openLoopback(t, fmt.Sprintf("udp dst port %d", port), method, sockets)
	conn, err := net.Dial("udp4", ln.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 3
	for i := range n {
		if _, err := conn.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	var c Counters
	go func() { done <- Run(ctx, src, NewDecoder(), &c, n, PacketFunc(func(*flows.Packet) {})) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("Run still reading 3 s after %d datagrams with maxFrames %d (%d frames read)", n, n, c.Frames.Load())
	}
	if c.Frames.Load() != n {
		t.Errorf("%d frames read, want %d", c.Frames.Load(), n)
	}
}

// Both methods refuse an unknown interface and a bad filter with the
// same message; AF_PACKET refuses "any", which it cannot read.
func TestOpenLiveErrors(t *testing.T) {
	for _, m := range methods {
		_, err := OpenLive("nosuchif0", LiveConfig{Method: m.method, Sockets: m.sockets})
		if !errors.Is(err, ErrNoInterface) || !strings.Contains(err.Error(), `no interface "nosuchif0"`) || !strings.Contains(err.Error(), "lo") {
			t.Errorf("%s: unknown interface: %v", m.name, err)
		}
		src, err := OpenLive("lo", LiveConfig{Filter: "tcp port", Method: m.method, Sockets: m.sockets})
		switch {
		case errors.Is(err, ErrPermission):
			t.Skipf("not allowed to capture: %v", err)
		case err == nil:
			src.Close()
			t.Fatalf("%s: a bad filter was accepted", m.name)
		}
		if !errors.Is(err, ErrFilter) || !strings.Contains(err.Error(), `invalid capture filter "tcp port"`) || !strings.Contains(err.Error(), "syntax error") {
			t.Errorf("%s: bad filter: %v", m.name, err)
		}
	}
	if _, err := OpenLive("any", LiveConfig{Method: MethodAFPacket}); err == nil || !strings.Contains(err.Error(), "--capture pcap") {
		t.Errorf("AF_PACKET on any: %v", err)
	}
}

// The messages libpcap gives for a refused activation.
func TestActivateErrorMessages(t *testing.T) {
	for _, c := range []struct {
		libpcap string
		kind    error
		msg     string
	}{
		{"Permission Denied", ErrPermission, "capturing on eth0 needs root: run with sudo, or give the binary the capabilities: sudo setcap cap_net_raw,cap_net_admin+eip $(which flowtrack)"},
		{"Error: socket: Operation not permitted", ErrPermission, "needs root"},
		{"unknown activated error: -11", ErrPermission, "needs root"},
		{"Interface Not Up", ErrCapture, "interface eth0 is down"},
		{"Error: something else", ErrCapture, "cannot capture on eth0: Error: something else"},
	} {
		err := activateError("eth0", errors.New(c.libpcap))
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q gave %v", c.libpcap, err)
		}
	}
}

func TestInterfaces(t *testing.T) {
	ifs, err := Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range ifs {
		if it.Index != i+1 || it.Name == "" {
			t.Errorf("interface %d: %+v", i, it)
		}
		if it.Name == "lo" {
			if !slices.Contains(it.Flags, "Loopback") || !slices.Contains(it.Addresses, "127.0.0.1/8") {
				t.Errorf("lo: %+v", it)
			}
			if s := it.String(); !strings.HasPrefix(s, fmt.Sprintf("%d.lo [", it.Index)) {
				t.Errorf("String %q", s)
			}
			return
		}
	}
	if _, err := os.Stat("/sys/class/net/lo"); err == nil {
		t.Errorf("lo is not among %+v", ifs)
	}
}
