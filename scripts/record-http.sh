#!/usr/bin/env bash
# Records real HTTP traffic from the kernel's own TCP, for a real-traffic
# yardstick beside gencap's synthetic captures (docs/performance.md): two
# network namespaces made here and removed at the end, joined by a veth
# pair with its offloads off (so the capture holds wire-sized segments, as
# a tap would), nginx in one serving files of 1.2 KB, 30 KB and 300 KB,
# and 8 curl loops in the other, each fetching 1 to 40 of them over one
# keep-alive connection. tcpdump -s 96 records the server's side until it
# has PACKETS packets or 120 s have passed; the curl loops stop with it.
#
# usage: sudo scripts/record-http.sh OUT.pcap [PACKETS]   (default 1700000)
# Root only; needs nginx, curl, tcpdump, ethtool. Traffic stays between the
# two namespaces (10.77.0.0/24 on the veth pair).
set -euo pipefail
out=${1:?usage: sudo scripts/record-http.sh OUT.pcap [PACKETS]}
packets=${2:-1700000}
for c in nginx curl tcpdump ethtool ip; do
	command -v "$c" >/dev/null || { echo "record-http: $c is needed (scripts/setup.sh installs it)" >&2; exit 1; }
done
tag=fthttp$$
srv=$tag-s cli=$tag-c
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
	ip netns del "$srv" 2>/dev/null || true
	ip netns del "$cli" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www"
head -c 1200 /dev/urandom >"$work/www/s.bin"
head -c 30000 /dev/urandom >"$work/www/m.bin"
head -c 300000 /dev/urandom >"$work/www/l.bin"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100;
  server { listen 10.77.0.1:80; root $work/www; }
}
EOF

ip netns add "$srv"
ip netns add "$cli"
ip link add "$tag-0" type veth peer name "$tag-1"
ip link set "$tag-0" netns "$srv"
ip link set "$tag-1" netns "$cli"
ip -n "$srv" addr add 10.77.0.1/24 dev "$tag-0"
ip -n "$cli" addr add 10.77.0.2/24 dev "$tag-1"
for ns in "$srv" "$cli"; do ip -n "$ns" link set lo up; done
ip -n "$srv" link set "$tag-0" up
ip -n "$cli" link set "$tag-1" up
ip netns exec "$srv" ethtool -K "$tag-0" tso off gso off gro off >/dev/null
ip netns exec "$cli" ethtool -K "$tag-1" tso off gso off gro off >/dev/null
ip netns exec "$srv" nginx -c "$work/nginx.conf"

ip netns exec "$srv" timeout 120 tcpdump -Z root -i "$tag-0" -s 96 -c "$packets" -w "$work/out.pcap" tcp 2>"$work/tcpdump.err" &
td=$!
sleep 1

urls() {
	local i
	for ((i = 0; i < $1; i++)); do
		case $((RANDOM % 10)) in
		0) echo http://10.77.0.1/l.bin ;;
		1 | 2 | 3) echo http://10.77.0.1/m.bin ;;
		*) echo http://10.77.0.1/s.bin ;;
		esac
	done
}
for _ in 1 2 3 4 5 6 7 8; do
	(
		end=$((SECONDS + 125))
		# shellcheck disable=SC2046 # one URL per word
		while [ $SECONDS -lt $end ] && kill -0 "$td" 2>/dev/null; do
			ip netns exec "$cli" curl -s $(urls $((1 + RANDOM % 40))) >/dev/null || true
		done
	) &
	pids+=($!)
done
wait "$td" || true
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
cat "$work/tcpdump.err" >&2
mv "$work/out.pcap" "$out"
echo "record-http: wrote $out" >&2
