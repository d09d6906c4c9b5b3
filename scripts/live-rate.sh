#!/usr/bin/env bash
# Live capture rate (issue 5): replay a capture at increasing packet rates
# with tcpreplay from one network namespace into a veth whose other end a
# live flowtrack captures in a second namespace, and report, per rate, the
# rate achieved (packets and connections a second), the kernel drops
# flowtrack saw, and the CPU it used. Needs root, tcpreplay
# and a capture (make one with tools/gencap); everything it makes (two
# namespaces, one veth pair, private addresses only) is removed at the end.
#
# Usage: sudo scripts/live-rate.sh FILE.pcap [PACKETS] [RATE...]
#   PACKETS  packets sent per rate (default 500000)
#   RATE     packets per second, or "top" (default: 100000 200000 400000 top)
# Environment: FLOWTRACK_ARGS adds flowtrack flags (e.g. "-s 4096");
# NS_PREFIX names the namespaces (default ftrate); FT_BIN runs that
# flowtrack binary instead of building one; FT_GOMAXPROCS sets its
# GOMAXPROCS.
set -euo pipefail
file=${1:?usage: live-rate.sh FILE.pcap [PACKETS] [RATE...]}
packets=${2:-500000}
shift $(( $# >= 2 ? 2 : 1 ))
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(100000 200000 400000 top)
cd "$(dirname "$0")/.."
ns_a="${NS_PREFIX:-ftrate}-$$-a" ns_b="${NS_PREFIX:-ftrate}-$$-b"
tmp=$(mktemp -d)
cleanup() {
	[ -n "${ft:-}" ] && kill "$ft" 2>/dev/null || true
	ip netns del "$ns_a" 2>/dev/null || true
	ip netns del "$ns_b" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
if [ -n "${FT_BIN:-}" ]; then cp "$FT_BIN" "$tmp/flowtrack"; else go build -o "$tmp/flowtrack" .; fi
ip netns add "$ns_a"
ip netns add "$ns_b"
ip -n "$ns_a" link add va type veth peer name vb netns "$ns_b"
ip -n "$ns_a" link set va up
ip -n "$ns_b" link set vb up
echo "| rate asked | packets sent | rate achieved (pps) | connections/s | flowtrack received | kernel drops | drops % | flowtrack CPU s (user+sys) | CPU µs/packet |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for rate in "${rates[@]}"; do
	# shellcheck disable=SC2086 # FLOWTRACK_ARGS is a list of flags
	ip netns exec "$ns_b" env ${FT_GOMAXPROCS:+GOMAXPROCS=$FT_GOMAXPROCS} /usr/bin/time -f 'cpu %U %S' -o "$tmp/ft.time" "$tmp/flowtrack" -i vb -o none ${FLOWTRACK_ARGS:-} 2>"$tmp/ft.err" &
	ft=$!
	sleep 1
	if [ "$rate" = top ]; then opt=--topspeed; else opt=--pps=$rate; fi
	ip netns exec "$ns_a" timeout 120 tcpreplay -q -i va "$opt" -L "$packets" "$file" >"$tmp/tr.out" 2>&1 || true
	sleep 1
	child=$(pgrep -P "$ft" -x flowtrack || true)
	kill -INT "${child:-$ft}"
	wait "$ft" || true
	ft=""
	sent=$(grep -oE 'Actual: [0-9]+ packets' "$tmp/tr.out" | grep -oE '[0-9]+' | head -1)
	achieved=$(grep -oE 'Rated: [0-9.]+ Bps, [0-9.]+ Mbps, [0-9.]+ pps' "$tmp/tr.out" | grep -oE '[0-9.]+ pps' | head -1)
	got=$(grep -oE '^vb: [0-9]+ packets' "$tmp/ft.err" | grep -oE '[0-9]+' | head -1)
	drops=$(grep -oE '[0-9]+ dropped by the kernel' "$tmp/ft.err" | grep -oE '^[0-9]+' || echo 0)
	cpu=$(awk '/^cpu/ {printf "%.2f", $2 + $3}' "$tmp/ft.time" 2>/dev/null)
	conns=$(grep -oE '^vb: .*, [0-9]+ connections' "$tmp/ft.err" | grep -oE '[0-9]+ connections' | grep -oE '[0-9]+' | head -1)
	cps=$(awk -v c="${conns:-0}" -v s="${sent:-0}" -v r="${achieved% pps}" 'BEGIN { if (s > 0) printf "%.0f", c * r / s }')
	pct=$(awk -v d="${drops:-0}" -v s="${sent:-0}" 'BEGIN { if (s > 0) printf "%.2f", 100 * d / s }')
	per=$(awk -v c="${cpu:-0}" -v g="${got:-0}" 'BEGIN { if (g > 0) printf "%.2f", 1e6 * c / g }')
	echo "| $rate | ${sent:-?} | ${achieved% pps} | ${cps:-?} | ${got:-?} | ${drops:-0} | ${pct:-?} | ${cpu:-?} | ${per:-?} |"
done
