package capture

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
)

// Encap names what a frame that flowtrack could not look inside was: the
// header field that named its contents, and the field's value. Decode
// returns ResultUndecoded for such a frame (an IPX packet, an encrypted
// 802.11 frame, a link type it does not read), and Run counts them by
// Encap, so that a capture of traffic flowtrack cannot follow says what it
// holds instead of calling it malformed.
type Encap struct {
	Field EncapField
	Value uint32
}

// EncapField is the kind of header field an Encap's value comes from.
type EncapField uint8

// The fields that name what a frame carries.
const (
	EncapLinkType  EncapField = iota + 1 // a pcap link type (LINKTYPE_)
	EncapEtherType                       // an Ethernet type: Ethernet, 802.1Q, SNAP, GRE, Linux SLL, C-HDLC, IPoIB, Geneve
	EncapPPP                             // a PPP protocol number
	EncapIPProto                         // an IP protocol number
	EncapLLC                             // an 802.2 LLC service access point (0xff: Novell's raw 802.3)
	EncapFamily                          // an address family (BSD loopback, Linux NFLOG)
	EncapARCnet                          // an ARCnet protocol ID
	Encap80211                           // an 802.11 data frame flowtrack cannot read: Value is one of the dot11... constants
	EncapMPLS                            // an MPLS payload that is not IP (a pseudowire)
)

// The 802.11 data frames that Decode does not look into.
const (
	dot11Protected = 1 // encrypted (WEP, TKIP, CCMP, GCMP)
	dot11AMSDU     = 2 // an aggregate of several frames
)

// etherTypeNames names the Ethernet types that mean a network protocol
// other than IP: the ones a user is likely to meet in old or odd captures.
var etherTypeNames = map[uint32]string{
	0x0001: "Novell raw 802.3 (IPX)", 0x0600: "XNS", 0x6003: "DECnet", 0x6004: "DEC LAT",
	0x8137: "IPX", 0x8138: "IPX", 0x809b: "AppleTalk", 0x80f3: "AppleTalk ARP",
	0x88e5: "MACsec (encrypted)", 0x880b: "PPP", 0x8847: "MPLS", 0x8848: "MPLS multicast",
	0x8906: "FCoE", 0x8915: "RoCE", 0x88b5: "local experimental", 0x88b6: "local experimental",
	0x22f0: "AVTP", 0x88ab: "Powerlink", 0x8892: "PROFINET", 0x88a4: "EtherCAT",
	0x876b: "TCP/IP compression", 0x8863: "PPPoE discovery", 0x0842: "Wake-on-LAN",
}

func (e Encap) String() string {
	switch e.Field {
	case EncapLinkType:
		return linkTypeName(layers.LinkType(e.Value))
	case EncapEtherType:
		if n, ok := etherTypeNames[e.Value]; ok {
			return fmt.Sprintf("%s (ethertype 0x%04x)", n, e.Value)
		}
		return fmt.Sprintf("ethertype 0x%04x", e.Value)
	case EncapPPP:
		if e.Value == 0x002b {
			return "IPX over PPP (PPP protocol 0x002b)"
		}
		return fmt.Sprintf("PPP protocol 0x%04x", e.Value)
	case EncapIPProto:
		if n := layers.IPProtocol(e.Value).String(); !strings.HasPrefix(n, "Unknown") {
			return fmt.Sprintf("%s (IP protocol %d)", n, e.Value)
		}
		return fmt.Sprintf("IP protocol %d", e.Value)
	case EncapLLC:
		if e.Value == 0xe0 || e.Value == 0xff {
			return fmt.Sprintf("IPX (LLC SAP 0x%02x)", e.Value)
		}
		return fmt.Sprintf("LLC SAP 0x%02x", e.Value)
	case EncapFamily:
		return fmt.Sprintf("address family %d", e.Value)
	case EncapARCnet:
		if e.Value == 0xfa {
			return "IPX over ARCnet (ARCnet protocol 0xfa)"
		}
		return fmt.Sprintf("ARCnet protocol 0x%02x", e.Value)
	case Encap80211:
		switch e.Value {
		case dot11Protected:
			return "802.11 protected (encrypted) data"
		case dot11AMSDU:
			return "802.11 A-MSDU"
		}
		return "802.11 frame"
	case EncapMPLS:
		return "MPLS payload that is not IP (pseudowire)"
	}
	return fmt.Sprintf("Encap(%d, %d)", e.Field, e.Value)
}

// linkTypeName names a link type as libpcap does: "link type 147 (USER0)".
func linkTypeName(lt layers.LinkType) string {
	if n := pcap.DatalinkValToName(int(dltOf(lt))); n != "" {
		return fmt.Sprintf("link type %d (%s)", lt, n)
	}
	if lt >= 147 && lt <= 162 { // reserved for private use; libpcap has no name for them
		return fmt.Sprintf("link type %d (USER%d)", lt, lt-147)
	}
	return fmt.Sprintf("link type %d", lt)
}

// CanDecode reports whether Decode reads frames of link type lt.
func CanDecode(lt layers.LinkType) bool {
	switch lt {
	case layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2,
		layers.LinkTypeNull, layers.LinkTypeLoop, layers.LinkTypeRaw, linkTypeRawAlt1, linkTypeRawAlt2,
		layers.LinkTypeIPv4, layers.LinkTypeIPv6, layers.LinkTypePPP, linkTypePPPSerial,
		layers.LinkTypePPPEthernet, layers.LinkTypeC_HDLC, linkTypeIPoIB, linkTypeNFLOG,
		layers.LinkTypeIEEE802_11, layers.LinkTypeIEEE80211Radio, layers.LinkTypeArcNet, layers.LinkTypeARCNetLinux:
		return true
	}
	return false
}

// decodableLinkTypes names the link types Decode reads, for messages.
const decodableLinkTypes = "Ethernet, Linux cooked (SLL, SLL2, NFLOG), BSD loopback, raw IP, PPP, PPPoE, Cisco HDLC, IP over InfiniBand, 802.11 (plain or radiotap) and ARCnet"

// linkTypeError is the error for a file whose link type Decode cannot read.
func linkTypeError(path string, lt layers.LinkType) error {
	return newError(ErrLinkType, nil, "%s: %s is not one flowtrack can decode; it reads %s (tshark -r may still show the file)",
		path, linkTypeName(lt), decodableLinkTypes)
}

// controlEtherTypes are the Ethernet types of link-layer protocols that
// never carry IP: their frames are well-formed traffic that is not TCP.
var controlEtherTypes = map[uint32]bool{
	0x0806: true, // ARP
	0x8035: true, // RARP (and Cisco HDLC's SLARP)
	0x88cc: true, // LLDP
	0x888e: true, // EAPOL (802.1X)
	0x8809: true, // slow protocols (LACP, OAM)
	0x88f7: true, // PTP
	0x9000: true, // Ethernet loopback (CTP)
	0x2000: true, // Cisco CDP (C-HDLC)
	0x88e3: true, // MRP
	0x8100: true, // a VLAN tag with nothing after it
	0x88a8: true,
	0x0800: true, // an IP ethertype with no bytes after it (cut by the snapshot length)
	0x86dd: true,
	0x893a: true, // IEEE 1905.1
	0x8808: true, // Ethernet flow control (PAUSE)
	0x88b8: true, // GOOSE
	0x88ba: true, // Sampled values
	0x8864: true, // PPPoE session with no PPP
	0x6558: true, // bridged Ethernet with nothing after it
}

// controlPPP reports whether a PPP protocol number is a control protocol
// (LCP, the NCPs, authentication): the upper half of the number space.
func controlPPP(p uint32) bool { return p >= 0x8000 }

// encapIPProtos are the IP protocols that carry other packets flowtrack
// does not decode.
var encapIPProtos = map[uint32]bool{50: true, 97: true, 98: true, 115: true}

// undecoded reports whether e names something flowtrack could not look
// into (a network protocol other than IP, encrypted data, a tunnel it does
// not decode) rather than traffic known not to be TCP.
func (e Encap) undecoded() bool {
	switch e.Field {
	case EncapEtherType:
		return !controlEtherTypes[e.Value]
	case EncapPPP:
		return !controlPPP(e.Value)
	case EncapIPProto:
		return encapIPProtos[e.Value]
	case EncapLLC:
		return e.Value == 0xe0 || e.Value == 0xff
	case EncapARCnet:
		// ARP, RARP, ARCnet diagnostics: known, not IP
		return e.Value != 0xd5 && e.Value != 0xd6 && e.Value != 0xf1 && e.Value != 0x80
	case EncapFamily, EncapLinkType, Encap80211, EncapMPLS:
		return true
	}
	return false
}

// EncapCount is how many frames Run found of one Encap.
type EncapCount struct {
	Encap  Encap
	Frames uint64
}

// encapCounts counts undecoded frames by kind; Run adds to it, others read.
type encapCounts struct {
	mu sync.Mutex
	m  map[Encap]uint64
}

func (c *encapCounts) add(m map[Encap]uint64) {
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[Encap]uint64, len(m))
	}
	for k, v := range m {
		c.m[k] += v
	}
	c.mu.Unlock()
}

// UndecodedKinds returns the frames Run could not look inside, by kind, the
// most frequent first.
func (c *Counters) UndecodedKinds() []EncapCount {
	c.kinds.mu.Lock()
	out := make([]EncapCount, 0, len(c.kinds.m))
	for k, v := range c.kinds.m {
		out = append(out, EncapCount{k, v})
	}
	c.kinds.mu.Unlock()
	slices.SortFunc(out, func(a, b EncapCount) int {
		if a.Frames != b.Frames {
			if a.Frames > b.Frames {
				return -1
			}
			return 1
		}
		if a.Encap.Field != b.Encap.Field {
			return int(a.Encap.Field) - int(b.Encap.Field)
		}
		return int(a.Encap.Value) - int(b.Encap.Value)
	})
	return out
}
