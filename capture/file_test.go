package capture

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/flowtrack/flowtrack/flows"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gzipFile(t *testing.T, src string, cut int) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	z := []byte(b.String())
	if cut > 0 {
		z = z[:cut]
	}
	return writeFile(t, filepath.Base(src)+".gz", z)
}

func TestOpenFileErrors(t *testing.T) {
	pcapHeader := []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0}
	cases := []struct {
		name string
		path string
		kind error
		msg  string
	}{
		{"missing", filepath.Join(t.TempDir(), "nope.pcap"), fs.ErrNotExist, "nope.pcap: no such file"},
		{"directory", t.TempDir(), ErrNotCapture, "is a directory, not a capture file"},
		{"empty", writeFile(t, "empty.pcap", nil), ErrNotCapture, "empty.pcap is empty, not a pcap or pcapng file"},
		{"text", writeFile(t, "notes.txt", []byte("hello, this is not a capture\n")), ErrNotCapture, "notes.txt is not a pcap or pcapng file"},
		{"bzip2", writeFile(t, "x.pcap.bz2", []byte("BZh91AY&SY")), ErrNotCapture, "x.pcap.bz2 is bzip2-compressed: decompress it first"},
		{"zstd", writeFile(t, "x.pcap.zst", []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0}), ErrNotCapture, "zstd-compressed"},
		{"header cut", writeFile(t, "cut.pcap", pcapHeader[:10]), ErrTruncated, "cut.pcap: file is cut short in its header"},
		{"gzip of text", gzipFile(t, writeFile(t, "t.txt", []byte("not a capture at all, really")), 0), ErrNotCapture, "gzip-compressed, but what it holds is not a pcap or pcapng file"},
		{"gzip cut in header", gzipFile(t, pcapDir+"/eth-http-get.pcap", 12), ErrTruncated, "cut short"},
		{"reserved link-type bits", pcapDir + "/bad-linktype-reserved.pcap", ErrDamaged, "reserved bits"},
		{"libpcap rejects", pcapDir + "/bad-pcap-version.pcap", ErrDamaged, "bad-pcap-version.pcap: libpcap cannot read it: archaic pcap savefile format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, err := OpenFile(c.path, "")
			if err == nil {
				src.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, c.kind) {
				t.Errorf("error %q is not %v", err, c.kind)
			}
			if !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line containing %q", err, c.msg)
			}
		})
	}
}

func TestOpenFileUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file: cannot test a permission error")
	}
	p := writeFile(t, "secret.pcap", []byte{1, 2, 3})
	os.Chmod(p, 0)
	_, err := OpenFile(p, "")
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("error %v", err)
	}
}

func packetsOf(t *testing.T, path, filter string) ([]flows.Packet, error) {
	t.Helper()
	got, err := decodeFile(t, path, filter)
	if err != nil {
		t.Fatalf("OpenFile(%s, %q): %v", path, filter, err)
	}
	return got.packets, got.err
}

func samePackets(t *testing.T, got, want []flows.Packet) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d packets, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("packet %d:\n got  %+v\n want %+v", i, got[i], want[i])
		}
	}
}

// A gzip-compressed capture reads like the plain one, pcap or pcapng, and
// one whose compressed stream is cut gives its intact packets, then says so.
func TestGzip(t *testing.T) {
	for _, name := range []string{"eth-http-get.pcap", "nsec-sll-handshake.pcap", "be-pptp.pcap", "pcapng-eth-sll.pcapng"} {
		t.Run(name, func(t *testing.T) {
			want, err := packetsOf(t, pcapDir+"/"+name, "")
			if err != nil {
				t.Fatal(err)
			}
			got, err := packetsOf(t, gzipFile(t, pcapDir+"/"+name, 0), "")
			if err != nil {
				t.Fatal(err)
			}
			samePackets(t, got, want)
		})
	}
	t.Run("cut", func(t *testing.T) {
		p := gzipFile(t, pcapDir+"/ssh-many.pcap", 200000)
		pkts, err := packetsOf(t, p, "")
		if !errors.Is(err, ErrTruncated) || !strings.HasPrefix(err.Error(), p+": file is cut short") {
			t.Errorf("error %v", err)
		}
		if len(pkts) < 100 {
			t.Errorf("only %d packets before the cut", len(pkts))
		}
	})
}

func TestFilter(t *testing.T) {
	keep := func(pkts []flows.Packet, port uint16) []flows.Packet {
		var out []flows.Packet
		for _, p := range pkts {
			if p.Tuple.SrcPort == port || p.Tuple.DstPort == port {
				out = append(out, p)
			}
		}
		return out
	}
	for _, c := range []struct {
		file   string
		port   uint16
		filter string
	}{
		{"eth-http-get.pcap", 80, ""},
		{"tls-google-8conn.pcap", 443, ""},
		{"sll-resp-15conn.pcap", 6379, ""},
		{"rawip6-http.pcap", 80, ""},
		// read by pcapgo after libpcap gives up: the filter is compiled per link type
		{"pcapng-eth-sll.pcapng", 6000, ""},
		{"pcapng-eth-sll.pcapng", 3306, ""},
		{"pcapng-126if-ldap-gap.pcapng", 389, "vlan and tcp port 389"}, // BPF needs "vlan" for tagged frames
	} {
		t.Run(c.file+"/"+strconv.Itoa(int(c.port)), func(t *testing.T) {
			all, err := packetsOf(t, pcapDir+"/"+c.file, "")
			if err != nil {
				t.Fatal(err)
			}
			want := keep(all, c.port)
			if len(want) == 0 {
				t.Fatalf("bad test: %d of %d packets on port %d", len(want), len(all), c.port)
			}
			filter := c.filter
			if filter == "" {
				filter = "tcp port " + strconv.Itoa(int(c.port))
			}
			got, err := packetsOf(t, pcapDir+"/"+c.file, filter)
			if err != nil {
				t.Fatal(err)
			}
			samePackets(t, got, want)
			// and through gzip, where pcapgo reads every file
			got, err = packetsOf(t, gzipFile(t, pcapDir+"/"+c.file, 0), filter)
			if err != nil {
				t.Fatal(err)
			}
			samePackets(t, got, want)
		})
	}
	for _, p := range []string{pcapDir + "/eth-http-get.pcap", gzipFile(t, pcapDir+"/eth-http-get.pcap", 0)} {
		_, err := OpenFile(p, "tcp port")
		if !errors.Is(err, ErrFilter) || !strings.Contains(err.Error(), `invalid capture filter "tcp port"`) {
			t.Errorf("bad filter on %s: error %v", p, err)
		}
	}
}

// A pcapng file with Ethernet and Linux SLL interfaces gives each packet
// its interface's link type.
func TestMixedLinkTypes(t *testing.T) {
	src, err := OpenFile(pcapDir+"/pcapng-eth-sll.pcapng", "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	seen := map[layers.LinkType]int{}
	for {
		_, _, link, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[link]++
	}
	if seen[layers.LinkTypeEthernet] != 59 || seen[layers.LinkTypeLinuxSLL] != 100 {
		t.Errorf("link types %v, want 59 Ethernet and 100 Linux SLL", seen)
	}
}

func TestFileSourceBasics(t *testing.T) {
	const path = pcapDir + "/nsec-sll-handshake.pcap"
	src, err := OpenFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if src.Name() != path {
		t.Errorf("Name %q", src.Name())
	}
	if st, err := src.Stats(); err != nil || st != (Stats{}) {
		t.Errorf("Stats %+v, %v", st, err)
	}
	_, ci, link, err := src.Next()
	if err != nil {
		t.Fatal(err)
	}
	// nanosecond timestamps survive (tshark: 1418145369.924505488)
	if ci.Timestamp.UnixNano() != 1418145369924505488 || link != layers.LinkTypeLinuxSLL || ci.Length != 76 {
		t.Errorf("first frame %v %d %v", ci.Timestamp.UnixNano(), ci.Length, link)
	}
	for {
		if _, _, _, err = src.Next(); err != nil {
			break
		}
	}
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if _, _, _, err := src.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next after the end: %v", err)
	}
	src.Close()
	src.Close()
	if _, _, _, err := src.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next after Close: %v", err)
	}
}

// writePcap writes frames into a pcap file.
func writePcap(t *testing.T, link layers.LinkType, frames ...[]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "w.pcap")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, link); err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		ts := time.Unix(1700000000+int64(i), 0)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(fr), Length: len(fr)}, fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	payload := tcpSeg{sport: 1, dport: 2, flags: tACK, payload: 780}.bytes()
	fr := frags4(ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, id: 1}, payload, []int{400})
	lone := frags4(ipv4{src: "192.0.2.1", dst: "198.51.100.2", proto: 6, id: 2}, payload, []int{400})[0]
	arp := ether(0x0806, make([]byte, 28))
	bad := ether(0x0800, []byte{0x45, 0})
	tcp := ether(0x0800, v4seg)
	path := writePcap(t, layers.LinkTypeEthernet, tcp, fr[0], arp, lone, bad, fr[1], tcp)

	var c Counters
	var got []flows.Packet
	err := Run(context.Background(), mustOpen(t, path), NewDecoder(), &c, 0, PacketFunc(func(p *flows.Packet) { got = append(got, *p) }))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"Frames": 7, "TCP": 3, "NonTCP": 1, "Malformed": 1, "FragmentsHeld": 2, "FragmentsUnmatched": 1,
		"Bytes": uint64(2*len(tcp) + len(fr[0]) + len(fr[1]) + len(arp) + len(lone) + len(bad))}
	have := map[string]uint64{"Frames": c.Frames.Load(), "TCP": c.TCP.Load(), "NonTCP": c.NonTCP.Load(), "Malformed": c.Malformed.Load(),
		"FragmentsHeld": c.FragmentsHeld.Load(), "FragmentsUnmatched": c.FragmentsUnmatched.Load(), "Bytes": c.Bytes.Load()}
	for k, v := range want {
		if have[k] != v {
			t.Errorf("%s = %d, want %d", k, have[k], v)
		}
	}
	if len(got) != 3 || got[1].PayloadLen != 780 || got[1].FrameLen != uint32(len(fr[0])+len(fr[1])) {
		t.Errorf("packets %+v", got)
	}

	t.Run("max frames", func(t *testing.T) {
		var c Counters
		n := 0
		if err := Run(context.Background(), mustOpen(t, pcapDir+"/ssh-many.pcap"), NewDecoder(), &c, 25, PacketFunc(func(*flows.Packet) { n++ })); err != nil {
			t.Fatal(err)
		}
		if c.Frames.Load() != 25 || n != 25 {
			t.Errorf("%d frames, %d packets, want 25", c.Frames.Load(), n)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var c Counters
		err := Run(ctx, mustOpen(t, pcapDir+"/ssh-many.pcap"), NewDecoder(), &c, 0, PacketFunc(func(*flows.Packet) {}))
		if err != nil || c.Frames.Load() != 0 {
			t.Errorf("err %v after %d frames", err, c.Frames.Load())
		}
	})
	t.Run("cut file", func(t *testing.T) {
		var c Counters
		err := Run(context.Background(), mustOpen(t, pcapDir+"/cut-mid-record.pcap"), NewDecoder(), &c, 0, PacketFunc(func(*flows.Packet) {}))
		if !errors.Is(err, ErrTruncated) || c.TCP.Load() != 13 {
			t.Errorf("err %v after %d TCP packets", err, c.TCP.Load())
		}
	})
}

func mustOpen(t *testing.T, path string) Source {
	t.Helper()
	src, err := OpenFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	return src
}

// "-" reads standard input, as tcpdump -r - does.
func TestOpenFileStdin(t *testing.T) {
	f, err := os.Open(pcapDir + "/eth-http-get.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// libpcap reads descriptor 0 itself: point it at the file for the test.
	saved, err := syscall.Dup(0)
	if err != nil {
		t.Skip(err)
	}
	defer func() { syscall.Dup2(saved, 0); syscall.Close(saved) }()
	if err := syscall.Dup2(int(f.Fd()), 0); err != nil {
		t.Skip(err)
	}
	got, err := packetsOf(t, "-", "")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := packetsOf(t, pcapDir+"/eth-http-get.pcap", "")
	samePackets(t, got, want)
}

// What reads each bundled capture: classic pcap files are mapped
// (pcapSource), and so are pcapng files (pcapngSource). Where the pcapng
// reader hands a file to libpcap (a file cut short), libpcap reads on,
// except past interfaces that differ in link type or snapshot length,
// where it gives up (after the packets of the first interfaces) and pcapgo
// reads on.
func TestLibpcapFallback(t *testing.T) {
	fallback := map[string]bool{
		"pcapng-eth-sll.pcapng":        true, // Ethernet + Linux SLL; libpcap stops after 59 packets
		"cut-mid-block.pcapng":         true, // the same, cut short
		"pcapng-126if-ldap-gap.pcapng": true, // 126 interfaces, snapshot lengths differ
		"pcapng-be-multi-if.pcapng":    true, // Ethernet + NULL, big-endian
	}
	for _, path := range captureFiles(t) {
		name := filepath.Base(path)
		src, err := OpenFile(path, "")
		if err != nil {
			continue // the rejected files, see TestOracle
		}
		for {
			if _, _, _, err := src.Next(); err != nil {
				break
			}
		}
		if ng, ok := src.(*pcapngSource); ok {
			// A pcapng file is mapped; the reader hands what it does not
			// take to libpcap.
			if fs, ok := ng.rest.(*fileSource); ok {
				src = fs
			}
		}
		fs, ok := src.(*fileSource)
		if !ok {
			_, mm := src.(*pcapSource)
			_, ng := src.(*pcapngSource)
			if !(mm && strings.HasSuffix(name, ".pcap") || ng && strings.HasSuffix(name, ".pcapng")) {
				t.Errorf("%s: read by %T", name, src)
			}
			if fallback[name] && !ng {
				t.Errorf("%s: read by %T, want pcapgo or the mapped pcapng reader", name, src)
			}
			src.Close()
			continue
		}
		if got := fs.alt != nil; got != fallback[name] {
			t.Errorf("%s: read by pcapgo: %v, want %v", name, got, fallback[name])
		}
		src.Close()
	}
}

// The captures recorded by the repository's network-namespace harness
// (pcaps/kernel, each listed in its SCENARIOS.tsv) are all TCP.
func TestKernelCaptures(t *testing.T) {
	files, _ := filepath.Glob(pcapDir + "/kernel/*.pcap")
	manifest, err := os.ReadFile(pcapDir + "/kernel/SCENARIOS.tsv")
	if err != nil {
		t.Fatal(err)
	}
	scenarios := 0
	for _, l := range strings.Split(string(manifest), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			scenarios++
		}
	}
	if len(files) != scenarios || scenarios == 0 {
		t.Fatalf("%d captures in pcaps/kernel, %d scenarios in its SCENARIOS.tsv", len(files), scenarios)
	}
	for _, f := range files {
		got, err := decodeFile(t, f, "")
		if err != nil || got.err != nil {
			t.Errorf("%s: %v %v", f, err, got.err)
			continue
		}
		if got.frames == 0 || got.results[ResultTCP] != got.frames {
			t.Errorf("%s: %d frames, results %v", f, got.frames, got.results)
		}
	}
}
