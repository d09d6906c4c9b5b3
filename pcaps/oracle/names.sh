#!/usr/bin/env bash
# Makes the name oracles of the bundled captures with tshark (see
# pcaps/README.md, "Name oracles"). Run from pcaps/: oracle/names.sh
#
# NAME.hello.tsv: one line per TLS ClientHello and per HTTP request: its
#   tcp.stream, capture time, innermost addresses and ports, the SNI, the
#   HTTP Host, and the offered ALPN protocols (comma-separated).
# NAME.dns.tsv: one line per successful DNS response: capture time, the
#   UDP or TCP source port,
#   question, the number of answers, then the names and types of every
#   resource record in order (answers first), and every A, AAAA and CNAME
#   value in order. tshark reads DNS on UDP and TCP port 53.
# Captures where tshark finds none of these get no file.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in *.pcap *.pcapng; do
	hello=$(tshark -r "$f" -Y 'tls.handshake.type == 1 || http.request' -T fields \
		-E occurrence=a -E aggregator='|' -E separator=/t \
		-e tcp.stream -e frame.time_epoch -e ip.src -e ipv6.src -e tcp.srcport \
		-e ip.dst -e ipv6.dst -e tcp.dstport \
		-e tls.handshake.extensions_server_name -e http.host -e tls.handshake.extensions_alpn_str 2>/dev/null || true)
	dns=$(tshark -r "$f" -Y 'dns.flags.response == 1 && dns.flags.rcode == 0' -T fields \
		-E occurrence=a -E aggregator='|' -E separator=/t \
		-e frame.time_epoch -e udp.srcport -e tcp.srcport -e dns.qry.name -e dns.count.answers \
		-e dns.resp.name -e dns.resp.type -e dns.a -e dns.aaaa -e dns.cname 2>/dev/null || true)
	[ -n "$hello" ] && printf '%s\n' "$hello" >"oracle/$f.hello.tsv"
	[ -n "$dns" ] && printf '%s\n' "$dns" >"oracle/$f.dns.tsv"
done
