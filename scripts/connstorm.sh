#!/usr/bin/env bash
# Measures what naming processes costs flowtrack in a connect storm: in a
# network namespace of its own, flowtrack captures loopback (-o json) while
# tools/connstorm makes RATE short connections a second for 5 s (connect,
# send a byte, close), with eBPF and with --no-ebpf (the socket table),
# RUNS times each. For each run it prints flowtrack's CPU time (user+sys,
# from /usr/bin/time), the connections made, how many records name
# connstorm's PID, and the eBPF events lost. Root only; bounded in time.
#
# usage: sudo scripts/connstorm.sh [RUNS] [RATE]   (GOMAXPROCS=1 to pin flowtrack to one core)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
rate=${2:-20000}
tmp=$(mktemp -d)
ns=connstorm-$$
cleanup() { ip netns delete "$ns" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/flowtrack" .
go build -o "$tmp/connstorm" ./tools/connstorm
ip netns add "$ns"
ip -n "$ns" link set lo up
printf '%-8s %-4s %8s %8s %8s %8s %6s\n' mode run cpu_s made records named lost
for mode in ebpf no-ebpf; do
	flag=""
	[ "$mode" = no-ebpf ] && flag="--no-ebpf"
	for run in $(seq "$runs"); do
		ip netns exec "$ns" /usr/bin/time -f '%U %S' -o "$tmp/time" \
			"$tmp/flowtrack" -i lo -o json -B 64 $flag --duration 10s >"$tmp/out.json" 2>"$tmp/err" &
		ft=$!
		sleep 2 # flowtrack loads, reads the socket table once, opens the capture
		ip netns exec "$ns" "$tmp/connstorm" -rate "$rate" -for 5s >"$tmp/storm"
		wait "$ft"
		read -r _ pid _ made _ failed _ accepted <"$tmp/storm"
		records=$(grep -c '"client"' "$tmp/out.json" || true)
		named=$(grep -c "\"pid\":$pid," "$tmp/out.json" || true)
		lost=$(sed -n 's/.* \([0-9]*\) lost (the ring buffer was full)/\1/p' "$tmp/err")
		cpu=$(awk '{printf "%.2f", $1 + $2}' "$tmp/time")
		printf '%-8s %-4s %8s %8s %8s %8s %6s\n' "$mode" "$run" "$cpu" "$made" "$records" "$named" "${lost:--}"
		grep -q 'dropped by the kernel' "$tmp/err" && grep 'dropped by the kernel' "$tmp/err" | sed 's/^/    /'
	done
done
