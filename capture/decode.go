package capture

import (
	"encoding/binary"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/flowtrack/flowtrack/capture/peek"
	"github.com/flowtrack/flowtrack/flows"
)

// Result says what Decode made of a frame.
type Result uint8

// The results of Decode.
const (
	// ResultTCP: the Packet holds a TCP segment.
	ResultTCP Result = iota
	// ResultNonTCP: well-formed traffic that is not TCP (ARP, UDP, ICMP,
	// a datagram that is not TCP, ...). The Packet is not filled.
	ResultNonTCP
	// ResultFragmentPending: an IP fragment, held until its datagram is
	// complete. The frame that completes it gives the datagram's result.
	ResultFragmentPending
	// ResultMalformed: the frame cannot be decoded (a header that is cut
	// short or contradicts itself), or its TCP header's 20 fixed bytes
	// were not all captured.
	ResultMalformed
	// ResultUndecoded: a well-formed frame whose contents flowtrack does
	// not decode (IPX, encrypted 802.11, a link type or tunnel it does not
	// read); Decoder.Undecoded names them.
	ResultUndecoded
)

func (r Result) String() string {
	switch r {
	case ResultTCP:
		return "tcp"
	case ResultNonTCP:
		return "non-tcp"
	case ResultFragmentPending:
		return "fragment-pending"
	case ResultMalformed:
		return "malformed"
	case ResultUndecoded:
		return "undecoded"
	}
	return "Result(?)"
}

// Link types that gopacket has no constant for.
const (
	linkTypeRawAlt1   layers.LinkType = 12 // DLT_RAW on most systems
	linkTypeRawAlt2   layers.LinkType = 14 // DLT_RAW on OpenBSD
	linkTypePPPSerial layers.LinkType = 50 // PPP in HDLC-like framing
)

const ipProtoTCP = 6

// Decoder turns frames into flows.Packet values. It holds preallocated
// layers and a table of IP fragments being reassembled, so use one Decoder
// per goroutine: it is not safe for concurrent use.
type Decoder struct {
	st state

	eth     ethLayer
	vlan    vlanLayer
	sll     sllLayer
	sll2    sllLayer
	loop    loopLayer
	pppoe   pppoeLayer
	ppp     pppLayer
	mpls    mplsLayer
	ip4     ip4Layer
	ip6     ip6Layer
	hbh     extLayer
	route   extLayer
	frag6   extLayer
	dstopts extLayer
	ah      extLayer
	gre     greLayer
	erspan  layers.ERSPANII
	udp     udpLayer
	vxlan   layers.VXLAN
	gtp     gtpLayer
	tcp     tcpLayer
	etherip layers.EtherIP

	nflog    nflogLayer
	chdlc    etherTagLayer
	ipoib    etherTagLayer
	vntag    etherTagLayer
	geneve   etherTagLayer
	pbb      pbbLayer
	llc      llcLayer
	snap     snapLayer
	radiotap radiotapLayer
	dot11    dot11Layer
	arcnet   arcnetLayer
	arcnetL  arcnetLayer
	teredo   teredoLayer
	ayiya    ayiyaLayer

	dlc     gopacket.DecodingLayerContainer
	panics  bool // let gopacket's panics through instead of recovering them (fuzzing)
	slow    bool // skip the hand-written fast path (tests compare the two)
	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	// parsers for the link types, looked up without the map
	pEth, pSLL, pSLL2, pLoop, pIP4, pIP6, pPPP, pPPPoE *gopacket.DecodingLayerParser
	decoded                                            []gopacket.LayerType
	undecoded                                          Encap // what the last ResultUndecoded could not look into

	frags     fragTable
	fkey      fragKey            // key of the fragment being held
	reasm     [fragHeadSize]byte // start of the datagram being decoded after reassembly
	depth     int                // nesting of reassembled datagrams being decoded
	unmatched uint64             // fragments dropped from the table, not yet counted by Run

	peek    *peek.Peeker // reads first payloads and DNS responses; nil: none
	payload []byte       // the TCP payload bytes captured of the packet decoded
}

// SetPeeker makes the Decoder hand k every TCP segment it decodes, with
// its payload, and every DNS response (UDP from port 53), so that k names
// the connections (see package peek). Call it before the first Decode.
func (d *Decoder) SetPeeker(k *peek.Peeker) { d.peek = k }

// fork returns a Decoder for another goroutine that decodes a share of
// the same capture, in which every connection's frames come through one
// of them (a fanout group's sockets): the same settings, fragments of its
// own, and a fork of the Peeker, which names connections in the same
// Store.
func (d *Decoder) fork() *Decoder {
	n := NewDecoder()
	n.panics, n.slow = d.panics, d.slow
	if d.peek != nil {
		n.peek = d.peek.Fork()
	}
	return n
}

// NewDecoder returns a Decoder with its layers allocated.
func NewDecoder() *Decoder {
	d := &Decoder{decoded: make([]gopacket.LayerType, 0, 32)}
	st := &d.st
	d.vlan.st = st
	d.eth.st, d.sll.st, d.sll2.st, d.loop.st, d.ppp.st, d.mpls.st = st, st, st, st, st, st
	d.sll2.v2 = true
	d.gre.st, d.nflog.st, d.llc.st, d.snap.st, d.dot11.st, d.ayiya.st = st, st, st, st, st, st
	d.arcnet.st, d.arcnetL.st, d.arcnetL.linux = st, st, true
	for l, typ := range map[*etherTagLayer]gopacket.LayerType{
		&d.chdlc: layerTypeCHDLC, &d.ipoib: layerTypeIPoIB, &d.vntag: layerTypeVNTag, &d.geneve: layers.LayerTypeGeneve,
	} {
		l.typ, l.st = typ, st
	}
	d.ip4.st = st
	d.ip6.st = st
	d.udp.st = st
	d.pppoe.st = st
	d.gtp.st = st
	d.tcp.st = st
	for _, e := range []struct {
		l   *extLayer
		typ gopacket.LayerType
	}{
		{&d.hbh, layers.LayerTypeIPv6HopByHop},
		{&d.route, layers.LayerTypeIPv6Routing},
		{&d.frag6, layers.LayerTypeIPv6Fragment},
		{&d.dstopts, layers.LayerTypeIPv6Destination},
		{&d.ah, layers.LayerTypeIPSecAH},
	} {
		e.l.typ, e.l.st = e.typ, st
	}
	var dlc gopacket.DecodingLayerContainer = gopacket.DecodingLayerSparse(nil)
	for _, l := range []gopacket.DecodingLayer{
		&d.eth, &d.vlan, &d.sll, &d.sll2, &d.loop, &d.pppoe, &d.ppp, &d.mpls,
		&d.ip4, &d.ip6, &d.hbh, &d.route, &d.frag6, &d.dstopts, &d.ah,
		&d.gre, &d.erspan, &d.udp, &d.vxlan, &d.gtp, &d.tcp, &d.etherip,
		&d.nflog, &d.chdlc, &d.ipoib, &d.vntag, &d.geneve, &d.pbb, &d.llc, &d.snap,
		&d.radiotap, &d.dot11, &d.arcnet, &d.arcnetL, &d.teredo, &d.ayiya,
	} {
		dlc = dlc.Put(l)
	}
	d.dlc = dlc
	d.parsers = make(map[gopacket.LayerType]*gopacket.DecodingLayerParser)
	d.pEth = d.parser(layers.LayerTypeEthernet)
	d.pSLL = d.parser(layers.LayerTypeLinuxSLL)
	d.pSLL2 = d.parser(layers.LayerTypeLinuxSLL2)
	d.pLoop = d.parser(layers.LayerTypeLoopback)
	d.pIP4 = d.parser(layers.LayerTypeIPv4)
	d.pIP6 = d.parser(layers.LayerTypeIPv6)
	d.pPPP = d.parser(layers.LayerTypePPP)
	d.pPPPoE = d.parser(layers.LayerTypePPPoE)
	return d
}

// parser returns the parser that starts at layer type first, sharing the
// Decoder's layers, or nil if no layer decodes first.
func (d *Decoder) parser(first gopacket.LayerType) *gopacket.DecodingLayerParser {
	if p, ok := d.parsers[first]; ok {
		return p
	}
	var p *gopacket.DecodingLayerParser
	if _, ok := d.dlc.Decoder(first); ok {
		p = gopacket.NewDecodingLayerParser(first)
		p.SetDecodingLayerContainer(d.dlc)
		p.IgnoreUnsupported = true
		p.IgnorePanic = d.panics
	}
	d.parsers[first] = p
	return p
}

// letPanicsThrough makes the parsers let a panic in a gopacket layer
// through rather than turn it into an error (ResultMalformed), so that
// fuzzing finds them.
func (d *Decoder) letPanicsThrough() {
	d.panics = true
	for _, p := range d.parsers {
		if p != nil {
			p.IgnorePanic = true
		}
	}
}

// Decode fills p from one frame of the given link type. It returns
// ResultTCP when p holds a TCP segment, ResultNonTCP for any other
// well-formed traffic, ResultFragmentPending when the frame was an IP
// fragment being held for its datagram (the fragment that completes a
// datagram returns the datagram's result), and ResultMalformed for a frame
// it cannot decode. p is written only for ResultTCP.
//
// Decode never panics and, for a TCP frame that is not a fragment, does
// not allocate.
func (d *Decoder) Decode(link layers.LinkType, data []byte, ci gopacket.CaptureInfo, p *flows.Packet) Result {
	return d.decodeFrame(link, data, ci.Timestamp.UnixNano(), ci.Length, p)
}

// decodeFrame is Decode for a frame captured at ts (Unix nanoseconds) whose
// original length was wire.
func (d *Decoder) decodeFrame(link layers.LinkType, data []byte, ts int64, wire int, p *flows.Packet) Result {
	// A broken record header: the wire carried at least what was captured.
	wire = max(wire, len(data))
	r := ResultTCP
	var fast bool
	if link == layers.LinkTypeEthernet && !d.slow {
		d.payload, fast = fastEthernet(data, wire, ts, p) // nil if not
	} else {
		d.payload = nil
	}
	if !fast {
		r = d.decode(link, data, ts, wire, p)
	}
	if r == ResultTCP {
		if p.Tuple.SrcPort == p.Tuple.DstPort && p.Tuple.Src == p.Tuple.Dst {
			// Source and destination are one endpoint (a LAND attack, or a
			// socket connected to itself): no direction tells client from
			// server, so it cannot be tracked as a connection.
			return ResultMalformed
		}
		if d.peek != nil {
			d.peek.TCP(p, d.payload)
		}
	}
	return r
}

// decode is decodeFrame through the gopacket layers, for a frame that
// fastEthernet did not take (or was not shown), at least as long on the
// wire as captured.
func (d *Decoder) decode(link layers.LinkType, data []byte, ts int64, wire int, p *flows.Packet) Result {
	var pr *gopacket.DecodingLayerParser
	switch link {
	case layers.LinkTypeEthernet:
		pr = d.pEth
	case layers.LinkTypeLinuxSLL:
		pr = d.pSLL
	case layers.LinkTypeLinuxSLL2:
		pr = d.pSLL2
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		pr = d.pLoop
	case layers.LinkTypeRaw, linkTypeRawAlt1, linkTypeRawAlt2:
		if len(data) == 0 {
			return ResultMalformed
		}
		switch data[0] >> 4 {
		case 4:
			pr = d.pIP4
		case 6:
			pr = d.pIP6
		default:
			return ResultMalformed
		}
	case layers.LinkTypeIPv4:
		pr = d.pIP4
	case layers.LinkTypeIPv6:
		pr = d.pIP6
	case layers.LinkTypePPP, linkTypePPPSerial:
		pr = d.pPPP
	case layers.LinkTypePPPEthernet:
		pr = d.pPPPoE
	default:
		pr = d.otherLink(link)
		if pr == nil {
			d.undecoded = Encap{EncapLinkType, uint32(link)}
			return ResultUndecoded
		}
	}
	d.st = state{frame: data, end: wire}
	return d.walk(pr, data, ts, uint64(wire), p)
}

// otherLink returns the parser for one of the rarer link types, or nil.
func (d *Decoder) otherLink(link layers.LinkType) *gopacket.DecodingLayerParser {
	switch link {
	case linkTypeNFLOG:
		return d.parser(layerTypeNFLOG)
	case layers.LinkTypeC_HDLC:
		return d.parser(layerTypeCHDLC)
	case linkTypeIPoIB:
		return d.parser(layerTypeIPoIB)
	case layers.LinkTypeIEEE80211Radio:
		return d.parser(layers.LayerTypeRadioTap)
	case layers.LinkTypeIEEE802_11:
		return d.parser(layers.LayerTypeDot11)
	case layers.LinkTypeArcNet:
		return d.parser(layerTypeARCnet)
	case layers.LinkTypeARCNetLinux:
		return d.parser(layerTypeARCnetLinux)
	}
	return nil
}

// Undecoded names what the frame of the last ResultUndecoded held.
func (d *Decoder) Undecoded() Encap { return d.undecoded }

// walk runs the parser over data, with d.st prepared, and concludes.
func (d *Decoder) walk(pr *gopacket.DecodingLayerParser, data []byte, ts int64, frameLen uint64, p *flows.Packet) Result {
	st := &d.st
	if err := pr.DecodeLayers(data, &d.decoded); err != nil {
		if st.afterUDP {
			// The payload of a UDP datagram that its port made us take
			// for a tunnel: the datagram itself was fine.
			return ResultNonTCP
		}
		return ResultMalformed
	}
	switch {
	case st.tcp != nil:
		return d.tcpPacket(ts, frameLen, p)
	case st.dns != nil && d.peek != nil && !st.fragmented:
		d.peek.DNS(ts, st.dns, st.dnsCut || st.reasmCut)
	case st.ipVer != 0 && st.fragmented:
		return d.fragment(ts, frameLen, p)
	case st.ipVer != 0 && st.proto == ipProtoTCP:
		return ResultMalformed // TCP, but not one byte of its header captured
	case st.next.undecoded():
		d.undecoded = st.next
		return ResultUndecoded
	}
	return ResultNonTCP
}

// tcpPacket fills p from the TCP header in d.st.
func (d *Decoder) tcpPacket(ts int64, frameLen uint64, p *flows.Packet) Result {
	st := &d.st
	b := st.tcp
	if len(b) < 20 {
		return ResultMalformed
	}
	hl := int(b[12]>>4) * 4
	seg := st.l4Len - st.extLen // the TCP segment's length, from the IP header
	if hl < 20 || seg < hl {
		return ResultMalformed
	}
	if st.ipVer == 4 {
		p.Tuple.SetV4(st.src, st.dst)
	} else {
		p.Tuple.SetV6(st.src, st.dst)
	}
	setTCP(p, b, hl, seg-hl, ts, min(frameLen, 1<<32-1), uint64(st.ipHdr+st.l4Len), st.vlan, st.meta)
	if len(b) > hl {
		d.payload = b[hl:min(len(b), seg)]
	}
	if st.reassembled {
		p.Snapped = st.reasmCut
	}
	return ResultTCP
}

// setTCP fills p from a TCP header b (at least its 20 fixed bytes, hl long
// in all, as far as captured) whose segment carries payload bytes, in an
// IP packet ipLen long (flows.Packet.IPLen) described by meta and a frame
// frameLen long.
func setTCP(p *flows.Packet, b []byte, hl, payload int, ts int64, frameLen, ipLen uint64, vlan flows.VLAN, meta ipMeta) {
	p.TTL, p.IPID = meta.ttl, meta.id
	p.Tuple.SrcPort = binary.BigEndian.Uint16(b[0:2])
	p.Tuple.DstPort = binary.BigEndian.Uint16(b[2:4])
	p.Tuple.VLAN = vlan
	p.TS = ts
	p.Seq = binary.BigEndian.Uint32(b[4:8])
	p.Ack = binary.BigEndian.Uint32(b[8:12])
	p.PayloadLen = uint32(payload)
	p.FrameLen = uint32(min(frameLen, 1<<32-1))
	p.IPLen = uint32(min(ipLen, 1<<32-1))
	p.Snapped = max(len(b)-hl, 0) < payload // fewer payload bytes captured than sent
	p.Window = binary.BigEndian.Uint16(b[14:16])
	p.Flags = flows.Flags(b[13]) | flows.Flags(b[12]&1)<<8
	p.WScale = -1
	opts := b[20:min(hl, len(b))]
	if p.Flags&flows.SYN != 0 {
		p.WScale = windowScale(opts)
	}
	p.TSVal, p.HasTS = timestamp(opts)
}

// ipMeta is what flows.Packet takes from the IP header besides the
// addresses and lengths: its TTL (IPv6 hop limit) and, for IPv4, its
// identification.
type ipMeta struct {
	ttl uint8
	id  uint16
}

// timestamp returns the TSval of the timestamps option among the TCP
// options in opts (as far as captured), if there is one. Linux and most
// stacks put it first, after two no-ops, on every segment but a SYN: that
// layout is read without walking the options.
func timestamp(opts []byte) (uint32, bool) {
	if len(opts) >= 12 && binary.BigEndian.Uint32(opts) == 0x0101080a {
		return binary.BigEndian.Uint32(opts[4:8]), true
	}
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0: // end of options
			return 0, false
		case 1: // no-op
			i++
			continue
		}
		if i+1 >= len(opts) {
			return 0, false
		}
		n := int(opts[i+1])
		if n < 2 {
			return 0, false
		}
		if opts[i] == 8 && n == 10 && i+10 <= len(opts) {
			return binary.BigEndian.Uint32(opts[i+2:]), true
		}
		i += n
	}
	return 0, false
}

// windowScale returns the shift count of the window scale option among the
// TCP options in opts (as far as they were captured), capped at 14 as RFC
// 7323 says a receiver must, or -1 if there is none.
func windowScale(opts []byte) int8 {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0: // end of options
			return -1
		case 1: // no-op
			i++
			continue
		}
		if i+1 >= len(opts) {
			return -1
		}
		n := int(opts[i+1])
		if n < 2 {
			return -1
		}
		if opts[i] == 3 && n == 3 && i+2 < len(opts) {
			return int8(min(opts[i+2], 14))
		}
		i += n
	}
	return -1
}

// canCarryTCP reports whether the payload of an IP packet of protocol proto
// may hold a TCP header: TCP itself, a tunnel, or an extension header.
func canCarryTCP(proto uint8) bool {
	switch layers.IPProtocol(proto) {
	case layers.IPProtocolTCP, layers.IPProtocolUDP, layers.IPProtocolGRE,
		layers.IPProtocolIPv4, layers.IPProtocolIPv6, layers.IPProtocolMPLSInIP,
		layers.IPProtocolIPv6Routing, layers.IPProtocolIPv6Destination, layers.IPProtocolAH:
		return true
	}
	return false
}

// maxDepth bounds the nesting of fragmented datagrams inside reassembled
// ones (a fragmented tunnel packet inside a fragmented carrier).
const maxDepth = 2

// fragment holds the IP fragment described by d.st and, when it completes
// its datagram, decodes the datagram.
func (d *Decoder) fragment(ts int64, frameLen uint64, p *flows.Packet) Result {
	st := &d.st
	if !canCarryTCP(st.proto) {
		return ResultNonTCP
	}
	n := st.l4Len - st.fragHdrEnd // the fragment's share of the datagram
	if n < 0 || st.fragOff+n > maxDatagram {
		return ResultMalformed
	}
	k := &d.fkey
	*k = fragKey{id: st.fragID, proto: st.proto, v6: st.ipVer == 6, vlan: st.vlan}
	if k.v6 {
		copy(k.src[:], st.src)
		copy(k.dst[:], st.dst)
	} else {
		k.src[10], k.src[11] = 0xff, 0xff
		k.dst[10], k.dst[11] = 0xff, 0xff
		copy(k.src[12:], st.src)
		copy(k.dst[12:], st.dst)
	}
	cut := len(st.fragData) < n
	if st.reassembled {
		cut = st.reasmCut // a fragment inside a reassembled datagram: its start is all that is kept
	}
	hdr := st.ipHdr // IPv4: the IP header, repeated in each fragment
	if k.v6 {
		hdr += st.fragHdrEnd - 8 // the unfragmentable part: headers before the Fragment header (RFC 8200 4.5)
	}
	i, complete, dropped := d.frags.add(k, ts, st.fragOff, n, hdr, st.fragMore, st.fragData, cut, frameLen)
	d.unmatched += dropped
	if !complete {
		return ResultFragmentPending
	}
	e := &d.frags.entries[i]
	head := d.reasm[:copy(d.reasm[:], e.head[:e.valid()])]
	total, hdr, sum, cut := int(e.total), int(e.hdr), e.frameSum, e.cut
	d.frags.remove(i)
	if d.depth >= maxDepth {
		return ResultMalformed
	}

	// Decode the datagram's start as what its IP header said follows.
	// Its fragments' TTLs are alike as they left their sender: the
	// completing one's stands for the datagram's.
	meta := ipMeta{ttl: st.meta.ttl}
	if !k.v6 {
		meta.id = uint16(k.id)
	}
	d.st = state{frame: head, end: total, vlan: k.vlan, ipOff: -1, ipHdr: hdr, l4Len: total, proto: k.proto, reassembled: true, reasmCut: cut, meta: meta}
	if k.v6 {
		d.st.ipVer, d.st.src, d.st.dst = 6, k.src[:], k.dst[:]
	} else {
		d.st.ipVer, d.st.src, d.st.dst = 4, k.src[12:], k.dst[12:]
	}
	pr := d.parser(layers.IPProtocol(k.proto).LayerType())
	if pr == nil {
		return ResultNonTCP
	}
	if len(head) == 0 {
		if k.proto == ipProtoTCP {
			return ResultMalformed
		}
		return ResultNonTCP
	}
	d.depth++
	r := d.walk(pr, head, ts, sum, p)
	d.depth--
	return r
}

// Flush drops every datagram still being reassembled, as at the end of a
// capture, and returns how many fragments that discards. Run calls it when
// it returns.
func (d *Decoder) Flush() uint64 {
	if d.peek != nil {
		d.peek.Flush()
	}
	n := d.frags.flush() + d.unmatched
	d.unmatched = 0
	return n
}
