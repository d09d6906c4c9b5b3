package capture

import (
	"bufio"
	"cmp"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flowtrack/flowtrack/flows"
)

// The captures bundled with the repository, and tshark's per-stream counts
// of them (see pcaps/README.md).
const (
	pcapDir   = "../pcaps"
	oracleDir = "../pcaps/oracle"
)

func captureFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.pcap", "*.pcapng"} {
		m, err := filepath.Glob(filepath.Join(pcapDir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	if len(files) == 0 {
		t.Fatalf("no captures in %s", pcapDir)
	}
	return files
}

// dirCount is what one direction of a 4-tuple carried.
type dirCount struct{ pkts, frameBytes, ipBytes, payload uint64 }

// flowKey is an unordered 4-tuple: a is the lower endpoint. Direction 0 is
// from a to b.
type flowKey struct{ a, b netip.AddrPort }

func (k flowKey) String() string { return k.a.String() + " <-> " + k.b.String() }

func canon(src, dst netip.AddrPort) (flowKey, int) {
	if cmpAddrPort(src, dst) <= 0 {
		return flowKey{src, dst}, 0
	}
	return flowKey{dst, src}, 1
}

func cmpAddrPort(x, y netip.AddrPort) int {
	if c := x.Addr().Compare(y.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(x.Port(), y.Port())
}

type tally map[flowKey]*[2]dirCount

func (t tally) add(k flowKey, dir int, frameBytes, ipBytes, payload uint64) {
	c := t[k]
	if c == nil {
		c = new([2]dirCount)
		t[k] = c
	}
	c[dir].pkts++
	c[dir].frameBytes += frameBytes
	c[dir].ipBytes += ipBytes
	c[dir].payload += payload
}

// readOracle sums tshark's streams.tsv and iplen.tsv per 4-tuple and
// direction.
func readOracle(t *testing.T, name string) tally {
	t.Helper()
	out := tally{}
	// columns: pkts a2b, b2a, framebytes a2b, b2a, payload a2b, b2a
	eachStream(t, name+".streams.tsv", 11, func(cnt *[2]dirCount, dir int, n func(int) uint64) {
		cnt[dir].pkts += n(5)
		cnt[1-dir].pkts += n(6)
		cnt[dir].frameBytes += n(7)
		cnt[1-dir].frameBytes += n(8)
		cnt[dir].payload += n(9)
		cnt[1-dir].payload += n(10)
	}, out)
	// columns: pkts a2b, b2a (as above), ipbytes a2b, b2a
	pkts := tally{}
	eachStream(t, name+".iplen.tsv", 9, func(cnt *[2]dirCount, dir int, n func(int) uint64) {
		cnt[dir].pkts += n(5)
		cnt[1-dir].pkts += n(6)
		cnt[dir].ipBytes += n(7)
		cnt[1-dir].ipBytes += n(8)
	}, pkts)
	for k, c := range pkts {
		o := out[k]
		if o == nil || o[0].pkts != c[0].pkts || o[1].pkts != c[1].pkts {
			t.Fatalf("%s: the oracles count %v's packets differently", name, k)
		}
		o[0].ipBytes, o[1].ipBytes = c[0].ipBytes, c[1].ipBytes
	}
	if len(pkts) != len(out) {
		t.Fatalf("%s: %d 4-tuples in iplen.tsv, %d in streams.tsv", name, len(pkts), len(out))
	}
	return out
}

// eachStream calls fn with each line of an oracle file (of at least cols
// columns), the counts of its 4-tuple in out, the direction of its
// endpoint a in them, and the numeric value of column i.
func eachStream(t *testing.T, file string, cols int, fn func(cnt *[2]dirCount, dir int, n func(i int) uint64), out tally) {
	t.Helper()
	f, err := os.Open(filepath.Join(oracleDir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) < cols {
			t.Fatalf("%s: short oracle line %q", file, sc.Text())
		}
		ap := func(addr, port string) netip.AddrPort {
			p, err := strconv.ParseUint(port, 10, 16)
			if err != nil {
				t.Fatal(err)
			}
			return netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(p))
		}
		n := func(i int) uint64 {
			v, err := strconv.ParseUint(c[i], 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			return v
		}
		k, dir := canon(ap(c[1], c[2]), ap(c[3], c[4]))
		cnt := out[k]
		if cnt == nil {
			cnt = new([2]dirCount)
			out[k] = cnt
		}
		fn(cnt, dir, n)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// oracleErr returns tshark's complaint about the file, or "".
func oracleErr(name string) string {
	b, err := os.ReadFile(filepath.Join(oracleDir, name+".conv.err"))
	if err != nil {
		return ""
	}
	return string(b)
}

// decoded is what decoding a whole capture gave.
type decoded struct {
	tally       tally // frame bytes as tshark counts them: of the completing fragment only
	frames      int
	fileBytes   uint64 // all frames' original lengths
	heldBytes   uint64 // original lengths of the fragments held for reassembly
	extra       uint64 // frame bytes of the other fragments, added to reassembled packets
	extraByFlow map[flowKey]uint64
	results     [5]int
	packets     []flows.Packet
	err         error // the error that ended the read, other than io.EOF
}

func decodeFile(t testing.TB, path, filter string) (*decoded, error) {
	t.Helper()
	src, err := OpenFile(path, filter)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	d := NewDecoder()
	out := &decoded{tally: tally{}, extraByFlow: map[flowKey]uint64{}}
	var p flows.Packet
	for {
		data, ci, link, err := src.Next()
		if err != nil {
			if err != io.EOF {
				out.err = err
			}
			break
		}
		out.frames++
		wire := uint64(max(ci.Length, len(data)))
		out.fileBytes += wire
		r := d.Decode(link, data, ci, &p)
		out.results[r]++
		switch r {
		case ResultFragmentPending:
			out.heldBytes += wire
		case ResultTCP:
			out.packets = append(out.packets, p)
			k, dir := canon(p.Tuple.SrcAddrPort(), p.Tuple.DstAddrPort())
			extra := uint64(p.FrameLen) - wire
			out.extra += extra
			out.extraByFlow[k] += extra
			out.tally.add(k, dir, uint64(p.FrameLen)-extra, uint64(p.IPLen), uint64(p.PayloadLen))
		}
	}
	return out, nil
}

// fragmentedSingleFlow are the captures that hold nothing but the fragments
// of one TCP segment: all their frame bytes belong to it.
var fragmentedSingleFlow = map[string]bool{
	"frag-ipv4-syn.pcap":        true,
	"vlan-frag-tcp-syn.pcap":    true,
	"frag-ipv6-rawip6-tcp.pcap": true,
}

// TestOracle decodes every bundled capture and compares, per 4-tuple and
// direction, packets, frame bytes, IP bytes (Packet.IPLen) and payload
// bytes with tshark's.
//
// The one documented difference: for a fragmented datagram tshark counts
// the frame length of the fragment that completes it, flowtrack the frame
// lengths of all its fragments (they all crossed the wire for it). The test
// takes the other fragments' lengths off before comparing, and checks that
// they are exactly the fragments the decoder held.
func TestOracle(t *testing.T) {
	for _, path := range captureFiles(t) {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			complaint := oracleErr(name)
			got, err := decodeFile(t, path, "")
			rejected := strings.Contains(complaint, "doesn't support") || strings.Contains(complaint, "damaged")
			switch {
			case rejected:
				if err == nil && got.err == nil {
					t.Fatalf("tshark rejects the file (%s) but it read cleanly: %d frames", firstLine(complaint), got.frames)
				}
				if err == nil && got.frames > 0 {
					t.Errorf("tshark rejects the file, but %d frames came before the error", got.frames)
				}
				if err == nil {
					err = got.err
				}
				checkCleanError(t, err, path)
				t.Logf("rejected: %v", err)
				return
			case err != nil:
				t.Fatalf("OpenFile: %v", err)
			case strings.Contains(complaint, "cut short"):
				if got.err == nil {
					t.Fatal("a cut file read to its end without an error")
				}
				if !errors.Is(got.err, ErrTruncated) || !strings.Contains(got.err.Error(), "cut short in the middle of a packet") {
					t.Errorf("error %q: want ErrTruncated saying the file is cut short", got.err)
				}
				checkCleanError(t, got.err, path)
				t.Logf("after %d frames: %v", got.frames, got.err)
			case got.err != nil:
				t.Fatalf("read error after %d frames: %v", got.frames, got.err)
			}

			want := readOracle(t, name)
			compareTally(t, got.tally, want)
			if got.extra != got.heldBytes {
				t.Errorf("reassembled packets carry %d frame bytes of other fragments, but the held fragments had %d", got.extra, got.heldBytes)
			}
			if fragmentedSingleFlow[name] {
				if got.extra == 0 {
					t.Error("no reassembled packet")
				}
				var total uint64
				for k, c := range got.tally {
					total += c[0].frameBytes + c[1].frameBytes + got.extraByFlow[k]
				}
				if total != got.fileBytes {
					t.Errorf("the datagram's frame bytes are %d, the file's frames %d", total, got.fileBytes)
				}
			}
			t.Logf("%d frames: %d TCP, %d other, %d fragments held, %d malformed; %d 4-tuples",
				got.frames, got.results[ResultTCP], got.results[ResultNonTCP], got.results[ResultFragmentPending],
				got.results[ResultMalformed], len(got.tally))
		})
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// checkCleanError checks that err is one line naming the file.
func checkCleanError(t *testing.T, err error, path string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("error %v (%T) is not an *Error", err, err)
		return
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, path) {
		t.Errorf("error %q: want one line starting with the file name", msg)
	}
	if e.Kind == nil {
		t.Errorf("error %q has no kind", msg)
	}
}

func compareTally(t *testing.T, got, want tally) {
	t.Helper()
	var keys []flowKey
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if want[k] == nil {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y flowKey) int {
		if c := cmpAddrPort(x.a, y.a); c != 0 {
			return c
		}
		return cmpAddrPort(x.b, y.b)
	})
	for _, k := range keys {
		g, w := got[k], want[k]
		switch {
		case g == nil:
			t.Errorf("%v: tshark has %+v, flowtrack nothing", k, *w)
		case w == nil:
			t.Errorf("%v: flowtrack has %+v, tshark nothing", k, *g)
		case *g != *w:
			t.Errorf("%v:\n flowtrack %+v\n tshark    %+v", k, *g, *w)
		}
	}
}
