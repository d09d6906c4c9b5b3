package sockets

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// manyConns opens n loopback connections (2n sockets) to one listener in
// this process; they are closed when the benchmark ends.
func manyConns(b *testing.B, n int) [][2]netip.AddrPort {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	ends := make([][2]netip.AddrPort, n)
	for i := range ends {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close(); s.Close() })
		ends[i] = [2]netip.AddrPort{addrPort(b, c.LocalAddr()), addrPort(b, s.LocalAddr())}
	}
	return ends
}

// BenchmarkRefresh measures one refresh, with a few hundred and with a few
// thousand sockets of this process (the table also holds every other TCP
// socket of the host): the socket dumps, the table build and the process
// scan, either reading every process's descriptors ("full", as every
// fullScanEvery refreshes do) or only where a socket of unknown holder
// appeared ("steady": on a quiet host, none).
func BenchmarkRefresh(b *testing.B) {
	for _, conns := range []int{150, 1500} {
		manyConns(b, conns)
		for _, bc := range []struct {
			name            string
			noNetlink, full bool
		}{{"netlink/full", false, true}, {"netlink/steady", false, false}, {"proc/full", true, true}} {
			b.Run(fmt.Sprintf("sockets=%d/%s", 2*conns, bc.name), func(b *testing.B) {
				r := New()
				r.noNetlink = bc.noNetlink
				if err := r.Refresh(); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					r.forceFull = bc.full
					if err := r.Refresh(); err != nil {
						b.Fatal(err)
					}
				}
				st := r.Stats()
				if st.Sockets < 2*conns {
					b.Fatalf("%d sockets, want at least %d", st.Sockets, 2*conns)
				}
				b.ReportMetric(float64(st.Sockets), "sockets")
				b.ReportMetric(float64(st.Processes), "procs")
			})
		}
	}
}

// BenchmarkRefreshTimeWait measures a refresh with ten thousand sockets of
// this process in TIME_WAIT (a connect storm leaves a hundred thousand),
// reading them ("read", as every refresh does without TimeWaitEvery) and
// not ("kept": the kernel leaves them out of its dumps, and the table keeps
// them as last read). The kernel still walks them to filter them out: the
// saving is in the messages and the table build.
func BenchmarkRefreshTimeWait(b *testing.B) {
	const n = 10000
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = c.Read(make([]byte, 1)); c.Close() }()
		}
	}()
	for range n {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c.Close() // the client closes first: its socket ends in TIME_WAIT
	}
	time.Sleep(200 * time.Millisecond)
	for _, kept := range []bool{false, true} {
		name := map[bool]string{false: "read", true: "kept"}[kept]
		b.Run(name, func(b *testing.B) {
			r := New()
			if err := r.Refresh(); err != nil { // reads TIME_WAIT
				b.Fatal(err)
			}
			if kept {
				r.TimeWaitEvery.Store(int64(time.Hour))
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Refresh(); err != nil {
					b.Fatal(err)
				}
			}
			if st := r.Stats(); st.Sockets < n {
				b.Fatalf("%d sockets, want at least %d in TIME_WAIT", st.Sockets, n)
			}
		})
	}
}

// BenchmarkLookup measures lookups, found and not, in a table of a few
// hundred sockets.
func BenchmarkLookup(b *testing.B) {
	ends := manyConns(b, 150)
	r := New()
	if err := r.Refresh(); err != nil {
		b.Fatal(err)
	}
	miss := netip.MustParseAddrPort("192.0.2.1:1")
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e := &ends[i%len(ends)]
			if _, ok := r.Lookup(e[0], e[1]); !ok {
				b.Fatal("not found")
			}
			i++
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := r.Lookup(miss, miss); ok {
				b.Fatal("found")
			}
		}
	})
}

// BenchmarkSyscall measures what the eBPF programs cost a system call of
// any process (getppid here), in the calling thread's CPU time (cpu-ns/op:
// less noisy than the wall clock on a busy machine): nothing without
// them; on the tracepoint path, the trace events of accept(2) and
// accept4(2) make every system call of the host take the kernel's slow
// path to its trace points, and sys_exit (where the events cannot be
// attached) also runs a program at the end of each, which returns at once
// unless the call is an accept.
func BenchmarkSyscall(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  *Config
	}{
		{"no-ebpf", nil},
		{"tracepoint", &Config{tracepoint: true, noAccept: true}},
		{"tracepoint+trace-events", &Config{tracepoint: true}},
		{"tracepoint+sys_exit", &Config{tracepoint: true, acceptBTF: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var tr *Tracker
			if bc.cfg != nil {
				tr = mustEBPF(b, *bc.cfg)
				b.Cleanup(tr.Close)
			}
			// The kernel times the programs while this is open.
			stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
			if err != nil {
				b.Fatal(err)
			}
			defer stats.Close()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start, cpu := time.Now(), threadCPU()
			for b.Loop() {
				unix.Getppid()
			}
			b.ReportMetric(float64(threadCPU()-cpu)/float64(b.N), "cpu-ns/op")
			if tr != nil {
				reportProgram(b, tr, tracerProgSysExitAccept, time.Since(start))
			}
		})
	}
}

// threadCPU is the CPU time the calling thread has used.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportProgram reports how long a run of the program took on average, and
// how often it ran a second over the whole host, if it is loaded.
func reportProgram(b *testing.B, tr *Tracker, name string, d time.Duration) {
	p := tr.bpf.coll.Programs[name]
	if p == nil {
		return
	}
	st, err := p.Stats()
	if err != nil {
		b.Fatalf("%s: no statistics: %v", name, err)
	}
	if st.RunCount == 0 {
		return
	}
	b.ReportMetric(float64(st.Runtime.Nanoseconds())/float64(st.RunCount), name+"-ns/run")
	b.ReportMetric(float64(st.RunCount)/d.Seconds(), name+"-runs/s")
}
