package sockets

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/flows"
	"golang.org/x/sys/unix"
)

// needRoot skips a test that needs root, saying why.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to %s", why)
	}
}

// newNetns makes a network namespace with ip netns add, brings its loopback
// up, and deletes it when the test ends, whether it passes or not. It
// returns the namespace's name and inode.
func newNetns(t *testing.T) (string, uint64) {
	t.Helper()
	needRoot(t, "create a network namespace")
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2) to create a network namespace")
	}
	name := fmt.Sprintf("ftsock-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s link set lo up: %v: %s", name, err, out)
	}
	var st unix.Stat_t
	if err := unix.Stat("/run/netns/"+name, &st); err != nil {
		t.Fatal(err)
	}
	return name, st.Ino
}

// TestNetns makes a loopback connection inside a new network namespace,
// in a child process, and finds it with its process and namespace, through
// netlink (setns) and through /proc/<pid>/net/tcp.
func TestNetns(t *testing.T) {
	name, ino := newNetns(t)
	pid, c, s := startPair(t, "ip", "netns", "exec", name)
	for _, tc := range []struct {
		name      string
		noNetlink bool
	}{{"netlink", false}, {"proc", true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := New()
			r.noNetlink = tc.noNetlink
			for _, e := range [][2]string{{c.String(), s.String()}, {s.String(), c.String()}} {
				local, remote := mustAddrPort(e[0]), mustAddrPort(e[1])
				o := await(t, r, local, remote, flows.StateEstablished)
				checkOwner(t, e[0], o, pid, ourComm(), ViaFD)
				if o.Netns != ino || o.Netns == r.selfNS {
					t.Errorf("%s: netns %d, want %d (ours is %d)", e[0], o.Netns, ino, r.selfNS)
				}
			}
			st := r.Stats()
			if st.Netns < 2 || st.ReadNetns[0] != r.selfNS || st.Netlink == tc.noNetlink {
				t.Errorf("stats %+v", st)
			}
			for _, w := range r.Warnings() { // other tests' namespaces may come and go
				if strings.Contains(w, fmt.Sprint(ino)) || strings.Contains(w, "refused") {
					t.Errorf("warning %q", w)
				}
			}
		})
	}
}

// TestNetnsWithoutProcess finds a socket in a named namespace that no
// process is in any more: a TIME_WAIT left behind by a helper that exited.
func TestNetnsWithoutProcess(t *testing.T) {
	name, ino := newNetns(t)
	cmd := exec.Command("ip", "netns", "exec", name, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FTSOCK_HELPER=pair")
	cmd.Stdin = strings.NewReader("") // the helper closes at once: its client first, so the client ends in TIME_WAIT
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	var c, s string
	if _, err := fmt.Sscan(string(out), &pid, &c, &s); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	r := New()
	o := await(t, r, mustAddrPort(c), mustAddrPort(s), flows.StateTimeWait)
	if o.Netns != ino || o.PID != 0 || o.Via != ViaNone {
		t.Errorf("%+v: want netns %d, no process", o, ino)
	}
}

// TestUnprivileged looks up a connection of this (root) process from a
// helper running as nobody: the kernel state is there, the process is not,
// and the reason is reported once.
func TestUnprivileged(t *testing.T) {
	needRoot(t, "run a helper as another user")
	p := connect(t, "tcp4", "127.0.0.1:0", "127.0.0.1")
	// The test binary lives in a directory only root can enter: copy it
	// where nobody can run it.
	dir, err := os.MkdirTemp("", "ftsock-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := dir + "/" + ourComm()
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "FTSOCK_HELPER=lookup", "FTSOCK_LOCAL="+p.c.String(), "FTSOCK_REMOTE="+p.s.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Stderr = os.Stderr
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot run a copy of the test binary as nobody (uid 65534) from %s: %v", dir, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper as nobody: %v", err)
	}
	out := stdout.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "found=true pid=0 state=ESTABLISHED via=none denied=") || strings.HasPrefix(lines[0], "found=true pid=0 state=ESTABLISHED via=none denied=0") {
		t.Errorf("helper found %q: want the state without the process, and denied processes", lines[0])
	}
	warned := false
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "repeated") {
			t.Errorf("warnings given twice: %s", l)
		}
		warned = warned || strings.Contains(l, "cannot read the open files") && strings.Contains(l, "root")
	}
	if !warned {
		t.Errorf("no warning about unreadable processes in %q", lines[1:])
	}
}

// TestSetnsSparesMainThread enters another namespace many times, from
// goroutines that may be scheduled on any thread: the process's main
// thread, which /proc/self/net and /proc/self/ns/net describe, must stay in
// its namespace, and so must every other thread that runs Go code.
func TestSetnsSparesMainThread(t *testing.T) {
	name, ino := newNetns(t)
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				fd, err := openDiagIn("/run/netns/" + name)
				if err != nil {
					t.Error(err)
					return
				}
				unix.Close(fd)
				runtime.Gosched()
			}
		})
	}
	wg.Wait()
	if now, err := os.Readlink("/proc/self/ns/net"); err != nil || now != self {
		t.Errorf("the main thread is in %s (%v), was in %s", now, err, self)
	}
	for range 20 {
		if r := New(); r.selfNS == ino || r.selfNS == 0 {
			t.Fatalf("a thread is left in the test namespace %d", ino)
		}
		runtime.Gosched()
	}
}
