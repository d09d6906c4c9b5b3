package sockets

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// TestMain lets the test binary double as the helper processes that some
// tests start (see helperMain).
func TestMain(m *testing.M) {
	if mode := os.Getenv("FTSOCK_HELPER"); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// ourComm is the command name the kernel gives this test binary:
// its file name cut to 15 bytes (TASK_COMM_LEN).
func ourComm() string {
	c := filepath.Base(os.Args[0])
	if len(c) > 15 {
		c = c[:15]
	}
	return c
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func addrPort(t testing.TB, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// pair is one loopback connection: the client's socket and the accepted
// one.
type pair struct {
	client, server *net.TCPConn
	c, s           netip.AddrPort // their local endpoints
}

// connect opens a listener on addr ("127.0.0.1:0", "[::1]:0") and one
// connection to it; everything is closed when the test ends.
func connect(t testing.TB, network, listen, dial string) pair {
	t.Helper()
	ln, err := net.Listen(network, listen)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, listen, err)
	}
	t.Cleanup(func() { ln.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp", net.JoinHostPort(dial, fmt.Sprint(port)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return pair{c.(*net.TCPConn), s.(*net.TCPConn), addrPort(t, c.LocalAddr()), addrPort(t, s.LocalAddr())}
}

// await refreshes r until the socket local→remote is in the kernel state
// want (state changes after a packet on loopback take microseconds, but
// give them time), and returns it.
func await(t testing.TB, r *Resolver, local, remote netip.AddrPort, want flows.State) Owner {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := r.Refresh(); err != nil {
			t.Fatal(err)
		}
		o, ok := r.Lookup(local, remote)
		if ok && o.KernelState == want {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v→%v: found %v, %+v; want kernel state %v", local, remote, ok, o, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkOwner(t testing.TB, what string, o Owner, pid int, comm string, via Via) {
	t.Helper()
	if o.PID != pid || o.Comm != comm || o.Via != via {
		t.Errorf("%s: PID %d comm %q via %v, want %d %q %v", what, o.PID, o.Comm, o.Via, pid, comm, via)
	}
}

// TestOwnConnections opens connections in this process over IPv4 and IPv6
// loopback, one of them half-closed, and checks the kernel states and that
// every socket is credited to this process.
func TestOwnConnections(t *testing.T) {
	for _, tc := range []struct{ name, network, listen, dial string }{
		{"ipv4", "tcp4", "127.0.0.1:0", "127.0.0.1"},
		{"ipv6", "tcp6", "[::1]:0", "::1"},
		// a dual-stack listener: the accepted socket is an IPv6 socket
		// with IPv4-mapped addresses, found with plain IPv4 ones
		{"v4-mapped", "tcp", "[::]:0", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			est := connect(t, tc.network, tc.listen, tc.dial)
			half := connect(t, tc.network, tc.listen, tc.dial)
			if err := half.client.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			r := New()
			pid, comm := os.Getpid(), ourComm()
			o := await(t, r, est.c, est.s, flows.StateEstablished)
			checkOwner(t, "client", o, pid, comm, ViaFD)
			o = await(t, r, est.s, est.c, flows.StateEstablished)
			checkOwner(t, "server", o, pid, comm, ViaFD)
			if o.Inode == 0 || o.Netns == 0 || o.Netns != r.selfNS || o.UID != uint32(os.Getuid()) || o.Gone {
				t.Errorf("server: %+v: want an inode, our namespace %d, our uid, not gone", o, r.selfNS)
			}
			o = await(t, r, half.c, half.s, flows.StateFinWait2)
			checkOwner(t, "half-closed client", o, pid, comm, ViaFD)
			o = await(t, r, half.s, half.c, flows.StateCloseWait)
			checkOwner(t, "half-closed server", o, pid, comm, ViaFD)

			st := r.Stats()
			if !st.Netlink || st.Err != nil || st.Sockets < 4 || st.Attributed < 4 || st.Processes == 0 || st.At.IsZero() {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestLookupKey finds both ends of a loopback connection from its
// flows.Key, whichever endpoint is endpoint 0.
func TestLookupKey(t *testing.T) {
	p := connect(t, "tcp4", "127.0.0.1:0", "127.0.0.1")
	r := New()
	await(t, r, p.c, p.s, flows.StateEstablished)
	var tu flows.Tuple
	c, s := p.c.Addr().As4(), p.s.Addr().As4()
	tu.SetV4(c[:], s[:])
	tu.SrcPort, tu.DstPort = p.c.Port(), p.s.Port()
	k, dir := tu.Key()
	owners, found := r.LookupKey(k)
	ci := 0 // the index of the client's endpoint in k
	if dir == flows.Dir1 {
		ci = 1
	}
	if !found[0] || !found[1] {
		t.Fatalf("found %v, want both", found)
	}
	if k.Endpoint(ci) != p.c || owners[ci].Inode == owners[1-ci].Inode {
		t.Errorf("endpoints %v %v, owners %+v", k.Endpoint(0), k.Endpoint(1), owners)
	}
	for i := range owners {
		checkOwner(t, fmt.Sprint("endpoint ", i), owners[i], os.Getpid(), ourComm(), ViaFD)
	}
	if _, ok := r.Lookup(netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("192.0.2.2:2")); ok {
		t.Error("found a socket that does not exist")
	}
}

// TestTimeWaitReadLess reads TIME_WAIT only every hour (TimeWaitEvery)
// while a connection closes from the client. A refresh that does not read
// TIME_WAIT must keep both sockets, their process known and their state
// not (no verdict can come of it), neither gone nor CLOSED; one that reads
// it finds the client in TIME_WAIT, credited to the process that held it,
// and the server gone; the next that does not read it keeps the client's
// TIME_WAIT as that read found it.
func TestTimeWaitReadLess(t *testing.T) {
	p := connect(t, "tcp4", "127.0.0.1:0", "127.0.0.1")
	r := New()
	r.TimeWaitEvery.Store(int64(time.Hour))
	await(t, r, p.c, p.s, flows.StateEstablished) // the first refresh reads every state
	p.client.Close()
	await(t, r, p.s, p.c, flows.StateCloseWait)
	p.server.Close()
	time.Sleep(50 * time.Millisecond) // the last ACK crosses loopback
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		what          string
		local, remote netip.AddrPort
	}{{"client", p.c, p.s}, {"server", p.s, p.c}} {
		o, ok := r.Lookup(e.local, e.remote)
		if !ok || o.Kernel || o.Gone || o.PID != os.Getpid() {
			t.Errorf("%s after a refresh without TIME_WAIT: found %v, %+v; want its process, no kernel state", e.what, ok, o)
		}
		if v := o.Compare(flows.StateClosed, time.Now().Add(-time.Hour), ok); v != Unknown {
			t.Errorf("%s: verdict %v, want none", e.what, v)
		}
	}
	r.TimeWaitEvery.Store(0)
	o := await(t, r, p.c, p.s, flows.StateTimeWait)
	checkOwner(t, "TIME_WAIT client", o, os.Getpid(), ourComm(), ViaFormer)
	if s, ok := r.Lookup(p.s, p.c); !ok || !s.Gone || s.KernelState != flows.StateClosed {
		t.Errorf("closed server after reading TIME_WAIT: %v, %+v; want gone", ok, s)
	}
	r.TimeWaitEvery.Store(int64(time.Hour))
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	if again, ok := r.Lookup(p.c, p.s); !ok || again.KernelState != flows.StateTimeWait || !again.Kernel || !again.Seen.Equal(o.Seen) || again.PID != o.PID {
		t.Errorf("TIME_WAIT client without reading TIME_WAIT: %v, %+v; want it as read at %v", ok, again, o.Seen)
	}
}

// TestFormerAndGone closes a connection from the client: its socket,
// then in TIME_WAIT, no longer belongs to any process but is still
// credited to the one that held it; the server's socket leaves the table
// and is remembered as gone.
func TestFormerAndGone(t *testing.T) {
	p := connect(t, "tcp4", "127.0.0.1:0", "127.0.0.1")
	r := New()
	await(t, r, p.c, p.s, flows.StateEstablished)
	await(t, r, p.s, p.c, flows.StateEstablished)
	p.client.Close()
	await(t, r, p.s, p.c, flows.StateCloseWait)
	p.server.Close()
	o := await(t, r, p.c, p.s, flows.StateTimeWait)
	checkOwner(t, "TIME_WAIT client", o, os.Getpid(), ourComm(), ViaFormer)
	if o.Inode != 0 || o.Gone {
		t.Errorf("TIME_WAIT client %+v: want no inode, not gone", o)
	}
	o = await(t, r, p.s, p.c, flows.StateClosed)
	if o.Via == ViaFormer { // a refresh saw it in LAST_ACK, after close
		o.Via = ViaFD
	}
	checkOwner(t, "closed server", o, os.Getpid(), ourComm(), ViaFD)
	if !o.Gone || o.Seen.IsZero() {
		t.Errorf("closed server %+v: want gone", o)
	}
	if st := r.Stats(); st.Remembered == 0 {
		t.Errorf("stats %+v: want a remembered socket", st)
	}
}

// TestAcceptQueue connects to a listener that has not accepted yet: the
// kernel's socket has no file, and is credited to the listener's process.
func TestAcceptQueue(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := New()
	o := await(t, r, addrPort(t, ln.Addr()), addrPort(t, c.LocalAddr()), flows.StateEstablished)
	checkOwner(t, "queued", o, os.Getpid(), ourComm(), ViaListener)
	if o.Inode != 0 {
		t.Errorf("queued %+v: want no inode", o)
	}
	if st := r.Stats(); st.Listeners == 0 {
		t.Errorf("stats %+v: want a listener", st)
	}
}

// TestChildProcess credits a connection to the child process that holds
// it, not to the test.
func TestChildProcess(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FTSOCK_HELPER=dial", "FTSOCK_ADDR="+ln.Addr().String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := New()
	o := await(t, r, addrPort(t, s.RemoteAddr()), addrPort(t, s.LocalAddr()), flows.StateEstablished)
	checkOwner(t, "child's socket", o, cmd.Process.Pid, ourComm(), ViaFD)
	o = await(t, r, addrPort(t, s.LocalAddr()), addrPort(t, s.RemoteAddr()), flows.StateEstablished)
	checkOwner(t, "our socket", o, os.Getpid(), ourComm(), ViaFD)
}

// helperMain runs a helper process's part and returns its exit code.
func helperMain(mode string) int {
	switch mode {
	case "dial": // connect to FTSOCK_ADDR and hold it until stdin closes
		c, err := net.Dial("tcp", os.Getenv("FTSOCK_ADDR"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer c.Close()
		io.Copy(io.Discard, os.Stdin)
		return 0
	case "pair": // make a loopback connection, print it, hold it until stdin closes
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		s, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("%d %s %s\n", os.Getpid(), c.LocalAddr(), s.LocalAddr())
		io.Copy(io.Discard, os.Stdin)
		c.Close()
		s.Close()
		return 0
	case "lookup": // as another user: refresh, look FTSOCK_LOCAL→FTSOCK_REMOTE up, print what was found
		r := New()
		if err := r.Refresh(); err != nil {
			fmt.Println("error", err)
			return 0
		}
		o, ok := r.Lookup(netip.MustParseAddrPort(os.Getenv("FTSOCK_LOCAL")), netip.MustParseAddrPort(os.Getenv("FTSOCK_REMOTE")))
		fmt.Printf("found=%v pid=%d state=%v via=%v denied=%d\n", ok, o.PID, o.KernelState, o.Via, r.Stats().Denied)
		for _, w := range r.Warnings() {
			fmt.Println("warning", w)
		}
		if w := r.Warnings(); len(w) != 0 {
			fmt.Println("repeated", w)
		}
		return 0
	}
	if code, ok := trackerHelper(mode); ok {
		return code
	}
	fmt.Fprintln(os.Stderr, "unknown helper", mode)
	return 2
}

// startPair starts the "pair" helper through run (a command line, such as
// ip netns exec NAME) and returns its PID and connection.
func startPair(t *testing.T, run ...string) (pid int, client, server netip.AddrPort) {
	t.Helper()
	args := append(slices.Clip(run), os.Args[0], "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "FTSOCK_HELPER=pair")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	var c, s string
	if _, err := fmt.Sscan(line, &pid, &c, &s); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return pid, netip.MustParseAddrPort(c), netip.MustParseAddrPort(s)
}

func TestKernelStateNames(t *testing.T) {
	want := map[uint8]string{
		1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECEIVED", 4: "FIN_WAIT_1", 5: "FIN_WAIT_2",
		6: "TIME_WAIT", 7: "CLOSED", 8: "CLOSE_WAIT", 9: "LAST_ACK", 11: "CLOSING", 12: "SYN_RECEIVED",
	}
	for s := uint8(0); s < 20; s++ {
		st, listen, ok := kernelState(s)
		switch {
		case s == 10:
			if !listen || !ok {
				t.Errorf("state 10: listen %v ok %v", listen, ok)
			}
		case want[s] != "":
			if !ok || listen || st.String() != want[s] {
				t.Errorf("state %d: %v %v %v, want %s", s, st, listen, ok, want[s])
			}
		default:
			if ok {
				t.Errorf("state %d accepted as %v", s, st)
			}
		}
	}
}

func TestCompare(t *testing.T) {
	now := time.Now()
	o := Owner{KernelState: flows.StateEstablished, Seen: now, Kernel: true}
	for _, tc := range []struct {
		inferred flows.State
		last     time.Time
		ok       bool
		want     Verdict
	}{
		{flows.StateEstablished, now.Add(-time.Second), false, Unknown},
		{flows.StateEstablished, now.Add(-time.Second), true, Agree},
		{flows.StateFinWait1, now.Add(-time.Second), true, Disagree},
		{flows.StateFinWait1, now.Add(-Settle / 2), true, Unsettled},
		{flows.StateFinWait1, now.Add(time.Second), true, Unsettled},
	} {
		if got := o.Compare(tc.inferred, tc.last, tc.ok); got != tc.want {
			t.Errorf("Compare(%v, %v, %v) = %v, want %v", tc.inferred, now.Sub(tc.last), tc.ok, got, tc.want)
		}
	}
}

func TestViaString(t *testing.T) {
	got := strings.Join([]string{ViaNone.String(), ViaFD.String(), ViaFormer.String(), ViaListener.String(), Via(9).String()}, " ")
	if got != "none fd former listener invalid" {
		t.Error(got)
	}
}
