package sockets

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestContainer: cgroup paths as docker, containerd, CRI-O, podman,
// Kubernetes (both cgroup drivers) and systemd make them.
func TestContainer(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	for _, c := range []struct{ path, container, unit string }{
		{"/system.slice/docker-" + id + ".scope", "docker:0123456789ab", ""},
		{"/docker/" + id, "docker:0123456789ab", ""},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b.slice/cri-containerd-" + id + ".scope", "containerd:0123456789ab", ""},
		{"/kubepods/burstable/pod1a2b-3c4d/" + id, "kubepods:0123456789ab", ""},
		{"/kubepods/pod1a2b-3c4d/" + id, "kubepods:0123456789ab", ""},
		{"/kubepods.slice/kubepods-pod1.slice/crio-" + id + ".scope", "cri-o:0123456789ab", ""},
		{"/machine.slice/libpod-" + id + ".scope/container", "podman:0123456789ab", ""},
		{"/libpod_parent/libpod-" + id, "podman:0123456789ab", ""},
		{"/containerd/" + id, "containerd:0123456789ab", ""},
		{"/system.slice/nginx.service", "", "nginx.service"},
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/foo.scope", "", "user@1000.service"},
		{"/user.slice/user-1000.slice/session-3.scope", "", "session-3.scope"},
		{"/system.slice/docker-" + id[:63] + ".scope", "", "docker-" + id[:63] + ".scope"}, // not an id
		{"/docker/" + strings.ToUpper(id), "", ""},
		{"/pod1/" + id, "", ""}, // a pod directory outside kubepods
		{"/", "", ""},
		{"", "", ""},
	} {
		ctr, unit := Container(c.path)
		if ctr != c.container || unit != c.unit {
			t.Errorf("Container(%q) = %q, %q; want %q, %q", c.path, ctr, unit, c.container, c.unit)
		}
	}
}

func FuzzContainer(f *testing.F) {
	f.Add("/system.slice/docker-" + strings.Repeat("ab", 32) + ".scope")
	f.Add("/kubepods/burstable/pod1/" + strings.Repeat("cd", 32))
	f.Fuzz(func(t *testing.T, path string) {
		ctr, unit := Container(path)
		if ctr != "" && unit != "" {
			t.Errorf("%q: both %q and %q", path, ctr, unit)
		}
	})
}

// fakeProc makes a /proc with one process: its stat (with start time in
// clock ticks), exe link, cmdline and cgroup.
func fakeProc(t *testing.T, pid int, startTicks string, exe bool) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "1234")
	if pid != 1234 {
		t.Fatal("fakeProc makes PID 1234")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(dir, 0o755))
	// comm "(a b) c" has spaces and a parenthesis: fields counted from the last ')'
	stat := "1234 ((a b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 " + startTicks + " 1000 100 18446744073709551615\n"
	must(os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644))
	must(os.WriteFile(filepath.Join(dir, "cmdline"), []byte("curl\x00-s\x00http://x/\x00"), 0o644))
	if exe {
		must(os.Symlink("/usr/bin/curl", filepath.Join(dir, "exe")))
	}
	return root
}

// TestProcCacheGone: an event from a process whose /proc entry is gone
// (it exited at once) keeps what the kernel said (comm, uid, cgroup id)
// and reads nothing; one whose PID was reused by another process (other
// start time) does not take the newcomer's executable.
func TestProcCacheGone(t *testing.T) {
	c := newProcCache(t.TempDir()) // an empty /proc: every process gone
	p := c.event(1234, 5*uint64(time.Second), "curl", 1000, 77)
	if p.PID != 1234 || p.Comm != "curl" || p.UID != 1000 || p.CgroupID != 77 || p.Exe != "" || p.Cmdline != "" {
		t.Errorf("gone: %+v", p)
	}
	if q := c.event(1234, 5*uint64(time.Second), "curl", 1000, 77); q != p {
		t.Errorf("the same process again: %p, want the cached %p", q, p)
	}

	root := fakeProc(t, 1234, "500", true) // started at 5 s
	c = newProcCache(root)
	if p := c.event(1234, 5*uint64(time.Second)+3, "curl", 0, 0); p.Exe != "/usr/bin/curl" || p.Cmdline != "curl -s http://x/" {
		t.Errorf("present: %+v", p)
	}
	if p := c.event(1234, 7*uint64(time.Second), "curl", 0, 0); p.Exe != "" || p.Cmdline != "" {
		t.Errorf("reused PID (event at start 7 s, /proc says 5 s): %+v", p)
	}
	// The exe link gone between the stat and the readlink.
	root = fakeProc(t, 1234, "500", false)
	c = newProcCache(root)
	if p := c.event(1234, 5*uint64(time.Second), "curl", 0, 0); p.Exe != "" || p.Cmdline != "curl -s http://x/" {
		t.Errorf("exe gone mid-read: %+v", p)
	}
}

func TestParseStatStart(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 42 1000", 42 * clockTick, true},
		{"1 (a) b) c) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 42 1000", 42 * clockTick, true},
		{"1 (init) S 0 1", 0, false},
		{"no parenthesis", 0, false},
		{"1 (x) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 -5 1000", 0, false},
	} {
		got, ok := parseStatStart([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("%q: %d %v, want %d %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestOwnerTableBound: past its bound the table forgets retired owners
// first, then closed ones, then the oldest; a retired owner goes Grace
// after its record, a closed one Keep after its close.
func TestOwnerTableBound(t *testing.T) {
	now := time.Unix(1000, 0)
	key := func(i int) sockKey {
		return keyOf(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(1000+i)), netip.MustParseAddrPort("10.0.0.2:80"))
	}
	ev := func(kind uint8, i int) *sockEvent {
		return &sockEvent{kind: kind, key: key(i), netns: 1, at: now, proc: &Process{PID: 100 + i}}
	}
	tb := newOwnerTable(1, 3, time.Minute, time.Second)
	tb.apply(ev(kindConnect, 0))
	tb.apply(ev(kindConnect, 1))
	tb.apply(ev(kindConnect, 2))
	tb.apply(ev(kindClose, 1))
	tb.retire(addrPortOf(key(2).local, key(2).lport), addrPortOf(key(2).remote, key(2).rport), now)
	tb.apply(ev(kindConnect, 3)) // over the bound: 2 (retired) goes
	tb.apply(ev(kindConnect, 4)) // then 1 (closed)
	tb.apply(ev(kindConnect, 5)) // then 0 (oldest)
	for i, want := range []bool{false, false, false, true, true, true} {
		if _, ok := tb.lookup(key(i)); ok != want {
			t.Errorf("socket %d kept %v, want %v", i, ok, want)
		}
	}
	if n, ev := tb.size(); n != 3 || ev != 3 {
		t.Errorf("size %d, evicted %d; want 3, 3", n, ev)
	}
	tb.apply(ev(kindClose, 3))
	tb.retire(addrPortOf(key(4).local, key(4).lport), addrPortOf(key(4).remote, key(4).rport), now)
	tb.sweep(now.Add(2 * time.Second)) // 4 retired > Grace ago
	if _, ok := tb.lookup(key(4)); ok {
		t.Error("retired owner kept past Grace")
	}
	if _, ok := tb.lookup(key(3)); !ok {
		t.Error("closed owner dropped before Keep")
	}
	tb.sweep(now.Add(2 * time.Minute))
	if _, ok := tb.lookup(key(3)); ok {
		t.Error("closed owner kept past Keep")
	}
	if o, ok := tb.lookup(key(5)); !ok || o.PID != 105 {
		t.Errorf("open owner: %v %+v", ok, o)
	}
}
