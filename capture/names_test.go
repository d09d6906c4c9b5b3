package capture

import (
	"bufio"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/capture/peek"
	"github.com/flowtrack/flowtrack/flows"
)

// The name oracles (pcaps/oracle/names.sh): tshark's ClientHellos and HTTP
// requests per stream, and its DNS responses.

// helloLine is one line of NAME.hello.tsv.
type helloLine struct {
	stream    int
	ts        int64
	src, dst  netip.AddrPort
	sni, host string
	alpn      string // comma-separated
}

// lastOf returns the innermost of tshark's '|'-aggregated values.
func lastOf(s string) string {
	if i := strings.LastIndexByte(s, '|'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func epochNS(t *testing.T, s string) int64 {
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	frac = (frac + "000000000")[:9]
	f, _ := strconv.ParseInt(frac, 10, 64)
	return n*1e9 + f
}

func readTSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, strings.Split(sc.Text(), "\t"))
	}
	return out
}

func readHellos(t *testing.T, path string) []helloLine {
	var out []helloLine
	for _, f := range readTSV(t, path) {
		if len(f) != 11 {
			t.Fatalf("%s: %d fields in %q", path, len(f), f)
		}
		stream, _ := strconv.Atoi(f[0])
		addr := func(v4, v6, port string) netip.AddrPort {
			a := lastOf(v4)
			if v6 != "" && (a == "" || strings.Count(v6, "|") >= strings.Count(v4, "|")) {
				a = lastOf(v6)
			}
			p, _ := strconv.Atoi(lastOf(port))
			return netip.AddrPortFrom(netip.MustParseAddr(a), uint16(p))
		}
		out = append(out, helloLine{
			stream: stream, ts: epochNS(t, f[1]),
			src: addr(f[2], f[3], f[4]), dst: addr(f[5], f[6], f[7]),
			sni: f[8], host: f[9], alpn: strings.ReplaceAll(f[10], "|", ","),
		})
	}
	return out
}

// wantName is the name tshark's first hello or request of a stream gives,
// as RFC 6066 and RFC 9110 define it: case-insensitive, a Host without its
// port, and nothing for an address literal.
func (h *helloLine) wantName() (string, peek.Source) {
	if h.sni != "" {
		return strings.ToLower(strings.TrimSuffix(h.sni, ".")), peek.SourceSNI
	}
	if h.host == "" {
		return "", peek.SourceNone
	}
	host := strings.ToLower(h.host)
	if strings.HasPrefix(host, "[") {
		return "", peek.SourceNone
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return "", peek.SourceNone
	}
	return host, peek.SourceHost
}

// synSeen returns the tshark streams whose opening SYN was captured.
func synSeen(t *testing.T, name string) map[int]bool {
	seen := map[int]bool{}
	rows := readTSV(t, filepath.Join(oracleDir, name+".streams.tsv"))
	for _, f := range rows[1:] {
		s, _ := strconv.Atoi(f[0])
		a, _ := strconv.Atoi(f[11])
		b, _ := strconv.Atoi(f[12])
		seen[s] = a+b > 0
	}
	return seen
}

// replayNamed replays a capture through a Decoder with a Peeker into a
// flows table, and returns every record and the Peeker.
func replayNamed(t *testing.T, path string) ([]flows.Record, *peek.Peeker) {
	src, err := OpenFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	k := peek.New(peek.Config{})
	d := NewDecoder()
	d.SetPeeker(k)
	var recs []flows.Record
	table := flows.NewTable(flows.Config{OnRetire: func(r []flows.Record) { recs = append(recs, r...) }})
	_ = Run(context.Background(), src, d, &Counters{}, 0, table) // a cut file still gives its packets
	table.FlushEach(func(r []flows.Record) { recs = append(recs, r...) })
	return recs, k
}

// TestNamesMatchTshark checks, on every bundled capture where tshark sees
// a ClientHello or an HTTP request, that each connection whose SYN was
// captured is named by its first one's SNI or Host (and its ALPN list),
// and that no other connection is named by SNI or Host.
func TestNamesMatchTshark(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(oracleDir, "*.hello.tsv"))
	if len(files) < 20 {
		t.Fatalf("only %d hello oracles", len(files))
	}
	named := 0
	for _, o := range files {
		name := strings.TrimSuffix(filepath.Base(o), ".hello.tsv")
		t.Run(name, func(t *testing.T) {
			hellos := readHellos(t, o)
			syn := synSeen(t, name)
			recs, k := replayNamed(t, filepath.Join(pcapDir, name))
			first := map[int]*helloLine{}
			for i := range hellos {
				if h := &hellos[i]; first[h.stream] == nil {
					first[h.stream] = h
				}
			}
			want := map[int]bool{} // records with a hello or a request in tshark
			for i := range hellos {
				h := &hellos[i]
				if ri := findRecord(recs, h.src, h.dst, h.ts); ri >= 0 {
					want[ri] = true
				}
				// tshark ignores VLAN tags: the same 4-tuple on another
				// VLAN is one stream to it, whose later requests it takes
				// for retransmissions.
				for ri := range recs {
					if r := &recs[ri]; r.Client == h.src && r.Server == h.dst && r.Key.VLAN.N > 0 {
						want[ri] = true
					}
				}
			}
			for stream, h := range first {
				wn, ws := h.wantName()
				ri := findRecord(recs, h.src, h.dst, h.ts)
				if ri < 0 {
					if wn != "" || h.alpn != "" {
						t.Errorf("stream %d (%v -> %v): no record", stream, h.src, h.dst)
					}
					continue
				}
				got := k.Store().Lookup(&recs[ri])
				if !syn[stream] || (wn == "" && h.alpn == "") {
					if got.Source == peek.SourceSNI || got.Source == peek.SourceHost {
						t.Errorf("stream %d: SYN seen %v, oracle name %q: got %+v", stream, syn[stream], wn, got)
					}
					continue
				}
				if got.Server != wn || (wn != "" && got.Source != ws) || got.ALPN != h.alpn {
					t.Errorf("stream %d (%v -> %v): got %q (%v) alpn %q; tshark %q (%v) alpn %q", stream, h.src, h.dst, got.Server, got.Source, got.ALPN, wn, ws, h.alpn)
				}
				if wn != "" {
					named++
				}
			}
			for i := range recs {
				if got := k.Store().Lookup(&recs[i]); !want[i] && (got.Source == peek.SourceSNI || got.Source == peek.SourceHost) {
					t.Errorf("%v -> %v: named %+v without a hello or request in tshark", recs[i].Client, recs[i].Server, got)
				}
			}
		})
	}
	if named < 25 {
		t.Errorf("only %d connections named by SNI or Host across the captures", named)
	}
}

// findRecord returns the index of the record of src -> dst whose life
// holds ts, or -1.
func findRecord(recs []flows.Record, src, dst netip.AddrPort, ts int64) int {
	for i := range recs {
		r := &recs[i]
		if r.Client == src && r.Server == dst && r.FirstSeen.UnixNano() <= ts && ts <= r.LastSeen.UnixNano() {
			return i
		}
	}
	return -1
}

// TestDNSMatchesTshark checks, on every bundled capture where tshark sees
// a DNS response from port 53, that each address of its answer section is
// named by the question at the response's time, through the chain of
// CNAMEs of that answer section, ending at the address record's owner.
func TestDNSMatchesTshark(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(oracleDir, "*.dns.tsv"))
	if len(files) < 3 {
		t.Fatalf("only %d DNS oracles", len(files))
	}
	checked := 0
	for _, o := range files {
		name := strings.TrimSuffix(filepath.Base(o), ".dns.tsv")
		t.Run(name, func(t *testing.T) {
			_, k := replayNamed(t, filepath.Join(pcapDir, name))
			for _, f := range readTSV(t, o) {
				if len(f) != 10 {
					t.Fatalf("%d fields in %q", len(f), f)
				}
				if lastOf(f[1]) != "53" && lastOf(f[2]) != "53" {
					continue // mDNS and the like: not read
				}
				ts := epochNS(t, f[0])
				question := strings.ToLower(f[3])
				n, _ := strconv.Atoi(f[4])
				names, types := strings.Split(f[5], "|"), strings.Split(f[6], "|")
				a, aaaa := strings.Split(f[7], "|"), strings.Split(f[8], "|")
				ia, iaaaa := 0, 0
				for i := 0; i < n; i++ {
					var addr string
					switch types[i] {
					case "1":
						addr, ia = a[ia], ia+1
					case "28":
						addr, iaaaa = aaaa[iaaaa], iaaaa+1
					default:
						continue
					}
					chain := k.NameAddr(netip.MustParseAddr(addr), ts)
					owner := strings.ToLower(names[i])
					if len(chain) == 0 || chain[0] != question || chain[len(chain)-1] != owner {
						t.Errorf("%s at %v: %s (owner %s) named by %v; want %s first, %s last", question, time.Unix(0, ts).UTC(), addr, owner, chain, question, owner)
						continue
					}
					for _, c := range chain {
						if !containsFold(names[:n], c) {
							t.Errorf("%s: chain %v has %s, not in the answers %v", addr, chain, c, names[:n])
						}
					}
					checked++
				}
			}
		})
	}
	if checked < 10 {
		t.Errorf("only %d answers checked", checked)
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
