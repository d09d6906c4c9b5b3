package export

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// WriteProblems writes the report of `flowtrack -r FILE --problems`: each
// connection with problems (recs[i] has problems[i]; those without any
// are left out) of the total seen, each problem with when it began, what
// was seen and its evidence packets, then one line per service. Times are
// UTC.
func WriteProblems(w io.Writer, recs []flows.Record, problems [][]diag.Problem, total int, services []diag.Summary) error {
	n := 0
	for i := range recs {
		if len(problems[i]) > 0 {
			n++
		}
	}
	fmt.Fprintf(w, "%d of %d connections with problems\n", n, total)
	for i := range recs {
		if len(problems[i]) == 0 {
			continue
		}
		r := &recs[i]
		fmt.Fprintf(w, "\ntcp %v > %v  client %v, server %v  %s to %s\n", r.Client, r.Server,
			r.ClientState, r.ServerState, r.FirstSeen.Format("2006-01-02 15:04:05.000000"), r.LastSeen.Format("15:04:05.000000"))
		for j := range problems[i] {
			writeProblem(w, r, &problems[i][j])
		}
	}
	return writeServices(w, services)
}

// writeProblem writes one problem and its evidence, indented.
func writeProblem(w io.Writer, r *flows.Record, p *diag.Problem) {
	fmt.Fprintf(w, "  %s (%s) since %s: %s\n", p.Kind, p.Side, p.Since.Format("15:04:05.000"), p.Detail)
	for _, e := range p.Evidence {
		fmt.Fprintf(w, "      %s\n", EvidenceLine(r, &e))
	}
}

// EvidenceLine formats an evidence packet as tcpdump would, more or less:
// "12:00:01.234000 10.0.0.1:40000 > 10.0.0.2:80 F. seq 1001 ack 5001 (note)".
func EvidenceLine(r *flows.Record, e *diag.Packet) string {
	src, dst := r.Server, r.Client
	if e.FromClient {
		src, dst = r.Client, r.Server
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v > %v", e.At.Format("15:04:05.000000"), src, dst)
	if e.Flags != 0 {
		fmt.Fprintf(&b, " %s", e.Flags)
	}
	if e.HasSeq {
		fmt.Fprintf(&b, " seq %d", e.Seq)
	}
	if e.HasAck {
		fmt.Fprintf(&b, " ack %d", e.Ack)
	}
	if e.Note != "" {
		fmt.Fprintf(&b, " (%s)", e.Note)
	}
	return b.String()
}

// writeServices writes one line per service, those with the most
// problems first: its connections, refused and reset rates, handshake
// RTT median and 99th percentile, CLOSE_WAIT sockets over the last
// samples (and whether they keep growing), and its problems by kind.
func writeServices(w io.Writer, services []diag.Summary) error {
	slices.SortStableFunc(services, func(a, b diag.Summary) int { return cmp.Compare(problemCount(&b), problemCount(&a)) })
	fmt.Fprintf(w, "\n%d services\n", len(services))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Service\tConns\tRefused\tReset\tRTT p50\tRTT p99\tCLOSE_WAIT\tProblems")
	for i := range services {
		s := &services[i]
		rtt50, rtt99 := "-", "-"
		if s.RTTs > 0 {
			rtt50, rtt99 = fmtRTT(s.RTTMedian), fmtRTT(s.RTTP99)
		}
		fmt.Fprintf(tw, "%v\t%d\t%.1f%%\t%.1f%%\t%s\t%s\t%s\t%s\n", s.Server, s.Conns, 100*s.RefusedRate(),
			100*s.ResetRate(), rtt50, rtt99, closeWaitText(s), kindCounts(s))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i := range services {
		for _, p := range services[i].Problems {
			fmt.Fprintf(w, "%v: %s since %s: %s\n", services[i].Server, p.Kind, p.Since.Format("15:04:05.000"), p.Detail)
		}
	}
	return nil
}

// closeWaitText is the CLOSE_WAIT column: the latest count, the samples
// before it, and "growing" for a leak: "3 (1 2 3, growing)".
func closeWaitText(s *diag.Summary) string {
	if len(s.CloseWait) == 0 {
		return "0"
	}
	parts := make([]string, len(s.CloseWait))
	for i, n := range s.CloseWait {
		parts[i] = fmt.Sprint(n)
	}
	t := fmt.Sprintf("%d (%s)", s.CloseWait[len(s.CloseWait)-1], strings.Join(parts, " "))
	if s.Leaking {
		t = strings.TrimSuffix(t, ")") + ", growing)"
	}
	return t
}

// kindCounts is the Problems column: "close-wait:3 abort:1", or "-".
func kindCounts(s *diag.Summary) string {
	var parts []string
	for k := range diag.NumKinds {
		if n := s.Counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", k, n))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func problemCount(s *diag.Summary) int {
	n := 0
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// WriteProblemsJSON is WriteProblems as NDJSON: the records with their
// "problems" (recs[i] has problems[i]; those without any are left out),
// then one object per service (AppendService).
func WriteProblemsJSON(w io.Writer, recs []flows.Record, problems [][]diag.Problem, services []diag.Summary, annotate local.Lookup) error {
	j := NewBufferedJSON(w)
	j.Annotate = annotate
	for i := range recs {
		if len(problems[i]) == 0 {
			continue
		}
		j.Problems = func(*flows.Record) []diag.Problem { return problems[i] }
		if err := j.Write(recs[i : i+1]); err != nil {
			return err
		}
	}
	if err := j.Flush(); err != nil {
		return err
	}
	var b []byte
	for i := range services {
		b = append(AppendService(b[:0], &services[i]), '\n')
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// AppendService appends a service's summary as one JSON object:
// "service" (its address:port), "connections", "attempts", "refused",
// "resets", "refused_rate", "reset_rate", "rtt_median_ms" and
// "rtt_p99_ms" (null without a handshake), "close_wait" (the samples,
// oldest first), "leaking", "problems" (connections per kind, the kinds
// seen only) and "service_problems" (its own, as records' problems).
func AppendService(b []byte, s *diag.Summary) []byte {
	b = append(b, '{')
	b = append(s.Server.AppendTo(appendKey(b, "service")), `",`...)
	b = appendNumber(b, "connections", "", uint64(s.Conns))
	b = appendNumber(b, "attempts", "", uint64(s.Attempts))
	b = appendNumber(b, "refused", "", uint64(s.Refused))
	b = appendNumber(b, "resets", "", uint64(s.Resets))
	b = appendFloat(b, "refused_rate", s.RefusedRate())
	b = appendFloat(b, "reset_rate", s.ResetRate())
	for _, q := range [...]struct {
		name string
		d    time.Duration
	}{{"rtt_median_ms", s.RTTMedian}, {"rtt_p99_ms", s.RTTP99}} {
		if s.RTTs == 0 {
			b = append(append(b, '"'), q.name+`":null,`...)
			continue
		}
		b = appendFloat(b, q.name, float64(q.d)/float64(time.Millisecond))
	}
	b = append(b, `"close_wait":[`...)
	for i, n := range s.CloseWait {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	b = append(b, `],"leaking":`...)
	b = strconv.AppendBool(b, s.Leaking)
	b = append(b, `,"problems":{`...)
	first := true
	for k := range diag.NumKinds {
		if s.Counts[k] > 0 {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(append(append(b, '"'), k.String()...), `":`...)
			b = strconv.AppendInt(b, int64(s.Counts[k]), 10)
		}
	}
	b = append(b, "},"...)
	if len(s.Problems) > 0 {
		b = appendProblems(b, "service_problems", s.Problems)
	}
	b[len(b)-1] = '}'
	return b
}

// appendFloat appends a number field, as short as it can be written
// exactly, and a comma.
func appendFloat(b []byte, name string, v float64) []byte {
	b = append(append(append(b, '"'), name...), `":`...)
	b = strconv.AppendFloat(b, v, 'f', -1, 64)
	return append(b, ',')
}
