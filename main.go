// Command flowtrack watches TCP connections the way netstat shows them, but
// from the wire: it captures packets live or reads a pcap/pcapng file,
// tracks every connection by its 4-tuple, and infers the state of both of
// its endpoints.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/sockets"
)

func main() {
	setGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command line's settings.
type options struct {
	files                 fileList // -r, as given: files, directories, patterns
	iface, output, filter string
	cpuProfile            string // --cpuprofile: where to write a CPU profile
	user                  string
	list, follow, numeric bool
	noEBPF                bool
	count                 uint64
	duration              time.Duration
	snaplen               int
	bufferMB              int
	promisc               bool
	method                string // --capture
	speed                 speedFlag
	linger                time.Duration
	table                 flows.Config
	export                exportOptions
	problems              bool        // --problems: only the connections with problems, and the services
	diag                  diag.Config // the problems' thresholds
}

// speedFlag is the replay speed: a factor, or "max" (0) for as fast as
// possible.
type speedFlag float64

func (s *speedFlag) String() string {
	if *s == 0 {
		return "max"
	}
	return strconv.FormatFloat(float64(*s), 'g', -1, 64)
}

func (s *speedFlag) Set(v string) error {
	if v == "max" {
		*s = 0
		return nil
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(v, "x"), 64)
	if err != nil || f < 0 {
		return fmt.Errorf("want a factor such as 1, 2.5 or 0.1, or max")
	}
	*s = speedFlag(f)
	return nil
}

const usage = `usage: flowtrack [-r FILE | -i IFACE] [-o table|json|zeek] [options] [BPF filter]
       flowtrack -D

flowtrack tracks every TCP connection in a capture file or on a live
interface, and infers the state of both endpoints (client and server) as
each host's kernel would report it. Without -o, on a terminal, it shows
them live in an interactive view (press ? there for the keys).

examples:
  flowtrack -r pcaps/wikipedia.pcap --speed 10
  flowtrack -r pcaps/eth-http-get.pcap -o table
  flowtrack -r capture.pcapng -o json port 443
  flowtrack -r incident.pcap --problems
  sudo flowtrack -i eth0 -o table --duration 10s
  sudo flowtrack -i any -c 10000 -o json 'tcp and net 10.0.0.0/8'

options:
`

func parseArgs(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("flowtrack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.Var(&o.files, "r", "read packets from a pcap or pcapng `file`; repeat it, or name a directory or a quoted pattern, to read a set of files as one capture, merged by time")
	fs.StringVar(&o.iface, "i", "", "capture live on `interface` (\"any\" for all)")
	fs.StringVar(&o.output, "o", "", "headless output `format`: table, json (NDJSON, one object per connection), zeek (Zeek's conn.log; implies --zeek) or none (for a daemon that only exports); without it, the interactive view on a terminal, else table")
	fs.BoolVar(&o.table.Zeek, "zeek", false, "records begin and end where Zeek's would (its timers and its rule for a reused port), not with the kernel's lifetimes (docs/zeek.md)")
	fs.StringVar(&o.filter, "f", "", "BPF filter `expression` (or give it as trailing arguments)")
	fs.BoolVar(&o.list, "D", false, "list the interfaces that can be captured on, and exit")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run (pprof) to `file`: what scripts/pgo.sh builds default.pgo from (docs/performance.md)")
	fs.BoolVar(&o.follow, "follow", false, "with -o json: stream one event per connection open, state change and close as they happen")
	fs.BoolVar(&o.numeric, "n", false, "numeric addresses (always so in headless output)")
	fs.Uint64Var(&o.count, "c", 0, "stop after `count` packets (0: no limit)")
	fs.DurationVar(&o.duration, "duration", 0, "stop a live capture after this long (e.g. 10s; 0: until Ctrl-C)")
	fs.IntVar(&o.snaplen, "s", capture.DefaultSnaplen, "live capture snapshot length in `bytes`: first client segments whole, for the names they carry (256 keeps the headers only; names then come from DNS and the first bytes; docs/names.md)")
	fs.IntVar(&o.bufferMB, "B", capture.DefaultBufferMB, "live capture kernel buffer size in `MiB`")
	fs.BoolVar(&o.promisc, "promisc", false, "put the interface into promiscuous mode")
	// auto by default: AF_PACKET takes a third less CPU per packet than
	// libpcap, and holds rates libpcap drops at (docs/usage.md).
	fs.StringVar(&o.method, "capture", capture.MethodAuto, "live capture `method`: auto (afpacket, but pcap for -i any and interfaces that are not Ethernet), afpacket (AF_PACKET rings read without libpcap, one socket per core in a fanout group: for rates libpcap cannot hold on one core), or pcap (libpcap)")
	fs.BoolVar(&o.noEBPF, "no-ebpf", false, "live capture: name the processes behind connections from the socket table only (read every second), not eBPF")
	fs.StringVar(&o.user, "user", "", "once the capture is open, drop root and run as this `user` (default: the sudo user for a replay; root is kept for a live capture, to name the processes behind sockets)")
	o.speed = 1
	fs.Var(&o.speed, "speed", "interactive replay speed: a factor of capture time, or max")
	fs.DurationVar(&o.linger, "linger", 5*time.Second, "interactive view: how long ended connections stay on screen (capture time)")
	fs.DurationVar(&o.table.TimeWait, "time-wait", 60*time.Second, "how long an endpoint stays in TIME_WAIT (capture time)")
	fs.DurationVar(&o.table.IdleTimeout, "idle-timeout", time.Hour, "retire a connection idle this long (capture time)")
	fs.DurationVar(&o.table.ClosedTimeout, "closed-timeout", 30*time.Second, "retire a closed connection this long after its last packet")
	fs.IntVar(&o.table.MaxConns, "max-conns", 2_000_000, "track at most this many connections at once (about 1 GiB); beyond it the least useful are evicted (0: no bound)")
	addHandshakeFlags(fs, &o.table)
	o.export.addFlags(fs)
	fs.BoolVar(&o.problems, "problems", false, "print only the connections with problems (what is wrong, since when, the packets that show it) and a summary per service; with -o json, as NDJSON (docs/problems.md)")
	o.diag.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.diag.TimeWait, o.diag.IdleTimeout = o.table.TimeWait, o.table.IdleTimeout
	k := &o.table.Kernel // the hosts' settings (--syn-retries, ...): the rules follow the same schedules as the states
	o.diag.Kernel = diag.Kernel{SynRetries: k.SynRetries, SynLinearTimeouts: k.SynLinearTimeouts, FinTimeout: k.FinTimeout,
		RTOMin: k.RTOMin, RTOInit: k.RTOInit, RTOMax: k.RTOMax}
	o.export.judge = diag.New(o.diag)
	if err := o.check(fs.Args(), stderr); err != nil {
		return nil, err
	}
	return o, nil
}

// check validates the options once parsed, takes the trailing arguments
// (rest) as the BPF filter, and settles the output mode.
func (o *options) check(rest []string, stderr io.Writer) error {
	if err := o.export.check(); err != nil {
		return err
	}
	if len(rest) > 0 {
		if o.filter != "" {
			return errors.New("give the filter either with -f or as trailing arguments, not both")
		}
		o.filter = strings.Join(rest, " ")
	}
	switch {
	case o.list:
	case len(o.files) > 0 && o.iface != "":
		return errors.New("use -r FILE or -i INTERFACE, not both")
	case len(o.files) == 0 && o.iface == "":
		// Like tcpdump: the default route's interface.
		if o.iface = capture.DefaultInterface(); o.iface == "" {
			return errors.New("nothing to read: give -r FILE to read a capture, or -i INTERFACE to capture live (flowtrack -D lists interfaces)")
		}
		fmt.Fprintf(stderr, "flowtrack: capturing on %s, the default route's interface (-i to choose another, -i any for all)\n", o.iface)
	}
	return o.checkOutput()
}

// checkOutput checks the output mode (-o, --follow); -o zeek implies
// --zeek, as a conn.log's rows are Zeek's records.
func (o *options) checkOutput() error {
	switch o.output {
	case "", "table", "json", "none":
	case "zeek":
		o.table.Zeek = true
	default:
		return fmt.Errorf("unknown output format %q: use -o table, -o json, -o zeek or -o none", o.output)
	}
	if o.method != capture.MethodAuto && o.method != capture.MethodAFPacket && o.method != capture.MethodPcap {
		return fmt.Errorf("unknown capture method %q: use --capture auto, afpacket or pcap", o.method)
	}
	if o.follow && o.output != "json" {
		return errors.New("--follow streams NDJSON events: use it with -o json")
	}
	if o.problems {
		switch {
		case o.follow:
			return errors.New("--follow already reports each problem as it begins (\"event\":\"problem\"): drop --problems")
		case o.output == "none" || o.output == "zeek":
			return errors.New("--problems prints a report: use it with -o table (the default) or -o json")
		case o.output == "":
			o.output = "table"
		}
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "flowtrack:", err)
		return 2
	}
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "flowtrack:", err)
			return 2
		}
		defer stop()
	}
	if o.list {
		if err := listInterfaces(stdout); err != nil {
			fmt.Fprintln(stderr, "flowtrack:", err)
			return 1
		}
		return 0
	}
	if o.output == "" {
		o.output = "table"
		if isTerminal(stdout) {
			o.output = "ui"
		}
	}
	if o.output == "ui" {
		if err := watch(ctx, o, stderr); err != nil {
			fmt.Fprintln(stderr, "flowtrack:", err)
			return 1
		}
		return 0
	}
	if err := track(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "flowtrack:", err)
		return 1
	}
	return 0
}

func listInterfaces(w io.Writer) error {
	ifs, err := capture.Interfaces()
	if err != nil {
		return err
	}
	for i, ifc := range ifs {
		line := fmt.Sprintf("%d.%s", i+1, ifc.Name)
		if ifc.Description != "" {
			line += " (" + ifc.Description + ")"
		}
		if len(ifc.Addresses) > 0 {
			line += " [" + strings.Join(ifc.Addresses, ", ") + "]"
		}
		fmt.Fprintln(w, line)
	}
	return nil
}

// open opens the file or live interface the options name, then drops
// root if it should (see dropPrivileges), before any packet is read.
func open(o *options, stderr io.Writer) (capture.Source, error) {
	var src capture.Source
	var err error
	if len(o.files) > 0 {
		src, err = openFiles(o.files, o.filter, stderr)
	} else {
		src, err = capture.OpenLive(o.iface, capture.LiveConfig{
			Snaplen:    o.snaplen,
			Promisc:    o.promisc,
			BufferSize: o.bufferMB << 20,
			Method:     o.method,
			Sockets:    tableLanes(),
			Filter:     o.filter,
		})
	}
	if err != nil {
		return nil, err
	}
	if _, err := dropPrivileges(o.user, o.iface != ""); err != nil {
		src.Close()
		return nil, err
	}
	return src, nil
}

// watch runs the interactive view until the user quits, then prints the
// summary line.
func watch(ctx context.Context, o *options, stderr io.Writer) error {
	tr := newTracker(o) // before open drops root
	src, err := open(o, stderr)
	if err != nil {
		closeTracker(tr)
		return err
	}
	defer src.Close()
	s := uiSession{Src: src, Live: o.iface != "", Filter: o.filter, Table: o.table,
		Linger: o.linger, MaxFrames: o.count, Duration: o.duration,
		Names: !o.numeric, Problems: o.diag, Report: stderr, tracker: tr}
	if len(o.files) > 0 {
		pacer := capture.NewPacer(src, float64(o.speed))
		s.Src, s.Replay = pacer, pacer
	}
	table, counters, err := interactive(ctx, s)
	summary(stderr, src, counters, table)
	var states stateTally
	// One record at a time: a copy of them all would add the table's
	// size again on top of the view's memory.
	table.EachSnapshot(states.addOne)
	states.print(stderr)
	return err
}

// track runs one capture to its end and writes the records. Records already
// tracked are written even when the capture fails part-way; the error is
// returned after them.
func track(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	tr := newTracker(o) // before open drops root
	src, err := open(o, stderr)
	if err != nil {
		closeTracker(tr)
		return err
	}
	defer src.Close()
	if o.iface != "" && o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	h := headless{o: o, src: src, names: newConnNames(), stderr: stderr}
	if o.iface != "" {
		lctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h.sock = startLocalSockets(lctx, tr)
	}
	annotate := annotator(h.sock, h.names)
	if h.ex, err = startExporters(&o.export, len(o.files) > 0, annotate, stderr); err != nil {
		return err
	}
	h.judge = newProblemJudge(o.diag)
	h.out = newSink(o, stdout, annotate, h.judge)
	runErr := h.record(ctx)
	var states stateTally
	werr := h.finish(&states)
	summary(stderr, src, &h.counters, h.table)
	states.print(stderr)
	h.names.report(stderr)
	h.ex.finish(nil)
	if h.sock != nil {
		h.sock.report(stderr)
	}
	if runErr != nil {
		return runErr
	}
	if werr != nil && !errors.Is(werr, syscall.EPIPE) {
		return fmt.Errorf("writing output: %w", werr)
	}
	return nil
}

// headless is one run of track: a capture into a table whose connections
// go to an output and the exporters.
type headless struct {
	o        *options
	src      capture.Source
	names    *connNames
	sock     *localSockets // a live capture's; nil for a replay
	out      sink
	ex       *exporters
	table    *flows.Table
	counters capture.Counters
	stderr   io.Writer // for a replay's progress
	judge    *problemJudge
}

// record makes the table and runs the capture into it until it ends, ctx
// is done or -c frames were read. The table is updated on every core (up
// to four lanes, flows.Lanes; on one core, one lane, which loads a large
// table ahead), with the records and events that one goroutine would give
// in the same order, unless an exporter must see the table at each packet
// of a replay (the IPFIX active timeout on capture time). A live
// capture's timers also run on the wall clock, and its output is flushed
// every second.
func (h *headless) record(ctx context.Context) error {
	cfg := h.o.table
	h.out.hook(&cfg)
	if h.sock != nil {
		h.sock.hook(&cfg)
	}
	h.ex.hook(&cfg)
	h.table = flows.NewTable(cfg)
	h.judge.table.Store(h.table)
	live := h.o.iface != ""
	var sink capture.Sink = h.table
	var lanes *flows.Lanes
	var tick func(time.Time)
	if n := tableLanes(); live || !h.ex.perPacket() {
		lanes = flows.NewLanes(h.table, n)
		sink = lanes
		if live {
			tick = laneTicks(lanes, true, h.out.flush)
		}
	}
	src, sink := h.ex.attach(h.table, &h.counters, h.src, sink)
	stopProgress := startProgress(!live, h.stderr, &h.counters, h.table)
	err := capture.RunTicking(ctx, src, h.names.decoder(), &h.counters, h.o.count, sink, tick)
	stopProgress()
	if lanes != nil {
		lanes.Close()
	}
	h.names.release()
	return err
}

// finish writes the connections still tracked once the capture stopped,
// counts their states, hands them to the exporters and closes the output.
// It returns the first error writing.
func (h *headless) finish(states *stateTally) error {
	var werr error
	keep := func(err error) {
		if werr == nil {
			werr = err
		}
	}
	defer flushGC()()
	h.table.FlushEach(func(batch []flows.Record) {
		states.add(batch)
		keep(h.out.end(batch, h.table.Now()))
		h.ex.flushed(batch)
	})
	keep(h.out.close())
	return werr
}

// closeTracker unloads a tracker that will not be started.
func closeTracker(tr *sockets.Tracker) {
	if tr != nil {
		tr.Close()
	}
}

// laneTicks returns the tick (capture.RunTicking) of a capture applied
// through lanes: each hands on what the lanes hold, so that records and
// events come out within a tick on a quiet network too; once a second, a
// live capture's clock moves to the wall clock's time, so that its timers
// (TIME_WAIT, handshakes, idle connections) run out without packets, and
// flush (if not nil) writes out what the output has gathered.
func laneTicks(l *flows.Lanes, live bool, flush func() error) func(time.Time) {
	var next time.Time
	return func(now time.Time) {
		l.Sync()
		if !live || now.Before(next) {
			return
		}
		next = now.Add(time.Second)
		l.Tick(now)
		if flush != nil {
			_ = flush()
		}
	}
}

// stateTally counts connections by their pair of states.
type stateTally map[[2]flows.State]int

func (s *stateTally) add(recs []flows.Record) {
	for i := range recs {
		s.addOne(&recs[i])
	}
}

// addOne counts one connection's states.
func (s *stateTally) addOne(r *flows.Record) {
	if *s == nil {
		*s = stateTally{}
	}
	if r.End == flows.EndEvicted {
		return // evicted earlier, flushed from limbo: not tracked at the end
	}
	(*s)[[2]flows.State{r.ClientState, r.ServerState}]++
}

// print writes one line: the connections still tracked, by client/server
// state, the most common first.
func (s stateTally) print(w io.Writer) {
	if len(s) == 0 {
		return
	}
	type kv struct {
		k [2]flows.State
		n int
	}
	var all []kv
	total := 0
	for k, n := range s {
		all = append(all, kv{k, n})
		total += n
	}
	slices.SortFunc(all, func(a, b kv) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return cmp.Compare(a.k[0]*16+a.k[1], b.k[0]*16+b.k[1])
	})
	parts := make([]string, len(all))
	for i, e := range all {
		parts[i] = fmt.Sprintf("%d %s/%s", e.n, e.k[0], e.k[1])
	}
	fmt.Fprintf(w, "%d connections tracked at the end, by client/server state: %s\n", total, strings.Join(parts, ", "))
}

// summary prints one line of totals to stderr.
func summary(w io.Writer, src capture.Source, c *capture.Counters, t *flows.Table) {
	fmt.Fprintf(w, "%s: %d packets (%d TCP, %d other, %d malformed), %d connections",
		src.Name(), c.Frames.Load(), c.TCP.Load(), c.NonTCP.Load(), c.Malformed.Load(), t.Opened())
	if n := t.Evicted(); n > 0 {
		fmt.Fprintf(w, ", %d evicted (--max-conns)", n)
	}
	if st, err := src.Stats(); err == nil && (st.PacketsDropped > 0 || st.IfDropped > 0) {
		fmt.Fprintf(w, ", %d dropped by the kernel, %d by the interface", st.PacketsDropped, st.IfDropped)
	}
	fmt.Fprintln(w)
	if line := undecodedLine(c); line != "" {
		fmt.Fprintln(w, line)
	}
}

// tableLanes is how many goroutines a capture updates the table on: one
// per core, up to four.
func tableLanes() int { return min(runtime.GOMAXPROCS(0), 4) }

// addHandshakeFlags adds --handshake-timeout and the flags of the Linux
// settings whose timers the states follow (docs/states.md), defaulting to
// a Linux kernel's.
func addHandshakeFlags(fs *flag.FlagSet, cfg *flows.Config) {
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 0, "give up an unanswered handshake this long after its last packet (0: on the kernel's schedule, from the retry settings below)")
	k := &cfg.Kernel
	*k = flows.Linux
	fs.IntVar(&k.SynRetries, "syn-retries", k.SynRetries, "net.ipv4.tcp_syn_retries of the hosts: SYNs resent before a connect gives up")
	fs.IntVar(&k.SynLinearTimeouts, "syn-linear-timeouts", k.SynLinearTimeouts, "net.ipv4.tcp_syn_linear_timeouts: SYN retries at the initial timeout before it doubles (0 before Linux 6.5)")
	fs.IntVar(&k.SynAckRetries, "synack-retries", k.SynAckRetries, "net.ipv4.tcp_synack_retries: SYN-ACKs resent before a listener drops a half-open connection")
	fs.DurationVar(&k.FinTimeout, "fin-timeout", k.FinTimeout, "net.ipv4.tcp_fin_timeout: how long FIN_WAIT_2 lasts once its socket is closed")
	fs.DurationVar(&k.RTOMin, "rto-min", k.RTOMin, "net.ipv4.tcp_rto_min_us: the least retransmission timeout")
}
