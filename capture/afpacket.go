package capture

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// The capture methods of LiveConfig.Method.
const (
	MethodAuto     = "auto"     // AF_PACKET where it can, else libpcap
	MethodAFPacket = "afpacket" // AF_PACKET TPACKET_V3 rings, read in Go
	MethodPcap     = "pcap"     // libpcap
)

// A live capture through AF_PACKET reads the kernel's TPACKET_V3 ring in
// Go (gopacket's afpacket), with no cgo call per frame as libpcap needs.
// With several sockets, they join one PACKET_FANOUT_HASH group, and the
// kernel spreads the frames over them by a hash of their flow; Run then
// reads and decodes each socket on a goroutine of its own (fanout.go).
//
// The kernel's hash (fanout_demux_hash in net/packet/af_packet.c,
// __skb_get_hash_symmetric) is over the addresses and ports, ordered so
// that both directions of a TCP connection hash alike, found by the flow
// dissector through VLAN tags, PPPoE, MPLS and the tunnels it opens
// (GRE, IP in IP). Both directions of a connection that flowtrack keys
// alike thus come through one socket, with these exceptions: the two
// directions of a UDP tunnel (VXLAN, GTP-U) whose ends picked different
// source ports, and IP fragments, which hash without ports (fragments are
// not reassembled by the kernel for the group: its reassembled datagram
// would be a frame no other capture sees). Run merges the sockets' packets
// by capture time, so that such a connection's packets still come in
// order.

// afSocket is one AF_PACKET socket with its ring.
type afSocket struct {
	tp *afpacket.TPacket
}

// afpacketSource reads one AF_PACKET socket, or (fanout, with several)
// is read by Run, a goroutine per socket.
type afpacketSource struct {
	name     string
	socks    []*afSocket
	ifDrops0 uint64      // the interface's drop counters when the capture opened
	closing  atomic.Bool // Close was called: readers stop
	closed   bool
	mu       sync.Mutex // held by Next and Run while they read, and by Close
	once     sync.Once
}

// The rings: a block holds many frames (TPACKET_V3 packs them), and is
// handed over once full, or afBlockTimeout after its first frame. A read
// waits at most afPollTimeout for a block (then ErrTimeout), so that a
// reader of several sockets hears from an idle one that often (fanout.go).
const (
	afBlockSize    = 1 << 18
	afFrameSize    = 1 << 16 // the largest frame a block may hold
	afBlockTimeout = 5 * time.Millisecond
	afPollTimeout  = 10 * time.Millisecond
)

// openAFPacket opens n AF_PACKET sockets on iface, in one fanout group if
// n > 1, each with the filter and snapshot length libpcap would use; the
// kernel buffer cfg.BufferSize is shared among them. It first opens the
// interface with libpcap, for its checks and messages (no such interface,
// no privilege, interface down, a bad filter) and for the filter, which
// libpcap compiles as it would for its own capture of the interface.
func openAFPacket(iface string, cfg LiveConfig, n int) (*afpacketSource, error) {
	filter, err := compileFilter(iface, cfg)
	if err != nil {
		return nil, err
	}
	blocks := max(8, cfg.BufferSize/afBlockSize/n)
	if cfg.BufferSize <= 0 {
		blocks = max(8, (2<<20)/afBlockSize) // libpcap's default, 2 MiB
	}
	s := &afpacketSource{name: iface, ifDrops0: ifDrops(iface)}
	group := uint16(rand.Uint32())
	for range n {
		tp, err := afpacket.NewTPacket(afpacket.OptInterface(iface), afpacket.TPacketVersion3,
			afpacket.OptBlockSize(afBlockSize), afpacket.OptFrameSize(afFrameSize), afpacket.OptNumBlocks(blocks),
			afpacket.OptBlockTimeout(afBlockTimeout), afpacket.OptPollTimeout(min(cfg.Timeout, afPollTimeout)), afpacket.OptAddVLANHeader(true))
		if err == nil {
			s.socks = append(s.socks, &afSocket{tp: tp})
			err = setUp(tp, filter, cfg.Promisc, n, group)
		}
		if err != nil {
			s.closeSockets()
			return nil, afError(iface, err)
		}
	}
	return s, nil
}

// setUp attaches the filter to a socket, puts the interface into
// promiscuous mode if asked, and joins the fanout group if there is one.
func setUp(tp *afpacket.TPacket, filter []bpf.RawInstruction, promisc bool, n int, group uint16) error {
	if err := tp.SetBPF(filter); err != nil {
		return fmt.Errorf("attaching the filter: %w", err)
	}
	if promisc {
		if err := tp.SetPromiscuous(true); err != nil {
			return fmt.Errorf("promiscuous mode: %w", err)
		}
	}
	if n > 1 {
		if err := tp.SetFanout(afpacket.FanoutHash, group); err != nil {
			return fmt.Errorf("joining a fanout group: %w", err)
		}
	}
	// Frames that came before the filter was attached are not wanted:
	// the counters start now.
	_, _, err := tp.SocketStats()
	return err
}

// compileFilter opens iface with libpcap, which checks it as a libpcap
// capture would, and compiles cfg's filter there: the program libpcap
// would give the kernel, with its snapshot length and the Linux
// extensions it uses for VLAN tags the kernel has taken off the frame.
func compileFilter(iface string, cfg LiveConfig) ([]bpf.RawInstruction, error) {
	probe := cfg
	probe.Filter, probe.BufferSize = "", 1<<20
	src, err := openPcap(iface, probe)
	if err != nil {
		return nil, err
	}
	h := src.(*liveSource).h
	defer h.Close()
	if h.LinkType() != layers.LinkTypeEthernet {
		return nil, newError(ErrLinkType, nil, "%s has link type %s: flowtrack reads only Ethernet (and loopback) through AF_PACKET; use --capture pcap", iface, h.LinkType())
	}
	insns, err := h.CompileBPFFilter(loopbackInbound(iface, cfg.Filter))
	if err != nil {
		return nil, filterError(cfg.Filter, err)
	}
	raw := make([]bpf.RawInstruction, len(insns))
	for i, in := range insns {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return raw, nil
}

// loopbackInbound returns the filter for iface: on the loopback device,
// every frame passes twice, going out and coming in, and libpcap skips
// the copy going out; here the kernel's filter does ("inbound", which
// libpcap compiles to the packet type the kernel gives the filter).
func loopbackInbound(iface, filter string) string {
	if ifc, err := net.InterfaceByName(iface); err != nil || ifc.Flags&net.FlagLoopback == 0 {
		return filter
	}
	if filter == "" {
		return "inbound"
	}
	return "inbound and (" + filter + ")"
}

// afError turns a failure to set up an AF_PACKET socket into an *Error.
func afError(iface string, err error) error {
	if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "operation not permitted") {
		//lint:ignore ST1005 libpcap's words, which activateError recognises
		return activateError(iface, errors.New("Permission Denied"))
	}
	return newError(ErrCapture, err, "cannot capture on %s through AF_PACKET: %v (--capture pcap uses libpcap instead)", iface, err)
}

func (s *afpacketSource) Name() string { return s.name }

// Next reads the next frame of the first socket (the only one, unless
// Run reads them all at once).
func (s *afpacketSource) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.closing.Load() {
		return nil, gopacket.CaptureInfo{}, layers.LinkTypeEthernet, io.EOF
	}
	return s.read(s.socks[0])
}

// read reads the next frame of one socket.
func (s *afpacketSource) read(sk *afSocket) ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ci, err := sk.tp.ZeroCopyReadPacketData()
	switch {
	case err == nil:
		return data, ci, layers.LinkTypeEthernet, nil
	case errors.Is(err, afpacket.ErrTimeout):
		return nil, ci, layers.LinkTypeEthernet, ErrTimeout
	case errors.Is(err, afpacket.ErrPoll):
		return nil, ci, layers.LinkTypeEthernet, newError(ErrCapture, err, "capture on %s failed: %s", s.name, s.whatHappened())
	}
	return nil, ci, layers.LinkTypeEthernet, newError(ErrCapture, err, "capture on %s failed: %v", s.name, err)
}

// whatHappened says why a socket reported an error: the kernel does so
// when its interface goes down or away.
func (s *afpacketSource) whatHappened() string {
	ifc, err := net.InterfaceByName(s.name)
	switch {
	case err != nil:
		return "the interface disappeared"
	case ifc.Flags&net.FlagUp == 0:
		return "the interface went down"
	}
	return "the socket reported an error"
}

// Stats sums the counters of every socket: what the kernel received for
// the filter (dropped frames included, as libpcap counts them), what it
// dropped because a ring was full, and the interface's own drops since
// the capture opened. It may be called while Run reads.
func (s *afpacketSource) Stats() (Stats, error) {
	var st Stats
	for _, sk := range s.socks {
		_, v3, err := sk.tp.SocketStats()
		if err != nil {
			return Stats{}, newError(ErrCapture, err, "statistics of %s: %v", s.name, err)
		}
		st.PacketsReceived += uint64(v3.Packets())
		st.PacketsDropped += uint64(v3.Drops())
	}
	if d := ifDrops(s.name); d >= s.ifDrops0 {
		st.IfDropped = d - s.ifDrops0
	}
	return st, nil
}

// Sockets returns how many sockets the capture reads.
func (s *afpacketSource) Sockets() int { return len(s.socks) }

// Close stops the capture. A read in another goroutine returns first (its
// poll times out), so that none finds its ring unmapped.
func (s *afpacketSource) Close() {
	s.once.Do(func() {
		s.closing.Store(true)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		s.closeSockets()
	})
}

func (s *afpacketSource) closeSockets() {
	for _, sk := range s.socks {
		sk.tp.Close()
	}
}

// ifDrops reads the interface's counters of frames it could not take, as
// libpcap's statistics do (rx_missed_errors and rx_fifo_errors); 0 if
// they cannot be read.
func ifDrops(iface string) uint64 {
	var n uint64
	for _, f := range []string{"rx_missed_errors", "rx_fifo_errors"} {
		b, err := os.ReadFile("/sys/class/net/" + iface + "/statistics/" + f)
		if err != nil {
			continue
		}
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			n += v
		}
	}
	return n
}
