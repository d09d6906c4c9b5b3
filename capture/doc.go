// Package capture turns frames from a live interface or a capture file into
// flows.Packet values.
//
// A [Source] yields frames ([OpenLive], [OpenFile]); a [Decoder] turns
// each frame into a [flows.Packet] or says why not ([Result]); [Run] ties
// the two together for a flows table, counting what it saw in [Counters].
//
// # Live capture
//
// [OpenLive] opens an interface through libpcap in immediate mode, so a
// frame is handed over as soon as it arrives, with a finite read timeout
// (100ms by default): [Source.Next] then returns [ErrTimeout], and [Run]
// checks its context, so cancelling the context stops a capture within one
// timeout even on a silent interface. The snapshot length defaults to
// 4096 bytes, enough for a connection's first client segments (the names
// in a ClientHello or a request, package peek) and for DNS responses; the
// headers alone would fit 256. Sizes are taken from IP length fields,
// never from the captured bytes. The
// kernel's drop counters are in [Source.Stats]. Capturing needs root or
// the CAP_NET_RAW and CAP_NET_ADMIN capabilities; without them the error
// says how to get them. [Interfaces] lists what can be captured on.
//
// # Replay
//
// [OpenFile] reads pcap (micro- or nanosecond, either byte order) and
// pcapng files with libpcap, and gzip-compressed ones with gopacket's pure
// Go readers. libpcap refuses pcapng files whose interfaces differ in link
// type or snapshot length; when it does, the file is read on with
// gopacket's pcapng reader, which gives each packet its interface's link
// type, and the BPF filter is compiled per link type. A file that is not a
// capture, or whose header libpcap or tshark reject, fails in OpenFile; a
// file cut short in the middle of a packet gives every intact packet and
// then an error that says so. Replaying a file runs every timer on capture
// time, so the same file always gives the same result.
//
// # Decoding
//
// A [Decoder] walks the headers with gopacket's DecodingLayerParser over
// preallocated layers: Ethernet with up to two 802.1Q/802.1ad tags (kept in
// the packet's Tuple.VLAN, outer first), Linux SLL and SLL2, BSD NULL and
// LOOP, raw IPv4/IPv6, PPP and PPPoE, MPLS, IPv4 with options, IPv6 with
// extension headers and IPsec AH, and TCP inside IP-in-IP, GRE (also
// PPTP's GRE with PPP, and ERSPAN), VXLAN (UDP 4789) and GTP-U (UDP 2152),
// which is tracked by its innermost IP/TCP header as tshark and Zeek do. It reads the TCP header itself: the 20 fixed bytes must have
// been captured, options need not be; the window scale option of a SYN is
// parsed. Lengths follow tshark: the IP payload length comes from the IP
// header, limited by the lengths of the headers around it and by the
// frame's original length; an IPv4 total length of 0 (BIG TCP) means the
// frame's length tells, an IPv6 Jumbo Payload option gives its own.
// Decoding a non-fragmented TCP frame allocates nothing, and no input
// makes Decode panic.
//
// IP fragments that may carry TCP are held in a table bounded to 1024
// datagrams, each keeping only its first 256 bytes, which ranges arrived
// and its fragments' frame lengths; a datagram not complete within 30
// seconds of capture time, or pushed out of a full table, is dropped and
// its fragments counted in [Counters].FragmentsUnmatched. A complete
// datagram gives one packet, with the timestamp of the fragment that
// completed it and, as FrameLen, the frame lengths of all its fragments
// (tshark counts the last fragment's only).
package capture
