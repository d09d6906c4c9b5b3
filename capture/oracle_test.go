package capture

import (
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/internal/oracle"
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

// decoded is what decoding a whole capture gave.
type decoded struct {
	tally       oracle.Counts // frame bytes as tshark counts them: of the completing fragment only
	frames      int
	fileBytes   uint64 // all frames' original lengths
	heldBytes   uint64 // original lengths of the fragments held for reassembly
	extra       uint64 // frame bytes of the other fragments, added to reassembled packets
	extraByFlow map[oracle.Pair]uint64
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
	out := &decoded{tally: oracle.Counts{}, extraByFlow: map[oracle.Pair]uint64{}}
	var p flows.Packet
	for {
		data, ci, link, err := src.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
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
			src, dst := p.Tuple.SrcAddrPort(), p.Tuple.DstAddrPort()
			k, _ := oracle.PairOf(src, dst)
			extra := uint64(p.FrameLen) - wire
			out.extra += extra
			out.extraByFlow[k] += extra
			out.tally.Add(src, dst, uint64(p.FrameLen)-extra, uint64(p.IPLen), uint64(p.PayloadLen))
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
			complaint := oracle.Complaint(filepath.Join(oracleDir, name+".conv.err"))
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

			want, err := oracle.Streams(filepath.Join(oracleDir, name+".streams.tsv"))
			if err != nil {
				t.Fatal(err)
			}
			if err := want.WithIPBytes(filepath.Join(oracleDir, name+".iplen.tsv")); err != nil {
				t.Fatal(err)
			}
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
					total += c[0].FrameBytes + c[1].FrameBytes + got.extraByFlow[k]
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

func compareTally(t *testing.T, got, want oracle.Counts) {
	t.Helper()
	var keys []oracle.Pair
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if want[k] == nil {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, oracle.Pair.Compare)
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
