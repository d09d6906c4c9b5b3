#!/usr/bin/env bash
# impair.sh: make the derived captures of pcaps/impaired from recordings
# (pcaps/kernel and pcaps/impaired) as pcaps/impaired/DERIVED.tsv lists
# them: the recording impaired (netns-record impair), its ss truth (the
# same kernels, so the same states; only the packet count of the comment
# changes), and tshark's oracle (scripts/oracle.sh) for the counts.
#
#   tools/netns-record/impair.sh [NAME...]
#
# Needs Go and tshark; no root.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DIR=$ROOT/pcaps/impaired
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$ROOT" && go build -o "$WORK/netns-record" ./tools/netns-record)

ONLY=("$@")
made=0
while IFS=$'\t' read -r name source ops pattern desc; do
	case $name in '#'* | '') continue ;; esac
	if [ ${#ONLY[@]} -gt 0 ] && [[ ! " ${ONLY[*]} " =~ " $name " ]]; then
		continue
	fi
	src=$ROOT/pcaps/$source
	port=$(awk -F'\t' -v n="${source##*/}" '$1 == n { print $2 }' "$(dirname "$src")/SCENARIOS.tsv")
	[ -n "$port" ] || { echo "impair.sh: $source is not in $(dirname "$src")/SCENARIOS.tsv" >&2; exit 1; }
	# shellcheck disable=SC2086 # ops are separate words
	"$WORK/netns-record" impair -port "$port" -in "$src.pcap" -out "$DIR/$name.pcap" $ops
	n=$(tcpdump -nr "$DIR/$name.pcap" 2>/dev/null | wc -l)
	sed "s|^# ss snapshot taken after packet [0-9]* of .*|# ss snapshot taken after packet $n of $name.pcap (made from $source.pcap: $ops)|" "$src.ss" >"$DIR/$name.ss"
	"$ROOT/scripts/oracle.sh" "$DIR/$name.pcap"
	made=$((made + 1))
done <"$DIR/DERIVED.tsv"
echo "impair.sh: $made captures made in pcaps/impaired"
