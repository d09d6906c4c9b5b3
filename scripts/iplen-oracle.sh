#!/usr/bin/env bash
# Writes pcaps/oracle/NAME.iplen.tsv for each capture named (default: every
# capture in pcaps/): per tshark tcp.stream and direction, the TCP packets
# and the octets of the IP packets that carry them, IP header included (what
# IPFIX's octetDeltaCount counts, RFC 7012). The IP packet is the innermost
# one (inside tunnels), as frame.protocols lists them; its length is tshark's
#   ip.len                  for IPv4,
#   ipv6.plen + 40          for IPv6 (ipv6.opt.jumbo + 40 for a jumbogram),
# and for a datagram tshark reassembled from fragments (counted once, in the
# frame that completed it):
#   ip.hdr_len + ip.reassembled.length                    for IPv4,
#   40 + unfragmentable headers + ipv6.reassembled.length for IPv6,
# the unfragmentable headers being what the last fragment's payload length
# leaves after its Fragment header and its share of the data.
# An IP length that claims more than the link layer carried counts what was
# carried, as tshark's tcp.len does: where the TCP header follows the IP
# header, at most the IP header, tcp.hdr_len and tcp.len.
# Frames where TCP is quoted in an ICMP error are not TCP packets, nor are
# those tshark gives no stream (a header it cannot make sense of). tshark
# fails on the files it rejects (their oracle is empty) and on those cut
# short (after printing the intact packets).
# Endpoint a is the sender of the stream's first TCP packet, as in
# NAME.streams.tsv. Needs tshark (the oracles were made with 4.0.17).
set -euo pipefail
cd "$(dirname "$0")/../pcaps"
if [ $# -eq 0 ]; then
	set -- *.pcap *.pcapng
fi
for name in "$@"; do
	out="oracle/$name.iplen.tsv"
	{
		printf 'stream\ta_addr\ta_port\tb_addr\tb_port\tpkts_a2b\tpkts_b2a\tipbytes_a2b\tipbytes_b2a\n'
		{ tshark -r "$name" -Y tcp -T fields -E occurrence=l \
			-e tcp.stream -e frame.protocols -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst \
			-e tcp.srcport -e tcp.dstport -e ip.hdr_len -e ip.len -e ip.reassembled.length \
			-e ipv6.plen -e ipv6.reassembled.length -e ipv6.fraghdr.offset -e ipv6.opt.jumbo \
			-e tcp.hdr_len -e tcp.len 2>/dev/null || true; } |
			awk -F'\t' -v OFS='\t' '
			{
				n = split($2, p, ":"); inner = ""; icmp = 0; adjacent = 0
				for (i = 1; i <= n; i++) {
					if (p[i] == "ip" || p[i] == "ipv6") { inner = p[i]; adjacent = (p[i + 1] == "tcp") }
					if (p[i] ~ /^icmp/) icmp = 1
				}
				if (icmp || inner == "" || $1 == "") next
				if (inner == "ip") {
					src = $3; dst = $4; hdr = $9
					len = ($11 != "") ? $9 + $11 : $10
				} else {
					src = $5; dst = $6; hdr = 40
					if ($13 != "") len = 40 + ($12 - 8 - ($13 - 8 * $14)) + $13
					else if ($12 == 0 && $15 != "") len = $15 + 40
					else len = $12 + 40
				}
				if (adjacent && $11 == "" && $13 == "" && len > hdr + $16 + $17) len = hdr + $16 + $17
				s = $1; from = src SUBSEP $7
				if (!(s in a)) { a[s] = from; order[++ns] = s; aa[s] = src; ap[s] = $7; ba[s] = dst; bp[s] = $8 }
				d = (from == a[s]) ? 1 : 2
				pk[s, d]++; by[s, d] += len
			}
			END {
				for (i = 1; i <= ns; i++) {
					s = order[i]
					print s, aa[s], ap[s], ba[s], bp[s], pk[s, 1] + 0, pk[s, 2] + 0, by[s, 1] + 0, by[s, 2] + 0
				}
			}'
	} >"$out"
done
