#!/usr/bin/env bash
# oracle.sh: write tshark's oracle for a capture in pcaps/: oracle/NAME.conv.txt
# (tshark -q -z conv,tcp), oracle/NAME.conv.err when tshark complains, and
# oracle/NAME.streams.tsv (exact counts per tcp.stream; format in
# pcaps/README.md). Run from anywhere:
#
#   scripts/oracle.sh pcaps/NAME.pcap...
set -euo pipefail
for cap in "$@"; do
	dir=$(cd "$(dirname "$cap")" && pwd)
	name=$(basename "$cap")
	mkdir -p "$dir/oracle"
	(
		cd "$dir"
		rc=0
		tshark -r "$name" -q -z conv,tcp >"oracle/$name.conv.txt" 2>"oracle/$name.conv.err.tmp" || rc=$?
		# tshark's warning about running as root is no complaint about the file
		sed -i '/^Running as user/d' "oracle/$name.conv.err.tmp"
		rm -f "oracle/$name.conv.err"
		if [ "$rc" -ne 0 ] || [ -s "oracle/$name.conv.err.tmp" ]; then
			{ echo "tshark exit status $rc"; cat "oracle/$name.conv.err.tmp"; } >"oracle/$name.conv.err"
		fi
		rm -f "oracle/$name.conv.err.tmp"
		tshark -r "$name" -Y tcp -T fields -E occurrence=l -e tcp.stream -e ip.src -e ipv6.src -e tcp.srcport \
			-e ip.dst -e ipv6.dst -e tcp.dstport -e frame.len -e tcp.len -e tcp.flags.syn -e tcp.flags.ack \
			-e tcp.flags.fin -e tcp.flags.reset -e frame.protocols 2>/dev/null | awk -F'\t' -v OFS='\t' '
		function on(v) { return v == "1" || v == "True" }
		$1 != "" {
			# the innermost IP header is the one last in frame.protocols
			n4 = split($14, parts, ":"); v6 = 0
			for (j = n4; j > 0; j--) { if (parts[j] == "ip") break; if (parts[j] == "ipv6") { v6 = 1; break } }
			s = $1; src = (v6 || $2 == "" ? $3 : $2); dst = (v6 || $5 == "" ? $6 : $5)
			if (!(s in a)) { a[s] = src; ap[s] = $4; b[s] = dst; bp[s] = $7; order[n++] = s }
			d = (src == a[s] && $4 == ap[s]) ? 0 : 1
			pk[s, d]++; fb[s, d] += $8; pl[s, d] += $9
			if (on($10) && !on($11)) syn[s, d]++
			if (on($10) && on($11)) sa[s, d]++
			if (on($12)) fin[s, d]++
			if (on($13)) rst[s, d]++
		}
		END {
			print "stream", "a_addr", "a_port", "b_addr", "b_port", "pkts_a2b", "pkts_b2a", "framebytes_a2b", "framebytes_b2a", "payload_a2b", "payload_b2a", "syn_a2b", "syn_b2a", "synack_a2b", "synack_b2a", "fin_a2b", "fin_b2a", "rst_a2b", "rst_b2a"
			for (i = 0; i < n; i++) {
				s = order[i]
				print s, a[s], ap[s], b[s], bp[s], pk[s,0]+0, pk[s,1]+0, fb[s,0]+0, fb[s,1]+0, pl[s,0]+0, pl[s,1]+0, syn[s,0]+0, syn[s,1]+0, sa[s,0]+0, sa[s,1]+0, fin[s,0]+0, fin[s,1]+0, rst[s,0]+0, rst[s,1]+0
			}
		}' >"oracle/$name.streams.tsv" || true # a file tshark rejects is said so in NAME.conv.err
	)
done
