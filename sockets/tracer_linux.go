package sockets

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// DefaultRing is the ring buffer's default size: room for about 160,000
// events, three seconds of a connect storm of 10,000 connections a second
// (five events each on the tracepoint path), should the reader stall that
// long; the capture's own buffer (64 MiB) holds about as long of such a
// storm's packets.
const DefaultRing = 16 << 20

// bpfTracer is the loaded and attached eBPF programs and the ring buffer
// reader. Everything that needs privilege (loading, attaching, mapping the
// ring) is done by loadTracer; reading needs none.
type bpfTracer struct {
	coll  *ebpf.Collection
	links []link.Link
	rd    *ringbuf.Reader
	lost  *ebpf.Map
	hooks []string // what is attached, for the header
	// fexitErr is why fexit programs could not be used, when the
	// tracepoint is used instead.
	fexitErr error
	// acceptExact says every accept(2) names its process (fexit on
	// inet_csk_accept, or at the system call's exit); without it,
	// connections to a listener are credited to the process that listens.
	acceptExact bool
	// acceptErr is why accepts are not traced on the tracepoint path,
	// nil if they are.
	acceptErr error
}

// loadOptions choose what to load; tests use them to force the
// tracepoint path or a tiny ring.
type loadOptions struct {
	ring       int  // ring buffer size in bytes (a power of 2, at least a page)
	tracepoint bool // name connecting processes from the tracepoint, not fexit
	noAccept   bool // on the tracepoint path, leave accept(2) untraced: listeners name what they accept
	acceptBTF  bool // on the tracepoint path, trace accept(2) from sys_exit even where the trace events could be used
}

// loadBPF loads and attaches the eBPF programs. Its error is an
// *Unavailable saying why, and what to do.
func loadBPF(opt loadOptions) (*bpfTracer, error) {
	removeMemlock()
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, &Unavailable{Reason: "the kernel has no BTF (/sys/kernel/btf/vmlinux)", Fix: "a kernel built with CONFIG_DEBUG_INFO_BTF=y", Err: err}
	}
	spec, err := loadTracer()
	if err != nil {
		return nil, &Unavailable{Reason: "the embedded programs cannot be read", Err: err}
	}
	if opt.ring <= 0 {
		opt.ring = DefaultRing
	}
	spec.Maps[tracerMapEvents].MaxEntries = uint32(opt.ring)
	t, err := attach(spec, kernel, opt)
	if err != nil && !opt.tracepoint {
		// fentry/fexit refused: no trampolines (some architectures
		// before 6.0), or a kernel locked down against them. The
		// tracepoint names connecting processes, and the exits of
		// accept(2) and accept4(2) accepting ones.
		why := err
		opt.tracepoint = true
		if t, err = attach(spec, kernel, opt); err == nil {
			t.fexitErr = why
		}
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return t, nil
}

// attach loads the programs this kernel can run and attaches them.
func attach(spec *ebpf.CollectionSpec, kernel *btf.Spec, opt loadOptions) (*bpfTracer, error) {
	spec = spec.Copy()
	var p progs
	if opt.tracepoint {
		var err error
		if p, err = tracepointProgs(spec, kernel, opt); err != nil {
			return nil, err
		}
	} else {
		p = fexitProgs(kernel)
	}
	p.tracing = append(p.tracing, tracerProgInetSockSetState)
	for name := range spec.Programs {
		if !contains(p.tracing, name) && name != p.acceptEvent && name != p.acceptBTF {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, err
	}
	t := &bpfTracer{coll: coll, lost: coll.Maps[tracerMapLost], hooks: p.hooks, acceptExact: p.exact, acceptErr: p.acceptErr}
	for _, name := range p.tracing {
		l, err := link.AttachTracing(link.TracingOptions{Program: coll.Programs[name]})
		if err != nil {
			t.close()
			return nil, fmt.Errorf("attach %s: %w", name, err)
		}
		t.links = append(t.links, l)
	}
	if opt.tracepoint {
		t.attachAccept(p)
	}
	t.rd, err = ringbuf.NewReader(coll.Maps[tracerMapEvents])
	if err != nil {
		t.close()
		return nil, fmt.Errorf("ring buffer: %w", err)
	}
	return t, nil
}

// progs are the programs chosen for a kernel.
type progs struct {
	tracing []string // attached with AttachTracing (fexit, tp_btf)
	// On the tracepoint path, the programs that name accepting
	// processes, "" if not loaded: the one attached to the trace events
	// of accept(2) and accept4(2), else the one on sys_exit.
	acceptEvent, acceptBTF string
	hooks                  []string // for the header
	exact                  bool     // accepts are traced (fexit)
	acceptErr              error    // why neither accept program is loaded
}

// fexitProgs chooses the fexit programs for this kernel's functions
// (besides the tracepoint, always loaded), and says which hooks they are
// and whether accepts are named.
func fexitProgs(kernel *btf.Spec) progs {
	var p progs
	if hasFunc(kernel, "tcp_connect") {
		p.tracing = append(p.tracing, tracerProgTcpConnectExit)
		p.hooks = append(p.hooks, "fexit tcp_connect")
	} else {
		p.tracing = append(p.tracing, tracerProgTcpV4ConnectExit, tracerProgTcpV6ConnectExit)
		p.hooks = append(p.hooks, "fexit tcp_v4_connect, tcp_v6_connect")
	}
	switch funcParams(kernel, "inet_csk_accept") {
	case 2: // (sk, arg), Linux 6.10 and later
		p.tracing = append(p.tracing, tracerProgInetCskAcceptExit)
		p.hooks = append(p.hooks, "fexit inet_csk_accept")
		p.exact = true
	case 4: // (sk, flags, err, kern)
		p.tracing = append(p.tracing, tracerProgInetCskAcceptExitOld)
		p.hooks = append(p.hooks, "fexit inet_csk_accept")
		p.exact = true
	default:
		p.hooks = append(p.hooks, "accept: listeners only")
	}
	p.hooks = append(p.hooks, "tracepoint inet_sock_set_state: listen, close")
	return p
}

// tracepointProgs sets the tracepoint up to name connecting processes, and
// chooses the programs that may name accepting ones: the trace events'
// always, and sys_exit's where this architecture's system call numbers
// are known and the kernel has the tracepoint.
func tracepointProgs(spec *ebpf.CollectionSpec, kernel *btf.Spec, opt loadOptions) (progs, error) {
	p := progs{hooks: []string{"tracepoint inet_sock_set_state: connect, listen, close"}}
	if err := spec.Variables[tracerVarTpConnect].Set(uint8(1)); err != nil {
		return p, err
	}
	if opt.noAccept {
		p.acceptErr = errors.New("not traced")
		return p, nil
	}
	if !opt.acceptBTF {
		p.acceptEvent = tracerProgSysExitAcceptEvent
	}
	nr, ok := acceptNumbers[runtime.GOARCH]
	if ok && hasTracepoint(kernel, "sys_exit") {
		err := errors.Join(spec.Variables[tracerVarNrAccept].Set(nr[0]), spec.Variables[tracerVarNrAccept4].Set(nr[1]))
		if err != nil {
			return p, err
		}
		p.acceptBTF = tracerProgSysExitAccept
	}
	return p, nil
}

// acceptNumbers are accept(2)'s and accept4(2)'s system call numbers on the
// architectures whose struct pt_regs bpf/tracer.bpf.c reads the number
// from (arch/x86/entry/syscalls/syscall_64.tbl,
// include/uapi/asm-generic/unistd.h).
var acceptNumbers = map[string][2]int64{
	"amd64": {43, 288},
	"arm64": {202, 242},
}

// attachAccept attaches, on the tracepoint path, what names accepting
// processes: the trace events of accept(2) and accept4(2), which cost the
// other system calls least, else sys_exit. If neither attaches,
// connections to a listener stay credited to the process that listens.
func (t *bpfTracer) attachAccept(p progs) {
	var errs []error
	if p.acceptEvent != "" {
		ls, err := attachAcceptEvents(t.coll.Programs[p.acceptEvent])
		if err == nil {
			t.links = append(t.links, ls...)
			t.hooks = append(t.hooks, "trace events sys_exit_accept, sys_exit_accept4")
			t.acceptExact = true
			t.unload(p.acceptBTF)
			return
		}
		errs = append(errs, fmt.Errorf("trace events: %w", err))
		t.unload(p.acceptEvent)
	}
	if p.acceptBTF != "" {
		l, err := link.AttachTracing(link.TracingOptions{Program: t.coll.Programs[p.acceptBTF]})
		if err == nil {
			t.links = append(t.links, l)
			t.hooks = append(t.hooks, "tracepoint sys_exit: accept, accept4")
			t.acceptExact = true
			return
		}
		errs = append(errs, fmt.Errorf("sys_exit: %w", err))
		t.unload(p.acceptBTF)
	} else if p.acceptErr == nil {
		errs = append(errs, fmt.Errorf("sys_exit: not on %s, or not in the kernel", runtime.GOARCH))
	}
	if p.acceptErr == nil {
		t.acceptErr = errors.Join(errs...)
	}
	t.hooks = append(t.hooks, "accept: listeners only")
}

// unload closes a program that will not be attached.
func (t *bpfTracer) unload(name string) {
	if prog := t.coll.Programs[name]; prog != nil {
		prog.Close()
		delete(t.coll.Programs, name)
	}
}

// attachAcceptEvents attaches prog to the trace events
// syscalls:sys_exit_accept4 and sys_exit_accept. Attaching one needs its
// number, which only tracefs tells: where it is not mounted (and flowtrack
// may), it is mounted in a mount namespace of a thread of its own, which
// ends with the thread, so that the host's mounts are untouched.
func attachAcceptEvents(prog *ebpf.Program) (ls []link.Link, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: the thread ends with the goroutine, and its
		// mount namespace with it.
		runtime.LockOSThread()
		_ = privateTracefs() // if it fails, tracefs may still be mounted already
		for _, name := range []string{"sys_exit_accept4", "sys_exit_accept"} {
			l, lerr := link.Tracepoint("syscalls", name, prog, nil)
			if lerr != nil {
				for _, l := range ls {
					l.Close()
				}
				ls, err = nil, lerr
				return
			}
			ls = append(ls, l)
		}
	}()
	<-done
	return ls, err
}

// privateTracefs gives the calling thread a mount namespace of its own,
// with no propagation to the host's, and tracefs mounted at
// /sys/kernel/tracing in it unless it is there already. It needs
// CAP_SYS_ADMIN, and the caller's OS thread to be locked and to end after.
func privateTracefs() error {
	const dir = "/sys/kernel/tracing"
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil && st.Type == unix.TRACEFS_MAGIC {
		return nil
	}
	return unix.Mount("tracefs", dir, "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hasFunc says whether the kernel has a traceable function of that name.
func hasFunc(kernel *btf.Spec, name string) bool {
	var fn *btf.Func
	return kernel.TypeByName(name, &fn) == nil
}

// hasTracepoint says whether the kernel has a tracepoint of that name
// that BTF-typed programs can attach to.
func hasTracepoint(kernel *btf.Spec, name string) bool {
	var td *btf.Typedef
	return kernel.TypeByName("btf_trace_"+name, &td) == nil
}

// funcParams counts a kernel function's parameters, -1 if it has none
// in BTF.
func funcParams(kernel *btf.Spec, name string) int {
	var fn *btf.Func
	if kernel.TypeByName(name, &fn) != nil {
		return -1
	}
	proto, ok := fn.Type.(*btf.FuncProto)
	if !ok {
		return -1
	}
	return len(proto.Params)
}

// close detaches and unloads everything.
func (t *bpfTracer) close() {
	if t.rd != nil {
		t.rd.Close()
	}
	for _, l := range t.links {
		l.Close()
	}
	t.coll.Close()
}

// lostEvents sums the per-CPU count of events the ring had no room for.
func (t *bpfTracer) lostEvents() uint64 {
	var per []uint64
	if err := t.lost.Lookup(uint32(0), &per); err != nil {
		return 0
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n
}

// When events come fast (gatherAfter or more read before the ring was
// empty), the reader lets them gather for a while once it has read all
// there were: the kernel wakes a reader that has caught up at each event,
// and in a storm of short connections the wakeups cost more than the
// events. A ring of gatherRing bytes or more holds a hundred times what
// a storm sends in that while; at a slow pace each event is read at once,
// so that /proc is read while the process that the first event of a new
// process names still runs.
const (
	gather      = 10 * time.Millisecond
	gatherAfter = 16
	gatherRing  = 1 << 20
)

// read hands each event to fn until the reader is closed. Records too
// short to be an event are counted in bad and skipped.
func (t *bpfTracer) read(fn func(*tracerEvent), bad *uint64) error {
	var rec ringbuf.Record
	n := 0 // events read since the ring was last empty
	for {
		if t.rd.AvailableBytes() == 0 {
			if n >= gatherAfter && t.rd.BufferSize() >= gatherRing {
				time.Sleep(gather)
			}
			n = 0
		}
		n++
		if err := t.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrClosed) || errors.Is(err, ringbuf.ErrClosed) {
				return nil
			}
			return err
		}
		if len(rec.RawSample) < int(unsafe.Sizeof(tracerEvent{})) {
			*bad++
			continue
		}
		fn((*tracerEvent)(unsafe.Pointer(&rec.RawSample[0])))
	}
}

// decode turns a kernel event into a sockEvent; boot is the wall-clock
// time of CLOCK_MONOTONIC's zero.
func decode(ev *tracerEvent, boot time.Time) sockEvent {
	se := sockEvent{kind: ev.Kind, netns: uint64(ev.Netns), tid: int32(ev.Tid), oldTCP: ev.State}
	se.at = boot.Add(time.Duration(ev.Ts))
	if ev.Family == unix.AF_INET {
		se.key.local = v4mapped(ev.Saddr[:4])
		se.key.remote = v4mapped(ev.Daddr[:4])
	} else {
		se.key.local, se.key.remote = ev.Saddr, ev.Daddr
	}
	se.key.lport, se.key.rport = ev.Sport, ev.Dport
	return se
}

// commString turns a NUL-padded comm into a string.
func commString(c *[16]int8) string {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&c[0])), len(c))
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// monotonicEpoch returns the wall-clock time at which CLOCK_MONOTONIC
// (bpf_ktime_get_ns) was zero.
func monotonicEpoch() time.Time {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return time.Now()
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
}

// Unavailable says why the eBPF source could not be used, and what
// would let it.
type Unavailable struct {
	Reason string // what stopped it, for people: "no CAP_BPF and CAP_PERFMON"
	Fix    string // what to do, "" if nothing can be done
	Err    error  // the underlying error, if any
}

func (u *Unavailable) Error() string {
	s := "eBPF not used: " + u.Reason
	if u.Fix != "" {
		s += " (" + u.Fix + ")"
	}
	if u.Err != nil {
		s += ": " + u.Err.Error()
	}
	return s
}

func (u *Unavailable) Unwrap() error { return u.Err }

// setcapLine is what gives an unprivileged flowtrack what it needs.
const setcapLine = "run as root, or: sudo setcap cap_net_raw,cap_net_admin,cap_bpf,cap_perfmon+eip $(command -v flowtrack)"

func isPermission(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
}

// unavailable explains a load or attach error.
func unavailable(err error) *Unavailable {
	var u *Unavailable
	if errors.As(err, &u) {
		return u
	}
	if isPermission(err) {
		if mode := lockdown(); mode != "" && mode != "none" {
			return &Unavailable{Reason: "the kernel is locked down (" + mode + ")", Fix: "boot without lockdown=" + mode + " to use eBPF", Err: err}
		}
		return &Unavailable{Reason: "no CAP_BPF and CAP_PERFMON", Fix: setcapLine, Err: err}
	}
	if errors.Is(err, ebpf.ErrNotSupported) {
		return &Unavailable{Reason: "the kernel does not support these eBPF programs", Err: err}
	}
	return &Unavailable{Reason: "the programs could not be loaded", Err: err}
}

// lockdown returns the kernel's lockdown mode ("none", "integrity",
// "confidentiality"), "" if it cannot be read.
func lockdown() string {
	b, err := os.ReadFile("/sys/kernel/security/lockdown")
	if err != nil {
		return ""
	}
	s := string(b)
	i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return ""
	}
	return s[i+1 : j]
}

// removeMemlock lifts RLIMIT_MEMLOCK, against which kernels before 5.11
// count BPF memory; later ones ignore it. It is done here, not through
// cilium/ebpf's rlimit package, whose init probes the kernel by creating
// a BPF map in every process that links it, a replay of a file too.
func removeMemlock() {
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	_ = unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf) // without the privilege, loading says why
}
