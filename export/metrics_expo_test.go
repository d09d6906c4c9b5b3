package export

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// errorer is what parseExposition reports to: a test, or errs in the
// parser's own test.
type errorer interface {
	Helper()
	Error(args ...any)
	Errorf(format string, args ...any)
}

// errs collects what parseExposition reports.
type errs []string

func (e *errs) Helper()                           {}
func (e *errs) Error(args ...any)                 { *e = append(*e, fmt.Sprint(args...)) }
func (e *errs) Errorf(format string, args ...any) { *e = append(*e, fmt.Sprintf(format, args...)) }

// TestParseExposition: the exposition parser the metrics tests rely on
// takes the format's examples, and rejects each thing the format forbids.
func TestParseExposition(t *testing.T) {
	const good = `# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
`
	var e errs
	fams := parseExposition(&e, good)
	if len(e) != 0 || len(fams) != 6 || fams["msdos_file_access_time_seconds"].samples[0].labels["error"] != "Cannot find file:\n\"FILE.TXT\"" {
		t.Errorf("the format's example: %q, %d families", e, len(fams))
	}
	for _, bad := range []string{
		"a 1",                      // no line feed at the end
		"a{b=\"c\"}\n",             // no value
		"a{b=c} 1\n",               // unquoted
		"a{b=\"c\\d\"} 1\n",        // an escape the format lacks
		"a{b=\"\xff\"} 1\n",        // not UTF-8
		"a{b=\"c\",b=\"d\"} 1\n",   // a label twice
		"a{b-c=\"d\"} 1\n",         // a bad label name
		"1a 1\n",                   // a bad metric name
		"a one\n",                  // a bad value
		"a 1\na 2\n",               // a series twice
		"a 1\nb 1\na{c=\"d\"} 1\n", // a family's samples apart
		"# TYPE a counter\n# TYPE a gauge\na 1\n",                                        // TYPE twice
		"# HELP a x\n# HELP a y\na 1\n",                                                  // HELP twice
		"a 1\n# TYPE a counter\n",                                                        // TYPE after the samples
		"# TYPE a vector\na 1\n",                                                         // no such type
		"# HELP a x\\y\na 1\n",                                                           // an escape HELP lacks
		"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n",            // not cumulative
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\n",                                     // no +Inf
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n", // +Inf is not the count
	} {
		var e errs
		if parseExposition(&e, bad); len(e) == 0 {
			t.Errorf("%q: taken, want an error", bad)
		}
	}
}

// A family is a metric family as an exposition gives it.
type family struct {
	help    string
	hasHelp bool
	typ     string // "" if no TYPE line
	samples []sample
}

// A sample is one line of a family.
type sample struct {
	name   string // with its suffix: _bucket, _sum, _count
	labels map[string]string
	value  float64
}

// parseExposition parses text in Prometheus's text exposition format
// (version 0.0.4, as its documentation gives it) and fails on anything
// that format forbids: a malformed line, name, label or value; a bad
// escape; a second HELP or TYPE line for a family, or a TYPE line after
// its samples; a family's samples not all together; a series twice; a
// histogram whose buckets are not cumulative or whose +Inf bucket is not
// its count.
func parseExposition(t errorer, text string) map[string]*family {
	t.Helper()
	fams := make(map[string]*family)
	get := func(name string) *family {
		if fams[name] == nil {
			fams[name] = &family{}
		}
		return fams[name]
	}
	series := make(map[string]bool)
	var last string // the family of the line before
	done := make(map[string]bool)
	if text != "" && !strings.HasSuffix(text, "\n") {
		t.Error("exposition: the last line does not end with a line feed")
	}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(format string, a ...any) {
			t.Helper()
			t.Errorf("exposition line %d %q: %s", i+1, line, fmt.Sprintf(format, a...))
		}
		name, err := parseLine(line, get, fams)
		if err != "" {
			fail("%s", err)
			continue
		}
		if name == "" {
			continue // a comment
		}
		if name != last && done[name] {
			fail("the samples of %s are not all together", name)
		}
		if last != "" && name != last {
			done[last] = true
		}
		last = name
		if strings.HasPrefix(line, "#") {
			continue
		}
		s := fams[name].samples[len(fams[name].samples)-1]
		key := s.name + fmt.Sprint(s.labels)
		if series[key] {
			fail("a series seen before")
		}
		series[key] = true
	}
	for name, f := range fams {
		if f.typ == "histogram" {
			checkHistogram(t, name, f)
		}
	}
	return fams
}

// parseLine parses a line into fams and returns its family's name ("" for
// a comment or a blank line), or what is wrong with it.
func parseLine(line string, get func(string) *family, fams map[string]*family) (string, string) {
	if strings.TrimLeft(line, " \t") == "" {
		return "", ""
	}
	if rest, ok := strings.CutPrefix(line, "# "); ok {
		kw, rest, _ := strings.Cut(rest, " ")
		if kw != "HELP" && kw != "TYPE" {
			return "", "" // a comment
		}
		name, arg, _ := strings.Cut(rest, " ")
		if !validName(name) {
			return "", "bad metric name " + strconv.Quote(name)
		}
		f := get(name)
		switch {
		case kw == "HELP" && f.hasHelp:
			return "", "a second HELP"
		case kw == "HELP":
			h, ok := unescape(arg, false)
			if !ok {
				return "", "bad escape in HELP"
			}
			f.help, f.hasHelp = h, true
		case f.typ != "":
			return "", "a second TYPE"
		case len(f.samples) > 0:
			return "", "TYPE after samples"
		case !slices.Contains([]string{"counter", "gauge", "histogram", "summary", "untyped"}, arg):
			return "", "bad type " + strconv.Quote(arg)
		default:
			f.typ = arg
		}
		return name, ""
	}
	if strings.HasPrefix(line, "#") {
		return "", ""
	}
	s, err := parseSample(line)
	if err != "" {
		return "", err
	}
	name := s.name
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(s.name, suffix)
		if f := fams[base]; ok && f != nil && (f.typ == "histogram" || f.typ == "summary" && suffix != "_bucket") {
			name = base
		}
	}
	f := get(name)
	f.samples = append(f.samples, s)
	return name, ""
}

// parseSample parses a sample line: a name, labels perhaps, a value and
// perhaps a timestamp, blanks allowed between the tokens.
func parseSample(line string) (sample, string) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ \t")
	if i < 0 {
		return s, "no value"
	}
	s.name, line = line[:i], strings.TrimLeft(line[i:], " \t")
	if !validName(s.name) {
		return s, "bad metric name " + strconv.Quote(s.name)
	}
	if rest, ok := strings.CutPrefix(line, "{"); ok {
		var err string
		if line, err = parseLabels(rest, s.labels); err != "" {
			return s, err
		}
	}
	fields := strings.Fields(line)
	if len(fields) < 1 || len(fields) > 2 {
		return s, "want a value and perhaps a timestamp"
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, "bad value " + strconv.Quote(fields[0])
	}
	s.value = v
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return s, "bad timestamp"
		}
	}
	return s, ""
}

// parseLabels parses labels up to their closing brace into labels, and
// returns the rest of the line.
func parseLabels(line string, labels map[string]string) (string, string) {
	for {
		line = strings.TrimLeft(line, " \t")
		if rest, ok := strings.CutPrefix(line, "}"); ok {
			return rest, ""
		}
		name, rest, ok := strings.Cut(line, "=")
		name = strings.TrimRight(name, " \t")
		if !ok || !validLabel(name) {
			return "", "bad label name " + strconv.Quote(name)
		}
		rest = strings.TrimLeft(rest, " \t")
		if !strings.HasPrefix(rest, `"`) {
			return "", "unquoted label value"
		}
		end := 1
		for end < len(rest) && rest[end] != '"' {
			if rest[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(rest) {
			return "", "unterminated label value"
		}
		v, ok := unescape(rest[1:end], true)
		if !ok {
			return "", "bad escape in a label value"
		}
		if !utf8.ValidString(v) {
			return "", "a label value not UTF-8"
		}
		if _, dup := labels[name]; dup {
			return "", "label " + name + " twice"
		}
		labels[name] = v
		line = strings.TrimLeft(rest[end+1:], " \t")
		if rest, ok := strings.CutPrefix(line, ","); ok {
			line = rest
		} else if !strings.HasPrefix(line, "}") {
			return "", "want , or } after a label"
		}
	}
}

// unescape undoes the text format's escapes: \\ and \n, and \" in a label
// value; any other backslash is an error.
func unescape(s string, quote bool) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' || c == '"' && quote {
			return "", false
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i++; i == len(s) {
			return "", false
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case '"':
			if !quote {
				return "", false
			}
			b.WriteByte('"')
		default:
			return "", false
		}
	}
	return b.String(), true
}

func validName(s string) bool {
	return s != "" && strings.TrimLeft(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:0123456789") == "" &&
		(s[0] < '0' || s[0] > '9')
}

func validLabel(s string) bool { return validName(s) && !strings.Contains(s, ":") }

// checkHistogram checks that a histogram's buckets are cumulative, in the
// order of their bounds, and end with +Inf, which is its count if given.
func checkHistogram(t errorer, name string, f *family) {
	t.Helper()
	prev, prevLe, inf := -1.0, math.Inf(-1), -1.0
	count := -1.0
	for _, s := range f.samples {
		switch s.name {
		case name + "_bucket":
			le, err := strconv.ParseFloat(s.labels["le"], 64)
			if err != nil || le <= prevLe || s.value < prev {
				t.Errorf("histogram %s: bucket le=%q of %v after le=%v of %v", name, s.labels["le"], s.value, prevLe, prev)
			}
			prev, prevLe = s.value, le
			if math.IsInf(le, 1) {
				inf = s.value
			}
		case name + "_count":
			count = s.value
		}
	}
	if inf < 0 {
		t.Errorf("histogram %s: no +Inf bucket", name)
	}
	if count >= 0 && count != inf {
		t.Errorf("histogram %s: count %v, +Inf bucket %v", name, count, inf)
	}
}

// TestMetricsExposition replays a capture with every metric on and checks
// the exposition against the contract of docs/metrics.md: each flowtrack_
// family with its HELP and its type, labels escaped as the format wants
// (server names come from the traffic), the handshake RTT a classic
// histogram with its buckets from 100 µs to 5 s, each bucket counting the
// records' RTTs up to its bound; and the Go runtime's and the process's
// metrics beside them.
func TestMetricsExposition(t *testing.T) {
	// Each name has all that the format escapes: whichever come first
	// and get a series, their label values show the escapes work.
	var names []string
	for _, n := range []string{"a", "b", "c", "é"} {
		names = append(names, n+"\"quote\\back\nline.example")
	}
	m := NewMetrics(MetricsConfig{
		Capture:  func() CaptureStats { return CaptureStats{Frames: 7} },
		Judge:    diag.New(diag.Config{}),
		TopNames: 3,
		Annotate: func(r *flows.Record) local.Info {
			return local.Info{ServerName: names[r.ID%uint64(len(names))], NameSource: "sni"}
		},
	})
	var recs []flows.Record
	tab := flows.NewTable(flows.Config{
		OnRetire: func(rs []flows.Record) { recs = append(recs, rs...); m.Retire(rs) },
		OnChange: m.Change,
	})
	m.SetTable(tab)
	replayInto(t, "../pcaps/ssh-many.pcap", tab)           // RTTs, retransmissions
	replayInto(t, "../pcaps/problems/half-open.pcap", tab) // and problems, still there at the end
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	before := scrapeFamilies(t, srv.URL)
	rest := tab.Flush()
	m.Stop(rest)
	recs = append(recs, rest...)
	fams := scrapeFamilies(t, srv.URL)
	if len(rest) == 0 || before["flowtrack_connections"] == nil {
		t.Fatal("no connection left at the end of the capture")
	}
	for _, f := range []string{"flowtrack_connections", "flowtrack_connections_with_problem"} {
		// Kept at 0 once shown, now that the table is empty.
		if fams[f] == nil || len(fams[f].samples) != len(before[f].samples) || sumOf(fams[f]) != 0 {
			t.Errorf("%s after the flush: %+v, want the series before (%+v) at 0", f, fams[f], before[f])
		}
	}
	checkTypes(t, fams)
	checkRTTHistogram(t, fams["flowtrack_handshake_rtt_seconds"], recs)
	checkNames(t, fams["flowtrack_connections_by_name_total"], names, 3, len(recs))
	for name, typ := range map[string]string{"go_goroutines": "gauge", "go_gc_duration_seconds": "summary",
		"process_cpu_seconds_total": "counter", "process_resident_memory_bytes": "gauge", "process_open_fds": "gauge"} {
		positive := name == "go_goroutines" || strings.HasPrefix(name, "process_") && name != "process_cpu_seconds_total"
		if f := fams[name]; f == nil || f.typ != typ || len(f.samples) == 0 || positive && f.samples[0].value <= 0 {
			t.Errorf("%s: %+v, want a %s", name, f, typ)
		}
	}
}

// scrapeFamilies scrapes the metrics at url and parses them.
func scrapeFamilies(t *testing.T, url string) map[string]*family {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want the text format 0.0.4", ct)
	}
	return parseExposition(t, string(body))
}

func sumOf(f *family) (n float64) {
	for _, s := range f.samples {
		n += s.value
	}
	return n
}

// checkTypes checks each flowtrack_ family's HELP and TYPE against the
// types docs/metrics.md gives.
func checkTypes(t *testing.T, fams map[string]*family) {
	t.Helper()
	want := map[string]string{
		"flowtrack_capture_frames_total": "counter", "flowtrack_capture_bytes_total": "counter",
		"flowtrack_capture_tcp_packets_total": "counter", "flowtrack_capture_other_frames_total": "counter",
		"flowtrack_capture_malformed_frames_total": "counter", "flowtrack_capture_dropped_frames_total": "counter",
		"flowtrack_connections_opened_total": "counter", "flowtrack_connections_closed_total": "counter",
		"flowtrack_handshake_rtt_seconds": "histogram", "flowtrack_retransmitted_segments_total": "counter",
		"flowtrack_connections_named_total": "counter", "flowtrack_connections_by_name_total": "counter",
		"flowtrack_problems_total": "counter", "flowtrack_connections": "gauge",
		"flowtrack_connections_with_problem": "gauge",
	}
	for name := range fams {
		if strings.HasPrefix(name, "flowtrack_") && want[name] == "" {
			t.Errorf("family %s: not one of flowtrack's", name)
		}
	}
	for name, typ := range want {
		f := fams[name]
		if f == nil || f.typ != typ || f.help == "" || len(f.samples) == 0 {
			t.Errorf("family %s: %+v, want a %s with its HELP", name, f, typ)
		}
	}
}

// checkRTTHistogram checks the RTT histogram's buckets, sum and count
// against the records' RTTs.
func checkRTTHistogram(t *testing.T, f *family, recs []flows.Record) {
	t.Helper()
	bounds := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, math.Inf(1)}
	if f == nil {
		t.Fatal("no flowtrack_handshake_rtt_seconds")
	}
	var buckets []sample
	var sum, count float64
	for _, s := range f.samples {
		switch s.name {
		case "flowtrack_handshake_rtt_seconds_bucket":
			buckets = append(buckets, s)
		case "flowtrack_handshake_rtt_seconds_sum":
			sum = s.value
		case "flowtrack_handshake_rtt_seconds_count":
			count = s.value
		}
	}
	if len(buckets) != len(bounds) {
		t.Fatalf("%d buckets, want %d", len(buckets), len(bounds))
	}
	var wantSum, wantCount float64
	for _, r := range recs {
		if r.RTT >= 0 {
			wantSum += r.RTT.Seconds()
			wantCount++
		}
	}
	if wantCount < 10 {
		t.Fatalf("only %v RTTs in the capture", wantCount)
	}
	for i, b := range buckets {
		le, _ := strconv.ParseFloat(b.labels["le"], 64)
		n := 0.0
		for _, r := range recs {
			if r.RTT >= 0 && r.RTT.Seconds() <= bounds[i] {
				n++
			}
		}
		if le != bounds[i] || b.value != n || len(b.labels) != 1 {
			t.Errorf("bucket %v: %v of le %v, want %v", b.labels, b.value, bounds[i], n)
		}
	}
	if count != wantCount || math.Abs(sum-wantSum) > 1e-9*wantSum {
		t.Errorf("sum %v, count %v; want %v, %v", sum, count, wantSum, wantCount)
	}
}

// checkNames checks the connections by name: top names, each one of
// names and read back as it was, the rest as (other), n in all.
func checkNames(t *testing.T, f *family, names []string, top, n int) {
	t.Helper()
	if f == nil {
		t.Fatal("no flowtrack_connections_by_name_total")
	}
	got := map[string]bool{}
	var total float64
	for _, s := range f.samples {
		name := s.labels["server_name"]
		if name != "(other)" && !slices.Contains(names, name) {
			t.Errorf("server name %q: not one of %q", name, names)
		}
		got[name] = true
		total += s.value
	}
	if !got["(other)"] || len(got) != top+1 || total != float64(n) {
		t.Errorf("by name: %v, %v in all; want %d of %q and (other), %d in all", got, total, top, names, n)
	}
}

// FuzzMetricsLabel: whatever a label value, the exposition parses, and
// gives the value back (not UTF-8: with U+FFFD in the place of each bad
// sequence).
func FuzzMetricsLabel(f *testing.F) {
	for _, s := range []string{"", "a.example", `"`, `\`, "\n", `\n`, "\xff", "é", "}", "a\"b\\c\nd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var p expo
		p.family("x_total", "counter", "X.")
		p.sample("x_total", 1, "server_name", v)
		fams := parseExposition(t, string(p.b))
		f := fams["flowtrack_x_total"]
		if f == nil || len(f.samples) != 1 || f.samples[0].labels["server_name"] != strings.ToValidUTF8(v, "\uFFFD") {
			t.Fatalf("%q: %+v", v, f)
		}
	})
}
