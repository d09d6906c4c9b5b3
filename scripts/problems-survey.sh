#!/bin/sh
# problems-survey.sh: run `flowtrack --problems` over every capture of a
# directory and list each problem it names, one line each:
#   CAPTURE <TAB> CLIENT <TAB> KIND/SIDE <TAB> DETAIL
# (a service's problem: CAPTURE <TAB> service SERVER <TAB> KIND <TAB> count),
# then the number of problems per capture on stderr. Every line is one to
# explain from the packets (docs/problems.md, "False positives").
#
#   scripts/problems-survey.sh [DIR] [FLOWTRACK FLAGS...]   (default DIR: pcaps)
set -eu
dir=${1:-pcaps}
[ $# -gt 0 ] && shift
command -v jq >/dev/null || { echo "problems-survey.sh: jq is needed (apt-get install jq)" >&2; exit 1; }
dir=$(cd "$dir" && pwd)
bin=$(mktemp -d)/flowtrack
trap 'rm -rf "$(dirname "$bin")"' EXIT
(cd "$(dirname "$0")/.." && go build -o "$bin" .)
total=0
for f in "$dir"/*.pcap "$dir"/*.pcapng; do
	[ -e "$f" ] || continue
	name=$(basename "$f")
	# A capture flowtrack cannot read (a bad header, a link type it names)
	# has no problems to list; its error goes to stderr as ever.
	out=$("$bin" -r "$f" --problems -o json "$@" 2>/dev/null || true)
	lines=$(printf '%s\n' "$out" | jq -r --arg f "$name" '
		if has("problems") and (.problems | type) == "array" then
			.problems[] as $p | [$f, (.client // "?"), ($p.kind + "/" + $p.side), $p.detail] | @tsv
		elif has("service") then
			.service as $s | .problems | to_entries[] | select(.key == "port-pressure") |
			[$f, "service " + $s, .key, (.value | tostring)] | @tsv
		else empty end' 2>/dev/null || true)
	[ -n "$lines" ] || continue
	printf '%s\n' "$lines"
	n=$(printf '%s\n' "$lines" | wc -l)
	total=$((total + n))
	printf '%s\t%d\n' "$name" "$n" >&2
done
printf 'total\t%d\n' "$total" >&2
