#!/usr/bin/env bash
# Measures what naming processes costs flowtrack in a connect storm, and
# how many of the storm's connections a capture records: in a network
# namespace of its own, a capture of loopback runs while tools/connstorm
# makes RATE short connections a second for 5 s (connect, send a byte,
# close), then is stopped once the storm has ended (a machine that cannot
# keep RATE takes longer than 5 s: the rate it reached is printed).
#
# Modes, alternated within each of RUNS rounds:
#   ebpf      flowtrack -i lo -o json
#   no-ebpf   the same with --no-ebpf (the socket table names processes)
#   tcpdump   tcpdump -w, the independent count: tshark counts its SYNs
#
# Columns: the storm's connections and the rate it reached; the records
# flowtrack wrote (tcpdump: the SYNs tshark counts in its file), how many
# name connstorm's PID, the packets the kernel dropped (as the capture
# reports them; on loopback the kernel counts each packet twice, going
# out and coming in), eBPF events per connection and events lost, and
# the capture's CPU time (user+sys, from /usr/bin/time), in all and per
# connection.
#
# usage: sudo scripts/connstorm.sh [RUNS] [RATE] [MODES]
#   FT_GOMAXPROCS=1 to give flowtrack one core (connstorm keeps both)
#   FT_BIN=path to measure another flowtrack binary (another commit)
#   FT_ARGS=flags to add to flowtrack's (e.g. "--capture pcap")
# Root only; bounded in time (each capture is stopped 1 s after its storm,
# or killed 60 s after it started).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
rate=${2:-20000}
modes=${3:-ebpf no-ebpf tcpdump}
for c in tcpdump tshark; do
	if [[ " $modes " == *" tcpdump "* ]] && ! command -v "$c" >/dev/null; then
		echo "needs $c (apt-get install $c)" >&2
		exit 1
	fi
done
tmp=$(mktemp -d)
ns=connstorm-$$
cap=""
cleanup() {
	[ -n "$cap" ] && kill "$cap" 2>/dev/null || true
	ip netns delete "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
if [ -n "${FT_BIN:-}" ]; then cp "$FT_BIN" "$tmp/flowtrack"; else go build -o "$tmp/flowtrack" .; fi
go build -o "$tmp/connstorm" ./tools/connstorm
ip netns add "$ns"
ip -n "$ns" link set lo up

# run_capture MODE: starts the capture in the namespace, runs the storm,
# stops the capture, and leaves its output in $tmp.
run_capture() {
	local mode=$1 flag=""
	case $mode in
	tcpdump)
		ip netns exec "$ns" /usr/bin/time -f '%U %S' -o "$tmp/time" \
			tcpdump -i lo -s 256 -B 65536 -w "$tmp/out.pcap" 2>"$tmp/err" &
		;;
	*)
		[ "$mode" = no-ebpf ] && flag="--no-ebpf"
		ip netns exec "$ns" env ${FT_GOMAXPROCS:+GOMAXPROCS=$FT_GOMAXPROCS} /usr/bin/time -f '%U %S' -o "$tmp/time" \
			"$tmp/flowtrack" -i lo -o json -B 64 $flag ${FT_ARGS:-} --duration 60s >"$tmp/out.json" 2>"$tmp/err" &
		;;
	esac
	cap=$!
	sleep 2 # the capture loads, reads the socket table once, opens the capture
	ip netns exec "$ns" "$tmp/connstorm" -rate "$rate" -for 5s >"$tmp/storm"
	sleep 1
	# ip netns exec and env exec; /usr/bin/time ignores SIGINT: stop
	# the capture itself, its child.
	kill -INT "$(pgrep -P "$cap")" 2>/dev/null || true
	wait "$cap" || true
	cap=""
}

printf '%-8s %-3s %7s %6s %8s %8s %8s %7s %6s %7s %8s\n' \
	mode run made rate/s recorded named dropped ev/conn lost cpu_s cpu_us/c
for run in $(seq "$runs"); do
	for mode in $modes; do
		run_capture "$mode"
		read -r _ pid _ made _ _ _ _ _ secs <"$tmp/storm"
		cpu=$(awk '{printf "%.2f", $1 + $2}' "$tmp/time")
		per=$(awk -v c="$cpu" -v m="$made" 'BEGIN {printf "%.1f", c * 1e6 / m}')
		ratenow=$(awk -v m="$made" -v s="$secs" 'BEGIN {printf "%.0f", m / s}')
		if [ "$mode" = tcpdump ]; then
			recorded=$(tshark -r "$tmp/out.pcap" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' 2>/dev/null | wc -l)
			named=-
			dropped=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' "$tmp/err")
			ev=-
			lost=-
		else
			recorded=$(grep -c '"client"' "$tmp/out.json" || true)
			named=$(grep -c "\"pid\":$pid," "$tmp/out.json" || true)
			dropped=$(sed -n 's/.* \([0-9]*\) dropped by the kernel.*/\1/p' "$tmp/err")
			events=$(sed -n 's/^local sockets: \([0-9]*\) eBPF events.*/\1/p' "$tmp/err")
			ev=$([ -n "$events" ] && awk -v e="$events" -v m="$made" 'BEGIN {printf "%.2f", e / m}' || echo -)
			lost=$(sed -n 's/.* \([0-9]*\) lost (the ring buffer was full)/\1/p' "$tmp/err")
		fi
		printf '%-8s %-3s %7s %6s %8s %8s %8s %7s %6s %7s %8s\n' "$mode" "$run" "$made" "$ratenow" \
			"$recorded" "$named" "${dropped:-0}" "$ev" "${lost:--}" "$cpu" "$per"
	done
done
