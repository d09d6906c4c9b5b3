//go:build amd64 || arm64

// The architectures whose system call numbers bpf/tracer.bpf.c knows:
// elsewhere the tracepoint path credits accepts to the listener.

package sockets

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	moreHelpers["prefork"] = helperPrefork
	moreHelpers["acceptor"] = helperAcceptor
}

// helperPrefork is a pre-fork server: it listens on FTSOCK_LISTEN, prints
// the address, and starts FTSOCK_CHILDREN copies of the test binary that
// accept from its listening socket (the first with accept(2), the others
// with accept4(2)), writing to its own output; it never accepts itself.
// It ends, and its children with it, when its input closes.
func helperPrefork() error {
	ln, err := net.Listen("tcp", os.Getenv("FTSOCK_LISTEN"))
	if err != nil {
		return err
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	n, _ := strconv.Atoi(os.Getenv("FTSOCK_CHILDREN"))
	var kids []*exec.Cmd
	var stdins []io.Closer
	for i := 0; i < n; i++ {
		call := "accept4"
		if i == 0 {
			call = "accept"
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FTSOCK_HELPER=acceptor", "FTSOCK_CALL="+call, "FTSOCK_QUOTA="+os.Getenv("FTSOCK_QUOTA"))
		cmd.ExtraFiles = []*os.File{f} // descriptor 3
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		in, err := cmd.StdinPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			return err
		}
		kids, stdins = append(kids, cmd), append(stdins, in)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	for i, k := range kids {
		stdins[i].Close()
		_ = k.Wait()
	}
	return nil
}

// helperAcceptor accepts FTSOCK_QUOTA connections, in a blocking loop,
// from the listening socket it was given as descriptor 3, with the system
// call FTSOCK_CALL, and prints "a PID LOCAL REMOTE" for each, from the
// accepted socket's own addresses; it first prints "r PID". Its quota
// met, it leaves the rest to the other acceptors. It exits when its input
// closes.
func helperAcceptor() error {
	const lfd = 3
	if err := unix.SetNonblock(lfd, false); err != nil {
		return err
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	pid := os.Getpid()
	quota, _ := strconv.Atoi(os.Getenv("FTSOCK_QUOTA"))
	fmt.Printf("r %d\n", pid)
	for ; quota > 0; quota-- {
		var fd int
		var err error
		if os.Getenv("FTSOCK_CALL") == "accept" {
			r, _, errno := unix.Syscall(unix.SYS_ACCEPT, lfd, 0, 0)
			fd = int(r)
			if errno != 0 {
				err = errno
			}
		} else {
			fd, _, err = unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		}
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
			quota++
			continue
		}
		if err != nil {
			return err
		}
		local, err1 := unix.Getsockname(fd)
		remote, err2 := unix.Getpeername(fd)
		if err1 == nil && err2 == nil {
			// One write per line: the lines of several acceptors on one
			// pipe do not mix.
			fmt.Printf("a %d %v %v\n", pid, sockaddrPort(local), sockaddrPort(remote))
		}
		unix.Close(fd)
	}
	select {} // until the input closes
}

func sockaddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// TestTrackerPrefork: a pre-fork server listens in a parent process and
// accepts in three children that share its listening socket (one calls
// accept(2), two accept4(2), a third of the connections each), in a
// network namespace; a client makes short connections to it. The server end of each connection must be named
// after the child that accepted it, by PID (the truth: each child's own
// report of the ports it accepted), not after the parent that listens,
// on every path that traces accepts. With accepts untraced, the fallback
// credits every one to the listener's process, the parent: the check
// tells the two apart.
func TestTrackerPrefork(t *testing.T) {
	mustRoot(t, "load eBPF programs and make a network namespace")
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"default", Config{}}, // fexit where the kernel allows it
		{"trace events", Config{tracepoint: true}},
		{"sys_exit", Config{tracepoint: true, acceptBTF: true}},
		{"listener credit", Config{tracepoint: true, noAccept: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustEBPF(t, tc.cfg)
			hook := map[bool]string{true: "trace events sys_exit_accept", false: "tracepoint sys_exit: accept"}[!tc.cfg.acceptBTF]
			if tc.cfg.tracepoint && !tc.cfg.noAccept && !strings.Contains(tr.Source(), hook) {
				t.Errorf("accepts not traced from %q: %s", hook, tr.Source())
			}
			startTracker(t, tr)
			checkPrefork(t, tr, !tc.cfg.noAccept)
		})
	}
}

func checkPrefork(t *testing.T, tr *Tracker, exact bool) {
	t.Helper()
	ns, _ := newNetns(t)
	const kids, n = 3, 90
	srv := startChild(t, "prefork", []string{"FTSOCK_LISTEN=127.0.0.1:0", "FTSOCK_CHILDREN=" + strconv.Itoa(kids), "FTSOCK_QUOTA=" + strconv.Itoa(n/kids)}, "ip", "netns", "exec", ns)
	addr := srv.line(t)
	waitFor(t, "the acceptors to start", func() bool { return len(srv.readied) == kids }, srv)
	cl := startChild(t, "storm", []string{"FTSOCK_ADDR=" + addr, "FTSOCK_N=" + strconv.Itoa(n)}, "ip", "netns", "exec", ns)
	cl.line(t)
	fmt.Fprintln(cl.stdin, "go")
	cl.wait(t)
	total := func() int {
		k := 0
		for _, cs := range srv.accepted {
			k += len(cs)
		}
		return k
	}
	waitFor(t, "every connection to be accepted", func() bool { return total() == n }, srv)
	awaitDrained(t, tr)

	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.accepted) != kids {
		t.Errorf("%d of %d acceptors accepted connections: %v", len(srv.accepted), kids, srv.readied)
	}
	bad := 0
	for pid, cs := range srv.accepted {
		want, via := pid, ViaAccept
		if !exact {
			want, via = srv.pid, ViaListener
		}
		for _, c := range cs {
			o, ok := tr.Lookup(c.local, c.remote)
			if !ok || o.PID != want || o.Via != via || o.Comm != ourComm() {
				if bad++; bad <= 3 {
					t.Errorf("accepted by %d: %v→%v: found %v, pid %d comm %q via %v; want pid %d via %v", pid, c.local, c.remote, ok, o.PID, o.Comm, o.Via, want, via)
				}
			}
		}
	}
	for _, c := range cl.conns {
		if o, ok := tr.Lookup(c.local, c.remote); !ok || o.PID != cl.pid || o.Via != ViaConnect {
			if bad++; bad <= 6 {
				t.Errorf("client %v→%v: found %v %+v, want pid %d via connect", c.local, c.remote, ok, o, cl.pid)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d ends misnamed (listener's pid %d)", bad, 2*n, srv.pid)
	}
}

// waitFor waits up to 10 s for cond, which reads c under its lock.
func waitFor(t *testing.T, what string, cond func() bool, c *child) {
	t.Helper()
	for i := 0; i < 200; i++ {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("waited 10 s for %s", what)
}

// TestTrackerAcceptWithoutSysAdmin: without CAP_SYS_ADMIN (flowtrack given
// cap_bpf and cap_perfmon, or in a container) tracefs cannot be mounted
// for the trace events of accept: where it is not mounted already, and
// fexit is refused, sys_exit names accepting processes instead. The
// helper, the test binary run without CAP_SYS_ADMIN (setpriv, from
// util-linux), says which hooks its Tracker uses.
func TestTrackerAcceptWithoutSysAdmin(t *testing.T) {
	tr := mustEBPF(t, Config{})
	full := tr.Source()
	tr.Close()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("needs setpriv (util-linux): %v", err)
	}
	cmd := exec.Command(setpriv, "--bounding-set=-sys_admin", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FTSOCK_HELPER=source")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper without CAP_SYS_ADMIN: %v: %s", err, out)
	}
	var st unix.Statfs_t
	mounted := unix.Statfs("/sys/kernel/tracing", &st) == nil && st.Type == unix.TRACEFS_MAGIC
	want := "tracepoint sys_exit: accept, accept4"
	switch {
	case strings.Contains(full, "fexit inet_csk_accept"):
		want = "fexit inet_csk_accept"
	case mounted:
		want = "trace events sys_exit_accept"
	}
	if !strings.Contains(string(out), want) || !strings.Contains(full, "eBPF") {
		t.Errorf("without CAP_SYS_ADMIN: %q, want %q (with it: %q)", out, want, full)
	}
}
