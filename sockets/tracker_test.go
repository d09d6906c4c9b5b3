package sockets

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mustRoot fails a test that needs root when CI is set (CI runs as root
// and must run it), and skips it elsewhere.
func mustRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("needs root to %s, and CI must run it", why)
	}
	t.Skipf("needs root to %s", why)
}

// mustEBPF makes a Tracker and fails (skips outside CI) if it could not
// load its eBPF programs.
func mustEBPF(t testing.TB, cfg Config) *Tracker {
	t.Helper()
	mustRoot(t, "load eBPF programs")
	tr := NewTracker(cfg)
	if !tr.EBPF() {
		if os.Getenv("CI") == "true" {
			t.Fatalf("eBPF unavailable: %v", tr.Unavailable())
		}
		t.Skipf("eBPF unavailable: %v", tr.Unavailable())
	}
	return tr
}

// startTracker starts tr until the test ends.
func startTracker(t *testing.T, tr *Tracker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr.Start(ctx)
	t.Cleanup(func() { cancel(); tr.Wait() })
}

// conn is one connection a helper made or accepted: its local and remote
// endpoints, as the helper's own socket reported them.
type conn struct{ local, remote netip.AddrPort }

// child is a helper process and what it reported.
type child struct {
	pid   int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	conns []conn
	ready chan string // its first line
	done  chan struct{}
	// Lines "a PID LOCAL REMOTE" are connections accepted by process PID
	// (the helper's own children, writing to its output), "r PID" that
	// PID is ready.
	accepted map[int][]conn
	readied  []int
}

// startChild starts the test binary as helper mode through run (such as
// ip netns exec NAME), with env added. Lines "c LOCAL REMOTE" it prints
// are its connections; its first line is handed to ready.
func startChild(t *testing.T, mode string, env []string, run ...string) *child {
	t.Helper()
	args := append(append([]string{}, run...), os.Args[0], "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(append(os.Environ(), "FTSOCK_HELPER="+mode), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{pid: cmd.Process.Pid, cmd: cmd, stdin: stdin, ready: make(chan string, 1), done: make(chan struct{})}
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill() // ours, by its PID
			<-c.done
		}
	})
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(out)
		first := true
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if first {
				c.ready <- sc.Text()
				first = false
			}
			c.parse(f)
		}
		cmd.Wait()
	}()
	return c
}

// parse records what a line of the helper's output reports.
func (c *child) parse(f []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(f) == 3 && f[0] == "c":
		l, err1 := netip.ParseAddrPort(f[1])
		r, err2 := netip.ParseAddrPort(f[2])
		if err1 == nil && err2 == nil {
			c.conns = append(c.conns, conn{l, r})
		}
	case len(f) == 4 && f[0] == "a":
		pid, err0 := strconv.Atoi(f[1])
		l, err1 := netip.ParseAddrPort(f[2])
		r, err2 := netip.ParseAddrPort(f[3])
		if err0 == nil && err1 == nil && err2 == nil {
			if c.accepted == nil {
				c.accepted = make(map[int][]conn)
			}
			c.accepted[pid] = append(c.accepted[pid], conn{l, r})
		}
	case len(f) == 2 && f[0] == "r":
		if pid, err := strconv.Atoi(f[1]); err == nil {
			c.readied = append(c.readied, pid)
		}
	}
}

func (c *child) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}

func (c *child) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("helper %d did not finish", c.pid)
	}
	if c.cmd.ProcessState == nil || !c.cmd.ProcessState.Success() {
		t.Fatalf("helper %d: %v", c.pid, c.cmd.ProcessState)
	}
}

func (c *child) line(t *testing.T) string {
	t.Helper()
	select {
	case l := <-c.ready:
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("helper %d said nothing", c.pid)
		return ""
	}
}

// trackerHelper runs the helper modes of the tracker tests.
func trackerHelper(mode string) (int, bool) {
	var err error
	switch mode {
	case "serve": // listen on FTSOCK_LISTEN, print "ADDR", accept until stdin closes, printing each
		err = helperServe(os.Getenv("FTSOCK_LISTEN"))
	case "storm": // say ready, wait for a line, then make FTSOCK_N short connections to FTSOCK_ADDR, FTSOCK_PAUSE apart: connect, send, close
		n, _ := strconv.Atoi(os.Getenv("FTSOCK_N"))
		fmt.Println("ready")
		if _, err = bufio.NewReader(os.Stdin).ReadString('\n'); err == nil {
			pause, _ := time.ParseDuration(os.Getenv("FTSOCK_PAUSE"))
			err = helperStorm(os.Getenv("FTSOCK_ADDR"), n, pause)
		}
	case "source": // print which source a Tracker uses
		tr := NewTracker(Config{})
		fmt.Println(tr.Source())
		err = nil
	default:
		h, ok := moreHelpers[mode]
		if !ok {
			return 0, false
		}
		err = h()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1, true
	}
	return 0, true
}

// moreHelpers are helper modes defined where only some architectures
// build them.
var moreHelpers = map[string]func() error{}

func helperServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	var mu sync.Mutex
	go func() {
		io.Copy(io.Discard, os.Stdin)
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil // closed
		}
		mu.Lock()
		fmt.Println("c", c.LocalAddr(), c.RemoteAddr())
		mu.Unlock()
		go func() {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			var b [16]byte
			c.Read(b[:])
			c.Close()
		}()
	}
}

func helperStorm(addr string, n int, pause time.Duration) error {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for i := 0; i < n; i++ {
		time.Sleep(pause)
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "c", c.LocalAddr(), c.RemoteAddr())
		c.Write([]byte("x"))
		c.Close()
	}
	return nil
}

// ipNS runs ip with args, failing the test on error.
func ipNS(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newCgroup makes a cgroup v2 child of this process's own cgroup, removed
// when the test ends (after the processes in it have exited). It returns
// its directory, path and id.
func newCgroup(t *testing.T) (dir, path string, id uint64) {
	t.Helper()
	root := cgroup2Mount("/proc")
	b, err := os.ReadFile("/proc/self/cgroup")
	own, ok := cgroupV2Path(b)
	if root == "" || err != nil || !ok {
		t.Fatalf("no cgroup v2 here (mount %q, own %q): %v", root, own, err)
	}
	path = strings.TrimSuffix(own, "/") + fmt.Sprintf("/ftsock-%d", os.Getpid())
	dir = root + path
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			if err := syscall.Rmdir(dir); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("cannot remove cgroup %s", dir)
	})
	id, ok = inode(dir)
	if !ok {
		t.Fatal("cannot stat", dir)
	}
	return dir, path, id
}

// TestTrackerShortConnections: processes in two network namespaces, one
// of them in its own cgroup, make many short connections (connect, send a
// byte, close) to servers that accept them, across a veth pair and over
// loopback. Every end of every connection must be named after the helper
// that made or accepted it, by PID (the truth: the PIDs this test
// started), however short-lived.
func TestTrackerShortConnections(t *testing.T) {
	mustRoot(t, "load eBPF programs and make network namespaces")
	tr := mustEBPF(t, Config{})
	startTracker(t, tr)
	a, b := vethPair(t)
	cgDir, cgPath, cgID := newCgroup(t)

	srvB := startChild(t, "serve", []string{"FTSOCK_LISTEN=192.0.2.2:0"}, "ip", "netns", "exec", b)
	addrB := srvB.line(t)
	srvA := startChild(t, "serve", []string{"FTSOCK_LISTEN=[::1]:0"}, "ip", "netns", "exec", a)
	addrA := srvA.line(t)
	const n = 300
	clients := []*child{
		startChild(t, "storm", []string{"FTSOCK_ADDR=" + addrB, "FTSOCK_N=" + strconv.Itoa(n)}, "ip", "netns", "exec", a),
		startChild(t, "storm", []string{"FTSOCK_ADDR=" + addrB, "FTSOCK_N=" + strconv.Itoa(n)}, "ip", "netns", "exec", a),
		startChild(t, "storm", []string{"FTSOCK_ADDR=" + addrA, "FTSOCK_N=" + strconv.Itoa(n)}, "ip", "netns", "exec", a),
	}
	for _, c := range clients {
		c.line(t)
	}
	// ip netns exec mounts a /sys of its own: the second client is moved
	// into the cgroup from here, before it makes any connection.
	if err := os.WriteFile(cgDir+"/cgroup.procs", []byte(strconv.Itoa(clients[1].pid)), 0); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		fmt.Fprintln(c.stdin, "go")
	}
	for _, c := range clients {
		c.wait(t)
	}
	for i := 0; i < 100 && (srvA.count() < n || srvB.count() < 2*n); i++ {
		time.Sleep(50 * time.Millisecond) // let the servers accept what is in their backlogs
	}
	srvA.stdin.Close()
	srvB.stdin.Close()
	srvA.wait(t)
	srvB.wait(t)
	awaitDrained(t, tr)

	check := func(who string, c *child, wantCgroup uint64) {
		t.Helper()
		server := c == srvA || c == srvB
		checkNamed(t, tr, who, c, n, server, wantCgroup, cgPath)
	}
	check("client across the veth", clients[0], 0)
	check("client in its own cgroup", clients[1], cgID)
	check("client over loopback (IPv6)", clients[2], 0)
	check("server across the veth", srvB, 0)
	check("server over loopback", srvA, 0)
	if len(srvB.conns) != 2*n || len(srvA.conns) != n {
		t.Errorf("servers accepted %d and %d connections, want %d and %d", len(srvB.conns), len(srvA.conns), 2*n, n)
	}
	if st := tr.Stats(); st.Lost != 0 {
		t.Errorf("%d events lost", st.Lost)
	}
}

// awaitDrained waits until the event count stops moving (the reader has
// caught up with the ring).
func awaitDrained(t *testing.T, tr *Tracker) {
	t.Helper()
	last := tr.Stats().Events
	for i := 0; i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		if n := tr.Stats().Events; n == last && n > 0 {
			return
		} else {
			last = n
		}
	}
	t.Fatalf("events kept coming: %d", last)
}

// TestTrackerRefused: a connection refused at once (SYN, RST) is named
// after the process that tried it, with its real local port (the kernel
// gives the port back before the socket is CLOSED).
func TestTrackerRefused(t *testing.T) {
	tr := mustEBPF(t, Config{})
	startTracker(t, tr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 0}}
	// The local port of a refused connect is not reported: find it
	// among the owners by its peer.
	if _, err := d.Dial("tcp", addr.String()); err == nil {
		t.Fatal("connected to a closed port")
	}
	awaitDrained(t, tr)
	tr.owners.mu.RLock()
	defer tr.owners.mu.RUnlock()
	found := 0
	for k, e := range tr.owners.socks {
		if addrPortOf(k.remote, k.rport) != addr {
			continue
		}
		found++
		if k.lport == 0 || e.o.PID != os.Getpid() || e.o.Via != ViaConnect || e.closed.IsZero() {
			t.Errorf("local port %d: %+v, closed %v; want PID %d, via connect, closed", k.lport, e.o, e.closed, os.Getpid())
		}
	}
	if found != 1 {
		t.Errorf("%d owners of connections to %v, want 1", found, addr)
	}
}

// TestTrackerRingOverrun: with a ring of one page and nobody reading,
// most events of a burst of connections are lost. The loss is counted,
// the capture goes on, the owners already known stay known, and events
// after the overrun name their processes again.
func TestTrackerRingOverrun(t *testing.T) {
	tr := mustEBPF(t, Config{Ring: os.Getpagesize()})
	srv := startChild(t, "serve", []string{"FTSOCK_LISTEN=127.0.0.1:0"})
	addr := srv.line(t)
	burst := startChild(t, "storm", []string{"FTSOCK_ADDR=" + addr, "FTSOCK_N=400"})
	burst.line(t)
	fmt.Fprintln(burst.stdin, "go")
	burst.wait(t) // before the Tracker reads anything: the ring overflows
	startTracker(t, tr)
	awaitDrained(t, tr)
	named := 0
	for _, c := range burst.conns {
		if o, ok := tr.Lookup(c.local, c.remote); ok && o.PID == burst.pid {
			named++
		}
	}
	// Paced, for a reader of a one-page ring to keep up.
	after := startChild(t, "storm", []string{"FTSOCK_ADDR=" + addr, "FTSOCK_N=20", "FTSOCK_PAUSE=5ms"})
	after.line(t)
	fmt.Fprintln(after.stdin, "go")
	after.wait(t)
	awaitDrained(t, tr)
	time.Sleep(1100 * time.Millisecond) // the loss is read every second
	st := tr.Stats()
	if st.Lost == 0 || named == 0 || named == len(burst.conns) {
		t.Errorf("lost %d events, named %d of %d connections of the burst: want some lost and some named", st.Lost, named, len(burst.conns))
	}
	for _, c := range after.conns {
		if o, ok := tr.Lookup(c.local, c.remote); !ok || o.PID != after.pid {
			t.Errorf("after the overrun: %v→%v: %v %+v, want PID %d", c.local, c.remote, ok, o, after.pid)
		}
	}
	again := 0 // what was named stays named
	for _, c := range burst.conns {
		if o, ok := tr.Lookup(c.local, c.remote); ok && o.PID == burst.pid {
			again++
		}
	}
	if again < named {
		t.Errorf("%d connections of the burst named after the overrun, %d before", again, named)
	}
	if !strings.Contains(tr.Source(), "eBPF") {
		t.Errorf("source %q", tr.Source())
	}
}

// TestTrackerFallback: refused eBPF (--no-ebpf, or an unprivileged
// process), the socket table still names the process of a connection
// that lasts, and Source says why eBPF is not used and what to do.
func TestTrackerFallback(t *testing.T) {
	tr := NewTracker(Config{NoEBPF: true})
	if tr.EBPF() || !strings.Contains(tr.Source(), "--no-ebpf") || !strings.Contains(tr.Source(), "socket table") {
		t.Errorf("--no-ebpf: EBPF %v, source %q", tr.EBPF(), tr.Source())
	}
	p := connect(t, "tcp4", "127.0.0.1:0", "127.0.0.1")
	startTracker(t, tr)
	o, ok := tr.Lookup(p.c, p.s)
	if !ok || o.PID != os.Getpid() || o.Via != ViaFD || o.Proc == nil || o.Proc.Exe == "" {
		t.Errorf("--no-ebpf: %v %+v proc %+v, want PID %d from the socket table, with its executable", ok, o, o.Proc, os.Getpid())
	}

	mustRoot(t, "run a helper as another user")
	// A copy of the test binary that another user may run.
	dir := t.TempDir()
	bin := dir + "/helper"
	b, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(bin, b, 0o755)
	}
	if err != nil || os.Chmod(dir, 0o755) != nil || os.Chmod(filepath.Dir(dir), 0o755) != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "FTSOCK_HELPER=source")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as nobody: %v: %s", err, out)
	}
	if s := string(out); !strings.Contains(s, "eBPF not used: no CAP_BPF and CAP_PERFMON") || !strings.Contains(s, "setcap cap_net_raw,cap_net_admin,cap_bpf,cap_perfmon+eip") {
		t.Errorf("unprivileged: %q", s)
	}
}

// vethPair makes two network namespaces joined by a veth, 192.0.2.1 in the
// first and 192.0.2.2 in the second, and returns their names.
func vethPair(t *testing.T) (a, b string) {
	t.Helper()
	a, _ = newNetns(t)
	b, _ = newNetns(t)
	va, vb := fmt.Sprintf("fta%d", os.Getpid()%100000), fmt.Sprintf("ftb%d", os.Getpid()%100000)
	ipNS(t, "link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b)
	ipNS(t, "-n", a, "addr", "add", "192.0.2.1/24", "dev", va)
	ipNS(t, "-n", b, "addr", "add", "192.0.2.2/24", "dev", vb)
	ipNS(t, "-n", a, "link", "set", va, "up")
	ipNS(t, "-n", b, "link", "set", vb, "up")
	return a, b
}

// checkNamed checks that every connection child c made (n of them, unless
// it is a server) or accepted is named after c's pid and our command, and
// with the cgroup, if wantCgroup is not 0.
func checkNamed(t *testing.T, tr *Tracker, who string, c *child, n int, server bool, wantCgroup uint64, cgPath string) {
	t.Helper()
	if len(c.conns) < n && !server {
		t.Errorf("%s made %d connections, want %d", who, len(c.conns), n)
	}
	bad := 0
	for _, cn := range c.conns {
		o, ok := tr.Lookup(cn.local, cn.remote)
		if !ok || o.PID != c.pid || o.Comm != ourComm() || (wantCgroup != 0 && (o.Proc == nil || o.Proc.CgroupID != wantCgroup || o.Proc.Cgroup != cgPath)) {
			if bad++; bad <= 3 {
				t.Errorf("%s %v→%v: found %v, pid %d comm %q via %v proc %+v; want pid %d", who, cn.local, cn.remote, ok, o.PID, o.Comm, o.Via, o.Proc, c.pid)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d connections misnamed", who, bad, len(c.conns))
	}
}
