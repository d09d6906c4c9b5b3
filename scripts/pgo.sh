#!/usr/bin/env bash
# pgo.sh CAPTURE... : rebuilds default.pgo, the CPU profile that the Go
# compiler optimises flowtrack with (profile-guided optimisation: go build
# reads default.pgo from the main package's directory by itself).
#
# Each capture is replayed with --cpuprofile: -o none and -o json at one
# core, -o none at two. The profiles are merged, their samples summed, so
# a capture counts by its length: name a short one several times to give
# it more weight. docs/performance.md ("Profile-guided optimisation") says
# which captures made the committed profile.
set -euo pipefail
if [ $# -eq 0 ]; then
	echo "usage: scripts/pgo.sh CAPTURE... (pcap or pcapng files to profile replays of)" >&2
	exit 2
fi
for f in "$@"; do
	[ -r "$f" ] || { echo "pgo.sh: cannot read capture $f" >&2; exit 2; }
done
repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$repo/scripts/build.sh" "$tmp/flowtrack"
n=0
for f in "$@"; do
	for run in "1 none" "1 json" "2 none"; do
		set -- $run
		n=$((n + 1))
		echo "pgo.sh: GOMAXPROCS=$1 flowtrack -r $f -o $2" >&2
		GOMAXPROCS=$1 "$tmp/flowtrack" -r "$f" -o "$2" --cpuprofile "$tmp/$n.pprof" >/dev/null 2>"$tmp/err" ||
			{ cat "$tmp/err" >&2; exit 1; }
	done
done
(cd "$repo" && go tool pprof -proto "$tmp"/*.pprof >"$tmp/default.pgo")
mv "$tmp/default.pgo" "$repo/default.pgo"
echo "pgo.sh: wrote default.pgo from $n profiles; rebuild flowtrack to use it" >&2
