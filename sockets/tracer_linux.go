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
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// DefaultRing is the ring buffer's default size: room for about 40,000
// events, a second of a connect storm of 10,000 connections a second
// (four events each) should the reader fall that far behind.
const DefaultRing = 4 << 20

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
	// inet_csk_accept, or sys_exit); without it, connections to a
	// listener are credited to the process that listens.
	acceptExact bool
}

// loadOptions choose what to load; tests use them to force the
// tracepoint path or a tiny ring.
type loadOptions struct {
	ring       int  // ring buffer size in bytes (a power of 2, at least a page)
	tracepoint bool // name connecting processes from the tracepoint, not fexit
	noAccept   bool // on the tracepoint path, leave accept(2) untraced: listeners name what they accept
}

// loadBPF loads and attaches the eBPF programs. Its error is an
// *Unavailable saying why, and what to do.
func loadBPF(opt loadOptions) (*bpfTracer, error) {
	_ = rlimit.RemoveMemlock() // kernels before 5.11 count BPF memory against RLIMIT_MEMLOCK
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
		// tracepoint names connecting processes, and sys_exit
		// accepting ones.
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
	var (
		keep, hooks []string
		exact       bool
		err         error
	)
	if opt.tracepoint {
		keep, hooks, exact, err = tracepointProgs(spec, kernel, opt.noAccept)
		if err != nil {
			return nil, err
		}
	} else {
		keep, hooks, exact = fexitProgs(kernel)
	}
	keep = append(keep, tracerProgInetSockSetState)
	for name := range spec.Programs {
		if !contains(keep, name) {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, err
	}
	t := &bpfTracer{coll: coll, lost: coll.Maps[tracerMapLost], hooks: hooks, acceptExact: exact}
	for _, name := range keep {
		l, err := link.AttachTracing(link.TracingOptions{Program: coll.Programs[name]})
		if err != nil {
			t.close()
			return nil, fmt.Errorf("attach %s: %w", name, err)
		}
		t.links = append(t.links, l)
	}
	t.rd, err = ringbuf.NewReader(coll.Maps[tracerMapEvents])
	if err != nil {
		t.close()
		return nil, fmt.Errorf("ring buffer: %w", err)
	}
	return t, nil
}

// fexitProgs chooses the fexit programs for this kernel's functions
// (besides the tracepoint, always loaded), and says which hooks they are
// and whether accepts are named.
func fexitProgs(kernel *btf.Spec) (keep, hooks []string, exact bool) {
	if hasFunc(kernel, "tcp_connect") {
		keep = append(keep, tracerProgTcpConnectExit)
		hooks = append(hooks, "fexit tcp_connect")
	} else {
		keep = append(keep, tracerProgTcpV4ConnectExit, tracerProgTcpV6ConnectExit)
		hooks = append(hooks, "fexit tcp_v4_connect, tcp_v6_connect")
	}
	switch funcParams(kernel, "inet_csk_accept") {
	case 2: // (sk, arg), Linux 6.10 and later
		keep = append(keep, tracerProgInetCskAcceptExit)
		hooks = append(hooks, "fexit inet_csk_accept")
		exact = true
	case 4: // (sk, flags, err, kern)
		keep = append(keep, tracerProgInetCskAcceptExitOld)
		hooks = append(hooks, "fexit inet_csk_accept")
		exact = true
	default:
		hooks = append(hooks, "accept: listeners only")
	}
	return keep, append(hooks, "tracepoint inet_sock_set_state: listen, close"), exact
}

// tracepointProgs sets the tracepoint up to name connecting processes, and
// chooses sys_exit to name accepting ones where this architecture's
// system call numbers are known and the kernel has the tracepoint.
func tracepointProgs(spec *ebpf.CollectionSpec, kernel *btf.Spec, noAccept bool) (keep, hooks []string, exact bool, err error) {
	if err := spec.Variables[tracerVarTpConnect].Set(uint8(1)); err != nil {
		return nil, nil, false, err
	}
	hooks = []string{"tracepoint inet_sock_set_state: connect, listen, close"}
	nr, ok := acceptNumbers[runtime.GOARCH]
	if noAccept || !ok || !hasTracepoint(kernel, "sys_exit") {
		return nil, append(hooks, "accept: listeners only"), false, nil
	}
	if err := errors.Join(spec.Variables[tracerVarNrAccept].Set(nr[0]), spec.Variables[tracerVarNrAccept4].Set(nr[1])); err != nil {
		return nil, nil, false, err
	}
	return []string{tracerProgSysExitAccept}, append(hooks, "tracepoint sys_exit: accept, accept4"), true, nil
}

// acceptNumbers are accept(2)'s and accept4(2)'s system call numbers on the
// architectures whose struct pt_regs bpf/tracer.bpf.c reads the number
// from (arch/x86/entry/syscalls/syscall_64.tbl,
// include/uapi/asm-generic/unistd.h).
var acceptNumbers = map[string][2]int64{
	"amd64": {43, 288},
	"arm64": {202, 242},
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

// read hands each event to fn until the reader is closed. Records too
// short to be an event are counted in bad and skipped.
func (t *bpfTracer) read(fn func(*tracerEvent), bad *uint64) error {
	var rec ringbuf.Record
	for {
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
