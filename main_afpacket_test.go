package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/flowtrack/flowtrack/internal/jsonrec"
	"github.com/flowtrack/flowtrack/internal/testenv"
)

// TestAFPacketMatchesPcap replays captures with tcpreplay from one network
// namespace into a veth pair, and captures them in the other with two
// flowtracks at once: one through AF_PACKET with three sockets in a fanout
// group, one through a single AF_PACKET socket, one through libpcap. The
// single socket's records must be libpcap's, byte for byte once sorted;
// the fanout's must hold the same connections and counts. Besides bundled captures (VLANs, QinQ, PPPoE, GRE,
// Geneve, VXLAN, IPv4 and IPv6 fragments), the replay holds connections
// that the kernel's fanout hash splits over sockets: inside VXLAN whose
// two directions have different outer ports, and with fragmented
// segments one way (fragments hash without ports). Their packets must
// still reach the table in order, and each must close as RFC 793 says.
func TestAFPacketMatchesPcap(t *testing.T) {
	ns := newNetnsPair(t, "ftafm")
	bin := buildFlowtrack(t)
	split := filepath.Join(t.TempDir(), "split.pcap")
	const vxlanConns, fragConns = 120, 60
	writeSplitCapture(t, split, vxlanConns, fragConns)
	pcaps := []string{"ssh-many", "nmap-scan", "vlan-collisions", "vxlan-http", "frag-ipv4-syn", "vlan-frag-tcp-syn",
		"qinq-http", "pppoe-qinq-tls", "tls-google-8conn", "wikipedia", "zerowin-ooo-http", "gre-ssh", "geneve-http",
		"frag-ipv6-atomic-http", "rtx-ssh-dups"}
	files := []string{split}
	for _, p := range pcaps {
		files = append(files, filepath.Join("pcaps", p+".pcap"))
	}
	// Each flowtrack stops by itself once it has read every frame: those
	// of the replay, and a last one (endCapture).
	want := sendable(t, files...) + 1
	count := strconv.FormatUint(want, 10)
	af := ns.start(t, bin, []string{"GOMAXPROCS=3"}, "-i", "vb", "-o", "json", "--capture", "afpacket", "-c", count)
	one := ns.start(t, bin, []string{"GOMAXPROCS=1"}, "-i", "vb", "-o", "json", "--capture", "afpacket", "-c", count)
	pc := ns.start(t, bin, nil, "-i", "vb", "-o", "json", "--capture", "pcap", "-c", count)
	ns.waitCapturing(t, af, 3)
	ns.waitCapturing(t, one, 1)
	ns.waitCapturing(t, pc, 1)
	sent := ns.replay(t, append([]string{"--pps=20000"}, files...)...)
	if sent+1 != want {
		t.Fatalf("tcpreplay sent %d frames, want %d", sent, want-1)
	}
	ns.endCapture(t)
	afOut, afErr := af.wait(t, want)
	oneOut, _ := one.wait(t, want)
	pcOut, pcErr := pc.wait(t, want)
	oneRecs, pcRecs := sortedLines(t, oneOut), sortedLines(t, pcOut)
	if !slices.Equal(oneRecs, pcRecs) {
		t.Errorf("one AF_PACKET socket gave %d records, libpcap %d; differing:\n%s", len(oneRecs), len(pcRecs), lineDiff(oneRecs, pcRecs))
	}
	afRecs := sortedLines(t, afOut)
	if !slices.Equal(afRecs, pcRecs) {
		t.Errorf("the AF_PACKET fanout gave %d records, libpcap %d; differing:\n%s", len(afRecs), len(pcRecs), lineDiff(afRecs, pcRecs))
	}
	if a, p := tcpCount(t, afErr), tcpCount(t, pcErr); a != p {
		t.Errorf("AF_PACKET counted %d TCP frames, libpcap %d", a, p)
	}
	checkSplitRecords(t, afOut, vxlanConns, fragConns)
	t.Logf("%d frames sent; %d records each; AF_PACKET: %s", sent, len(afRecs), firstLine(afErr))
}

// TestAFPacketCountsDrops stops both flowtracks (SIGSTOP) while more TCP
// frames arrive than their rings hold, then lets them go on: each must
// count every frame sent, either read or dropped by the kernel, summed
// over the AF_PACKET sockets.
func TestAFPacketCountsDrops(t *testing.T) {
	ns := newNetnsPair(t, "ftafd")
	bin := buildFlowtrack(t)
	af := ns.start(t, bin, []string{"GOMAXPROCS=2"}, "-i", "vb", "-o", "none", "--capture", "afpacket", "-B", "1", "tcp")
	pc := ns.start(t, bin, nil, "-i", "vb", "-o", "none", "--capture", "pcap", "-B", "1", "tcp")
	ns.waitCapturing(t, af, 2)
	ns.waitCapturing(t, pc, 1)
	for _, p := range []*exec.Cmd{af.cmd, pc.cmd} {
		if err := p.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	const loops = 40
	file := filepath.Join("pcaps", "ssh-many.pcap")
	sent := ns.replay(t, "--pps=50000", "--loop="+strconv.Itoa(loops), file)
	tcp := loops * tcpFrames(t, file)
	for _, p := range []*exec.Cmd{af.cmd, pc.cmd} {
		if err := p.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	for name, c := range map[string]*ftProc{"AF_PACKET": af, "libpcap": pc} {
		_, stderr := c.stop(t)
		frames, drops := framesAndDrops(t, stderr)
		if drops == 0 || frames+drops != tcp {
			t.Errorf("%s: %d frames read and %d dropped, of %d TCP frames sent (%d frames): want drops, and every frame counted once (%s)",
				name, frames, drops, tcp, sent, firstLine(stderr))
		}
	}
}

// tcpFrames counts the frames of a capture that carry TCP, as gopacket
// decodes them (those the filter "tcp" passes), and that tcpreplay can
// send through a veth: no longer than its MTU and Ethernet header.
func tcpFrames(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if ci.Length <= 1514 && gopacket.NewPacket(data, r.LinkType(), gopacket.NoCopy).Layer(layers.LayerTypeTCP) != nil {
			n++
		}
	}
	return n
}

// netnsPair is two network namespaces joined by a veth pair, va in a and
// vb in b, removed when the test ends.
type netnsPair struct{ a, b string }

func newNetnsPair(t *testing.T, prefix string) netnsPair {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root: it makes network namespaces")
	}
	testenv.LookPath(t, "tcpreplay", "tcpreplay")
	ns := netnsPair{a: fmt.Sprintf("%s-%d-a", prefix, os.Getpid()), b: fmt.Sprintf("%s-%d-b", prefix, os.Getpid())}
	for _, n := range []string{ns.a, ns.b} {
		if out, err := exec.Command("ip", "netns", "add", n).CombinedOutput(); err != nil {
			testenv.Missing(t, "cannot make a network namespace: %v %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n).Run() })
	}
	for _, args := range [][]string{
		// No IPv6 on the veths: their router solicitations would come at
		// any time, and move the flowtracks' clocks.
		{"netns", "exec", ns.a, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"},
		{"netns", "exec", ns.b, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"},
		{"-n", ns.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", ns.b},
		{"-n", ns.a, "link", "set", "va", "up"},
		{"-n", ns.b, "link", "set", "vb", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	return ns
}

// ftProc is a flowtrack running in namespace b.
type ftProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// start runs bin with args in namespace b, with env added.
func (ns netnsPair) start(t *testing.T, bin string, env []string, args ...string) *ftProc {
	t.Helper()
	p := &ftProc{cmd: exec.Command("ip", append([]string{"netns", "exec", ns.b, bin}, args...)...)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	return p
}

// waitCapturing waits until p holds n packet sockets in namespace b, as
// ss lists them, and a little more for their filters and rings: a fixed
// sleep was too short on a loaded machine, where loading the eBPF programs
// first can take seconds.
func (ns netnsPair) waitCapturing(t *testing.T, p *ftProc, n int) {
	t.Helper()
	want := fmt.Sprintf("pid=%d,", p.cmd.Process.Pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command("ip", "netns", "exec", ns.b, "ss", "-0", "-p", "-n").Output()
		if err != nil {
			t.Fatalf("ss -0 -p in %s: %v", ns.b, err)
		}
		if strings.Count(string(out), want) >= n {
			time.Sleep(300 * time.Millisecond)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("flowtrack (pid %d) holds fewer than %d packet sockets after 30 s:\n%s\nits stderr: %s", p.cmd.Process.Pid, n, out, p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// endCapture sends the last frame of a capture: every flowtrack stops at
// it (-c), so that all end at one capture time, and their timers (a SYN
// unanswered for a second, a FIN confirmed by a peer's silence) have run
// out alike. Interrupted one after the other instead, the last one seconds
// later on a loaded machine, they differed in exactly those states (a
// SYN's "unanswered", crossing FINs in CLOSING or TIME_WAIT), even the
// single AF_PACKET socket's against libpcap's. The frame comes between the
// timers the replay set off: 200 ms and more after its last segments, and
// before a second after its first SYNs.
func (ns netnsPair) endCapture(t *testing.T) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	last := filepath.Join(t.TempDir(), "last.pcap")
	f, err := os.Create(last)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	frame := serialize(t, &layers.Ethernet{SrcMAC: splitMACs[1], DstMAC: splitMACs[0], EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(192, 0, 2, 9).To4(), DstIP: net.IPv4(192, 0, 2, 10).To4()},
		&layers.UDP{SrcPort: 9, DstPort: 9}, gopacket.Payload("end"))
	if err := errors.Join(w.WriteFileHeader(65535, layers.LinkTypeEthernet),
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1_700_000_000, 0), CaptureLength: len(frame), Length: len(frame)}, frame), f.Close()); err != nil {
		t.Fatal(err)
	}
	ns.replay(t, last)
}

// wait waits until the flowtrack stops by itself after reading n frames,
// and returns its output.
func (p *ftProc) wait(t *testing.T, n uint64) (stdout, stderr string) {
	t.Helper()
	return p.await(t, 20*time.Second, func(done <-chan error) {
		_ = p.cmd.Process.Signal(os.Interrupt)
		<-done
		t.Fatalf("flowtrack had not read all %d frames after 20 s: %s", n, firstLine(p.stderr.String()))
	})
}

// await waits up to limit for the flowtrack to exit, failing the test if
// it exits with an error, and calls late (which must fail the test) if it
// is still running then; it returns the flowtrack's output.
func (p *ftProc) await(t *testing.T, limit time.Duration, late func(done <-chan error)) (stdout, stderr string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("flowtrack: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(limit):
		late(done)
	}
	return p.stdout.String(), p.stderr.String()
}

// sendable counts the frames of captures that tcpreplay can send through
// a veth: no longer than its MTU and Ethernet header, and a VLAN tag if
// the frame has one (packet_snd in net/packet/af_packet.c).
func sendable(t *testing.T, paths ...string) uint64 {
	t.Helper()
	var n uint64
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		for {
			data, _, err := r.ReadPacketData()
			if err != nil {
				break
			}
			if len(data) <= 1514 || len(data) <= 1518 && data[12] == 0x81 && data[13] == 0 {
				n++
			}
		}
		f.Close()
	}
	return n
}

// stop interrupts the flowtrack, as Ctrl-C would, and returns its output.
func (p *ftProc) stop(t *testing.T) (stdout, stderr string) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	return p.await(t, 10*time.Second, func(<-chan error) {
		_ = p.cmd.Process.Kill()
		t.Fatalf("flowtrack still running 10 s after SIGINT")
	})
}

// replay sends files from namespace a with tcpreplay and returns how many
// frames it sent.
func (ns netnsPair) replay(t *testing.T, args ...string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.a, "tcpreplay", "-q", "-i", "va"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpreplay: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Actual: (\d+) packets`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("tcpreplay said:\n%s", out)
	}
	n, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return n
}

// buildFlowtrack builds the binary, with the build tags given, into a
// directory of the test's own, and returns its path.
func buildFlowtrack(t *testing.T, tags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flowtrack")
	args := []string{"build", "-tags", strings.Join(tags, ","), "-o", bin, "."}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

func sortedLines(t *testing.T, out string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 100 {
		t.Fatalf("only %d records", len(lines))
	}
	slices.Sort(lines)
	return lines
}

// lineDiff lists the lines of a not in b and of b not in a.
func lineDiff(a, b []string) string {
	var s strings.Builder
	for _, l := range a {
		if _, found := slices.BinarySearch(b, l); !found {
			fmt.Fprintf(&s, "  AF_PACKET only: %s\n", l)
		}
	}
	for _, l := range b {
		if _, found := slices.BinarySearch(a, l); !found {
			fmt.Fprintf(&s, "  libpcap only:   %s\n", l)
		}
	}
	return s.String()
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// tcpCount reads the TCP frames of flowtrack's summary line.
func tcpCount(t *testing.T, stderr string) uint64 {
	t.Helper()
	m := regexp.MustCompile(`\((\d+) TCP,`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no summary line in %q", stderr)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// framesAndDrops reads the frames and kernel drops of the summary line.
func framesAndDrops(t *testing.T, stderr string) (frames, drops uint64) {
	t.Helper()
	m := regexp.MustCompile(`^vb: (\d+) packets`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no summary line in %q", stderr)
	}
	frames, _ = strconv.ParseUint(m[1], 10, 64)
	if d := regexp.MustCompile(`(\d+) dropped by the kernel`).FindStringSubmatch(stderr); d != nil {
		drops, _ = strconv.ParseUint(d[1], 10, 64)
	}
	return frames, drops
}

// checkSplitRecords checks the connections of writeSplitCapture: each
// closed as RFC 793 says (the client, which sent the first FIN, in
// TIME_WAIT; the server CLOSED), with every packet counted.
func checkSplitRecords(t *testing.T, out string, vxlanConns, fragConns int) {
	t.Helper()
	recs, err := jsonrec.Read(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, r := range recs {
		kind := ""
		switch {
		case strings.HasPrefix(r.Server, "10.8.0.1:"):
			kind = "vxlan"
		case strings.HasPrefix(r.Server, "10.7.0.1:"):
			kind = "frag"
		default:
			continue
		}
		found[kind]++
		if r.ClientState != "TIME_WAIT" || r.ServerState != "CLOSED" || r.Midstream || r.PacketsC2S != 5 || r.PacketsS2C != 3 ||
			r.RetransmitsC2S+r.RetransmitsS2C != 0 || r.PayloadS2C != splitReply[kind] {
			t.Errorf("%s connection %s -> %s: %s/%s, %d/%d packets, %d bytes back, %d/%d retransmissions, midstream %v",
				kind, r.Client, r.Server, r.ClientState, r.ServerState, r.PacketsC2S, r.PacketsS2C, r.PayloadS2C,
				r.RetransmitsC2S, r.RetransmitsS2C, r.Midstream)
		}
	}
	if found["vxlan"] != vxlanConns || found["frag"] != fragConns {
		t.Errorf("found %d VXLAN and %d fragmented connections, want %d and %d", found["vxlan"], found["frag"], vxlanConns, fragConns)
	}
}

// splitReply is the payload each kind of split connection sends back.
var splitReply = map[string]uint64{"vxlan": 200, "frag": 3000}

// writeSplitCapture writes connections whose packets the kernel's fanout
// hash may spread over sockets: vxlan inside VXLAN between two tunnel
// endpoints that use different source ports each way, and frag whose
// server sends its reply in IPv4 fragments. Each connection is a
// handshake, a request, a reply, and a close by the client; the
// connections' packets are interleaved, step by step.
func writeSplitCapture(t *testing.T, path string, vxlan, frag int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1_700_000_000, 0)
	write := func(frame []byte) {
		ts = ts.Add(100 * time.Microsecond)
		ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(frame), Length: len(frame)}
		if err := w.WritePacket(ci, frame); err != nil {
			t.Fatal(err)
		}
	}
	for step := range 8 {
		for i := range vxlan {
			if fr := splitFrame(t, i, step); fr != nil {
				write(fr)
			}
		}
		for i := range frag {
			for _, fr := range fragFrames(t, i, step) {
				write(fr)
			}
		}
	}
}

// splitSegment is step s of a connection: who sends it, flags, sequence
// offsets from the ISNs, and payload bytes.
func splitSegment(s int, reply int) (fromServer bool, tcp layers.TCP, payload int) {
	const cISN, sISN = 1000, 5000
	type seg struct {
		srv                    bool
		syn, ack, fin, psh     bool
		seq, ackn, payloadSize int
	}
	steps := []seg{
		{false, true, false, false, false, 0, 0, 0},
		{true, true, true, false, false, 0, 1, 0},
		{false, false, true, false, false, 1, 1, 0},
		{false, false, true, false, true, 1, 1, 100},
		{true, false, true, false, true, 1, 101, reply},
		{false, false, true, true, false, 101, 1 + reply, 0},
		{true, false, true, true, false, 1 + reply, 102, 0},
		{false, false, true, false, false, 102, 2 + reply, 0},
	}
	g := steps[s]
	seq, ack := uint32(cISN+g.seq), uint32(sISN+g.ackn)
	if g.srv {
		seq, ack = uint32(sISN+g.seq), uint32(cISN+g.ackn)
	}
	tcp = layers.TCP{SYN: g.syn, ACK: g.ack, FIN: g.fin, PSH: g.psh, Seq: seq, Window: 64000}
	if g.ack {
		tcp.Ack = ack
	}
	return g.srv, tcp, g.payloadSize
}

var splitMACs = [2]net.HardwareAddr{{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}}

// splitFrame is step s of VXLAN connection i: client 10.9.i.1, server
// 10.8.0.1:80, tunnelled between 192.0.2.1 and 192.0.2.2, whose source
// port is 40000+i one way and 50000+i the other.
func splitFrame(t *testing.T, i, s int) []byte {
	t.Helper()
	srv, tcp, n := splitSegment(s, int(splitReply["vxlan"]))
	cli, server := net.IPv4(10, 9, byte(i), 1).To4(), net.IPv4(10, 8, 0, 1).To4()
	tcp.SrcPort, tcp.DstPort = layers.TCPPort(30000+i), 80
	src, dst := cli, server
	vsrc, vdst, sport := net.IPv4(192, 0, 2, 1).To4(), net.IPv4(192, 0, 2, 2).To4(), 40000+i
	if srv {
		src, dst = server, cli
		tcp.SrcPort, tcp.DstPort = tcp.DstPort, tcp.SrcPort
		vsrc, vdst, sport = vdst, vsrc, 50000+i
	}
	inner := serialize(t, &layers.Ethernet{SrcMAC: splitMACs[0], DstMAC: splitMACs[1], EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}, &tcp, gopacket.Payload(make([]byte, n)))
	return serialize(t, &layers.Ethernet{SrcMAC: splitMACs[0], DstMAC: splitMACs[1], EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: vsrc, DstIP: vdst},
		&layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 4789},
		&layers.VXLAN{ValidIDFlag: true, VNI: 42}, gopacket.Payload(inner))
}

// fragFrames is step s of fragmented connection i: client 10.6.i.1,
// server 10.7.0.1:80, whose reply (3000 bytes) goes in three fragments.
func fragFrames(t *testing.T, i, s int) [][]byte {
	t.Helper()
	srv, tcp, n := splitSegment(s, int(splitReply["frag"]))
	cli, server := net.IPv4(10, 6, byte(i), 1).To4(), net.IPv4(10, 7, 0, 1).To4()
	tcp.SrcPort, tcp.DstPort = layers.TCPPort(30000+i), 80
	src, dst := cli, server
	if srv {
		src, dst = server, cli
		tcp.SrcPort, tcp.DstPort = tcp.DstPort, tcp.SrcPort
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst, Id: uint16(i*16 + s)}
	eth := &layers.Ethernet{SrcMAC: splitMACs[0], DstMAC: splitMACs[1], EthernetType: layers.EthernetTypeIPv4}
	if n <= 1000 {
		return [][]byte{serialize(t, eth, ip, &tcp, gopacket.Payload(make([]byte, n)))}
	}
	// The whole datagram, then its IP payload cut at 8-byte multiples.
	whole := serialize(t, ip, &tcp, gopacket.Payload(make([]byte, n)))[20:]
	var frames [][]byte
	for off := 0; off < len(whole); off += 1200 {
		end := min(off+1200, len(whole))
		fip := *ip
		fip.FragOffset = uint16(off / 8)
		if end < len(whole) {
			fip.Flags = layers.IPv4MoreFragments
		}
		fip.Protocol = layers.IPProtocolTCP
		frames = append(frames, serialize(t, eth, &fip, gopacket.Payload(whole[off:end])))
	}
	return frames
}

// serialize writes layers with lengths and checksums computed; the TCP
// and UDP checksums are over the IPv4 layer before them.
func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	var ip *layers.IPv4
	for _, l := range ls {
		switch v := l.(type) {
		case *layers.IPv4:
			ip = v
		case *layers.TCP:
			if ip != nil {
				_ = v.SetNetworkLayerForChecksum(ip)
			}
		case *layers.UDP:
			if ip != nil {
				_ = v.SetNetworkLayerForChecksum(ip)
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return slices.Clone(buf.Bytes())
}
