// Command gencap writes realistic synthetic TCP captures (classic pcap,
// Ethernet) and, on request, their ground truth, for flowtrack's tests and
// benchmarks.
//
// Normal mode: -conns connections, -concurrent of them open at once, each a
// 3-way handshake with options (MSS, SACK-permitted, timestamps, window
// scale; some Windows-like, some servers answering MSS only), then
// request/response exchanges with consistent sequence and acknowledgement
// numbers, MSS-sized and smaller segments in growing rounds, delayed ACKs
// (every second segment, or 40 ms), and some segments lost after the
// capture point and retransmitted (-retrans percent of data segments). A
// connection ends by FIN (either side first), by RST (either side), stays
// open, is refused (RST to its SYN) or half-open (its SYN, sent up to three
// times, never answered); -reuse percent of those closed by FIN have their
// 4-tuple reused by a new connection (new ISN) while the old is in
// TIME_WAIT. -ipv6 percent run over IPv6. Packets of all connections are
// interleaved in time; the aggregate rate is about -rate packets per second
// (or -packets over -duration). With -packets the run stops at exactly that
// many packets, connections cut wherever they are (their truth says the
// states they were left in).
//
// SYN-flood mode (-synflood N): N SYNs from unique spoofed IPv4 sources
// (100.64.0.0/10, random ports) to one server, none answered, interleaved over the run with -established
// long-lived connections carrying data (-packets in all, default N + 200
// per established connection).
//
// The same flags and -seed give a byte-identical capture and truth.
//
// The truth (-truth FILE) is TSV, one line per connection: the 4-tuple,
// packets, frame bytes, payload bytes and retransmissions per direction,
// both endpoints' states after the connection's last packet (no timers),
// how it ended, first and last packet times, and the handshake RTT as
// captured.
//
// Usage:
//
//	gencap -o http.pcap -packets 1500000 -conns 3000 -concurrent 300 -snaplen 96
//	gencap -o big.pcap -packets 10000000 -conns 1000000 -concurrent 100000 -snaplen 96
//	gencap -o flood.pcap -synflood 5000000 -established 1000 -snaplen 96
//	gencap -o small.pcap -conns 200 -truth small.tsv
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	cfg := defaultConfig()
	out := flag.String("o", "", "capture file to write (- for standard output)")
	truth := flag.String("truth", "", "also write the ground truth (TSV) to this file")
	start := flag.String("start", cfg.Start.Format(time.RFC3339), "time of the first packet (RFC 3339)")
	quiet := flag.Bool("q", false, "no summary on standard error")
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed: the same flags and seed give the same files")
	flag.Int64Var(&cfg.Packets, "packets", 0, "stop after exactly this many packets (0: when -conns connections are done)")
	flag.Int64Var(&cfg.Conns, "conns", 0, "connections (default 1000, or -packets/20; approximate with -packets)")
	flag.IntVar(&cfg.Concurrent, "concurrent", 0, "connections open at once (default min(conns, 1000))")
	flag.Float64Var(&cfg.Rate, "rate", cfg.Rate, "aggregate packets per second (approximate)")
	flag.DurationVar(&cfg.Duration, "duration", 0, "spread the packets over about this long (overrides -rate)")
	flag.IntVar(&cfg.Snaplen, "snaplen", cfg.Snaplen, "snapshot length: frames are cut to this many bytes")
	flag.BoolVar(&cfg.Nano, "nano", false, "nanosecond timestamps (default microseconds)")
	flag.Float64Var(&cfg.IPv6, "ipv6", cfg.IPv6, "percent of connections over IPv6")
	flag.Float64Var(&cfg.Retrans, "retrans", cfg.Retrans, "percent of data segments lost after the capture point and retransmitted")
	flag.Float64Var(&cfg.HalfOpen, "halfopen", cfg.HalfOpen, "percent of connections whose SYN is never answered")
	flag.Float64Var(&cfg.Refused, "refused", cfg.Refused, "percent of connections refused (RST to the SYN)")
	flag.Float64Var(&cfg.RST, "rst", cfg.RST, "percent of connections aborted by RST after data")
	flag.Float64Var(&cfg.Open, "open", cfg.Open, "percent of connections left open")
	flag.Float64Var(&cfg.Reuse, "reuse", cfg.Reuse, "percent of FIN-closed connections whose 4-tuple a new connection reuses during TIME_WAIT")
	flag.IntVar(&cfg.Servers, "servers", cfg.Servers, "server addresses")
	flag.Int64Var(&cfg.SYNFlood, "synflood", 0, "SYN-flood mode: this many spoofed SYNs to one server")
	flag.IntVar(&cfg.Established, "established", 0, "SYN-flood mode: established connections carrying data beside the flood")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: gencap -o FILE [flags]; gencap -h lists the flags")
		os.Exit(2)
	}
	t, err := time.Parse(time.RFC3339Nano, *start)
	if err != nil {
		fatal(fmt.Errorf("-start: %w", err))
	}
	cfg.Start = t
	if err := run(cfg, *out, *truth, *quiet); err != nil {
		fatal(err)
	}
}

func run(cfg config, out, truthPath string, quiet bool) error {
	began := time.Now()
	var w io.Writer = os.Stdout
	var f *os.File
	if out != "-" {
		var err error
		if f, err = os.Create(out); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	var tw io.Writer
	var tf *os.File
	if truthPath != "" {
		var err error
		if tf, err = os.Create(truthPath); err != nil {
			return err
		}
		defer tf.Close()
		tw = tf
	}
	st, err := generate(cfg, w, tw)
	if err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
	}
	if tf != nil {
		if err := tf.Close(); err != nil {
			return err
		}
	}
	if !quiet {
		span := time.Duration(st.Last - st.First)
		fmt.Fprintf(os.Stderr, "gencap: %d packets, %d connections, %v of capture time (%.0f packets/s), written in %v\n",
			st.Packets, st.Conns, span.Round(time.Millisecond), float64(st.Packets)/max(span.Seconds(), 1e-9),
			time.Since(began).Round(time.Millisecond))
	}
	return nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "gencap:", err)
	os.Exit(1)
}
