#!/usr/bin/env bash
# evidence-cost.sh: the per-packet cost of what a build added to the
# replay, measured as docs/problems.md reports it: flowtrack -o none on a
# synthetic capture (tools/gencap), a baseline commit's build and this
# tree's run back to back (their order alternating), N pairs at
# GOMAXPROCS=1 and 2; it prints the median wall and CPU (user+sys) time of
# each and the median of the pairs' ratios, which a shared, noisy machine
# blurs least.
#
# Usage: scripts/evidence-cost.sh [-base REV] [-n PAIRS] [-big]
#   -base REV  the baseline (default 6edd561: main before the evidence)
#   -n PAIRS   pairs per GOMAXPROCS (default 9)
#   -big       10 M packets, 0.9 M connections (default 1 M, 95 k)
set -euo pipefail
base=6edd561 n=9 gen="-seed 2 -packets 1000000 -conns 100000 -concurrent 20000 -rate 200000 -snaplen 96"
while [ $# -gt 0 ]; do
	case "$1" in
	-base) base=${2:?}; shift ;;
	-n) n=${2:?}; shift ;;
	-big) gen="-seed 2 -packets 10000000 -conns 1000000 -concurrent 100000 -rate 500000 -snaplen 96" ;;
	*) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
	shift
done
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/base"
git archive "$base" | tar -x -C "$work/base"
(cd "$work/base" && go build -o "$work/ft-base" .)
go build -o "$work/ft-head" .
go run ./tools/gencap -q -o "$work/cap.pcap" $gen
one() { # binary procs -> "wall cpu"
	/usr/bin/time -f "%e %U %S" -o "$work/t" env GOMAXPROCS="$2" "$work/$1" -r "$work/cap.pcap" -o none >/dev/null 2>&1
	awk '{print $1, $2 + $3}' "$work/t"
}
for i in $(seq "$n"); do
	for p in 1 2; do
		if [ $((i % 2)) = 0 ]; then a=$(one ft-base $p); b=$(one ft-head $p); else b=$(one ft-head $p); a=$(one ft-base $p); fi
		echo "$p $a $b"
	done
done >"$work/pairs"
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for p in 1 2; do
	f() { awk -v p="$p" '$1 == p' "$work/pairs"; }
	printf 'GOMAXPROCS=%s: %s wall %ss cpu %ss; HEAD wall %ss cpu %ss; ratio of pairs: wall %s cpu %s\n' "$p" "$base" \
		"$(f | awk '{print $2}' | median)" "$(f | awk '{print $3}' | median)" \
		"$(f | awk '{print $4}' | median)" "$(f | awk '{print $5}' | median)" \
		"$(f | awk '{print $4 / $2}' | median)" "$(f | awk '{print $5 / $3}' | median)"
done
