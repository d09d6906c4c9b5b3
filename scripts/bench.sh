#!/usr/bin/env bash
# Side-by-side benchmark (issues 5, 17): flowtrack against two bare loops
# (tools/bench-baseline: a Go map, and open addressing as the fastest
# hand-written tracker would count) and the reference tools that install here
# (softflowd, tcpdump -w /dev/null, tshark -z conv,tcp), on synthetic
# captures written by tools/gencap, in one run, page cache warm.
#
# For every tool and capture it runs the command REPS times (interleaved
# with the other tools) and reports the median wall time, the ratios to
# both bare loops on the same capture, and the peak RSS (GNU time's maximum
# resident set size, the largest over the runs). A tool whose first run
# takes longer than SLOW seconds runs only once; each run is stopped after
# TIMEOUT seconds. A tool that is missing or fails is reported, never fatal.
#
# Usage: scripts/bench.sh [-n REPS] [-quick] [-o FILE] [-dir DIR] [-keep] [-no-install]
#   -n REPS      runs per tool and capture (default 3; 1 with -quick)
#   -quick       small captures (about a minute in all)
#   -o FILE      also write the report (markdown) to FILE
#   -dir DIR     write the captures to DIR and keep them; a capture already
#                there with the same generator flags is reused
#   -keep        keep the temporary directory
#   -no-install  do not apt-get install missing tools
#
# The default captures (written at the start, about 1.6 GB in all):
#   http   1.5 M packets, ~3 k connections (HTTP-like), snaplen 96
#   big    10 M packets, ~0.9 M connections, snaplen 96
#   flood  5 M spoofed SYNs to one server + 1000 established connections
# tshark runs on the http capture only (it is slow); flowtrack runs on the
# flood a second time with --max-conns 100000, for issue 17's bound on its
# peak RSS. GOMAXPROCS, if set, reaches every Go program (flowtrack and the
# loops); the report says it.
set -uo pipefail

reps="" quick=0 out="" dir="" keep=0 install=1
while [ $# -gt 0 ]; do
	case "$1" in
	-n | --n | -reps | --reps) reps="${2:?-n needs a number}"; shift ;;
	-quick | --quick) quick=1 ;;
	-o | --o | -out | --out) out="${2:?-o needs a file}"; shift ;;
	-dir | --dir) dir="${2:?-dir needs a directory}"; shift ;;
	-keep | --keep) keep=1 ;;
	-no-install | --no-install) install=0 ;;
	-h | -help | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench.sh: unknown argument $1 (-h for help)" >&2; exit 2 ;;
	esac
	shift
done
case "$reps" in
"") reps=$((quick ? 1 : 3)) ;;
*[!0-9]* | 0) echo "bench.sh: -n needs a positive number" >&2; exit 2 ;;
esac
if [ "$quick" = 1 ]; then slow=15 timeout=180; else slow=30 timeout=600; fi

# Paths given relative to where the script was started from.
case "$out" in "" | /*) ;; *) out="$PWD/$out" ;; esac
case "$dir" in "" | /*) ;; *) dir="$PWD/$dir" ;; esac
cd "$(dirname "$0")/.." || exit 1
log() { printf '%s\n' "$*" >&2; }

# --- tools ------------------------------------------------------------------
if [ "$install" = 1 ]; then
	missing=()
	for p in tshark softflowd tcpdump time; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		sudo=""
		[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
		if command -v apt-get >/dev/null && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; then
			log "installing: ${missing[*]}"
			export DEBIAN_FRONTEND=noninteractive
			$sudo apt-get update -qq >/dev/null 2>&1
			for p in "${missing[@]}"; do
				$sudo apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 ||
					log "note: could not install $p; it is left out"
			done
		else
			log "note: not installing ${missing[*]} (no apt-get, or not root and no sudo)"
		fi
	fi
fi
PATH="$PATH:/usr/sbin:/sbin"
timecmd=""
[ -x /usr/bin/time ] && timecmd=/usr/bin/time

if [ -n "$dir" ]; then
	mkdir -p "$dir" || exit 1
	work=$(cd "$dir" && pwd)
	keep=1
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/flowtrack-bench.XXXXXX") || exit 1
fi
cleanup() {
	if [ "$keep" = 1 ]; then log "captures kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
bin="$work/bin"
mkdir -p "$bin"

GO=${GO:-go}
command -v "$GO" >/dev/null || PATH="$PATH:/usr/local/go/bin"
log "building gencap, bench-baseline and flowtrack"
"$GO" build -o "$bin/gencap" ./tools/gencap || { log "bench.sh: cannot build tools/gencap"; exit 1; }
"$GO" build -o "$bin/bench-baseline" ./tools/bench-baseline || { log "bench.sh: cannot build tools/bench-baseline"; exit 1; }
have_flowtrack=1
GO="$GO" ./scripts/build.sh "$bin/flowtrack" 2>"$work/flowtrack-build.log" || {
	have_flowtrack=0
	log "note: flowtrack does not build; it is left out:"
	cat "$work/flowtrack-build.log" >&2
}

# --- captures ---------------------------------------------------------------
if [ "$quick" = 1 ]; then
	caps=(http big flood)
	declare -A capargs=(
		[http]="-seed 1 -packets 300000 -conns 600 -concurrent 100 -snaplen 96"
		[big]="-seed 2 -packets 1000000 -conns 100000 -concurrent 20000 -rate 200000 -snaplen 96"
		[flood]="-seed 3 -synflood 500000 -established 100 -rate 200000 -snaplen 96"
	)
else
	caps=(http big flood)
	declare -A capargs=(
		[http]="-seed 1 -packets 1500000 -conns 3000 -concurrent 300 -snaplen 96"
		[big]="-seed 2 -packets 10000000 -conns 1000000 -concurrent 100000 -rate 500000 -snaplen 96"
		[flood]="-seed 3 -synflood 5000000 -established 1000 -rate 500000 -snaplen 96"
	)
fi
declare -A capinfo
for c in "${caps[@]}"; do
	f="$work/$c.pcap"
	if [ -s "$f" ] && [ -s "$f.info" ] && [ "$(head -1 "$f.info")" = "${capargs[$c]}" ]; then
		log "reusing $f"
	else
		log "writing $c.pcap: gencap ${capargs[$c]}"
		# shellcheck disable=SC2086
		if ! "$bin/gencap" -o "$f" ${capargs[$c]} 2>"$work/gen.err"; then
			cat "$work/gen.err" >&2
			log "bench.sh: gencap failed"
			exit 1
		fi
		{ echo "${capargs[$c]}"; cat "$work/gen.err"; } >"$f.info"
	fi
	capinfo[$c]="$(tail -1 "$f.info" | sed 's/^gencap: //; s/, written in .*//'), $(du -m "$f" | cut -f1) MB"
done

# --- the runs ---------------------------------------------------------------
# The flood also runs bounded: issue 17's target is a peak RSS under 100 MiB
# with --max-conns 100000, every run (the report gives the largest).
bound=100000
tools=(baseline openaddr flowtrack bounded softflowd tcpdump tshark)
# shellcheck disable=SC2016 # backquotes for markdown
declare -A label=(
	[baseline]="Go map loop (tools/bench-baseline)"
	[openaddr]="open-addressing loop (tools/bench-baseline -table open)"
	[flowtrack]='`flowtrack -r FILE -o json`'
	[bounded]="\`flowtrack -r FILE -o json --max-conns $bound\`"
	[softflowd]='`softflowd -r FILE -v 9 -n 127.0.0.1:9`'
	[tcpdump]='`tcpdump -r FILE -w /dev/null`'
	[tshark]='`tshark -q -z conv,tcp -r FILE`'
)
available() {
	case "$1" in
	baseline | openaddr) return 0 ;;
	flowtrack | bounded) [ "$have_flowtrack" = 1 ] ;;
	*) command -v "$1" >/dev/null ;;
	esac
}
# cmdline TOOL FILE: the command to measure.
cmdline() {
	case "$1" in
	baseline) echo "$bin/bench-baseline $2" ;;
	openaddr) echo "$bin/bench-baseline -table open $2" ;;
	flowtrack) echo "$bin/flowtrack -r $2 -o json" ;;
	# The flood's bound (issue 17): peak RSS under 100 MiB.
	bounded) echo "$bin/flowtrack -r $2 -o json --max-conns $bound" ;;
	# -m: track every flow, as flowtrack does; NetFlow v9 to a port
	# nobody listens on (it exports at the end of the file).
	softflowd) echo "softflowd -r $2 -m 20000000 -v 9 -n 127.0.0.1:9" ;;
	tcpdump) echo "tcpdump -r $2 -w /dev/null" ;;
	tshark) echo "tshark -q -z conv,tcp -r $2" ;;
	esac
}
runs_on() {
	case "$1" in
	tshark) [ "$2" = http ] ;;
	bounded) [ "$2" = flood ] ;;
	*) return 0 ;;
	esac
}

declare -A walls rsses status
# measure TOOL CAP: one run; appends its wall time and RSS.
measure() {
	local t=$1 c=$2 rc t0 t1 wall rss=""
	local -a cmd
	read -r -a cmd <<<"$(cmdline "$t" "$work/$c.pcap")"
	t0=$EPOCHREALTIME
	if [ -n "$timecmd" ]; then
		"$timecmd" -f '%M' -o "$work/time.out" timeout -k 5 "$timeout" "${cmd[@]}" >/dev/null 2>"$work/$t.$c.err"
		rc=$?
	else
		timeout -k 5 "$timeout" "${cmd[@]}" >/dev/null 2>"$work/$t.$c.err"
		rc=$?
	fi
	t1=$EPOCHREALTIME
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	[ -n "$timecmd" ] && rss=$(grep -E '^[0-9]+$' "$work/time.out" | tail -1)
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		status[$t.$c]="timeout (${timeout} s)"
		return
	elif [ "$rc" != 0 ]; then
		status[$t.$c]="failed (exit $rc)"
		log "$t on $c.pcap failed (exit $rc): $(tail -3 "$work/$t.$c.err")"
		return
	fi
	walls[$t.$c]+="$wall "
	rsses[$t.$c]+="${rss:-0} "
	log "  $t on $c.pcap: ${wall} s, ${rss:-?} KB"
}

log "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for c in "${caps[@]}"; do
	cat "$work/$c.pcap" >/dev/null # warm the page cache
	for ((r = 1; r <= reps; r++)); do
		for t in "${tools[@]}"; do
			runs_on "$t" "$c" || continue
			available "$t" || { status[$t.$c]="not installed"; continue; }
			[ -n "${status[$t.$c]:-}" ] && continue
			if [ "$r" -gt 1 ]; then
				# A slow tool runs once.
				first=${walls[$t.$c]%% *}
				awk -v w="$first" -v s="$slow" 'BEGIN { exit !(w > s) }' && continue
			fi
			measure "$t" "$c"
		done
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the report -------------------------------------------------------------
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { tr ' ' '\n' | grep . | sort -g | tail -1; }

report="$work/report.md"
{
	echo "| tool | capture | runs | median wall | ratio to Go map loop | ratio to open-addressing loop | peak RSS |"
	echo "|---|---|---:|---:|---:|---:|---:|"
	for c in "${caps[@]}"; do
		base=$(printf '%s' "${walls[baseline.$c]:-}" | median)
		open=$(printf '%s' "${walls[openaddr.$c]:-}" | median)
		for t in "${tools[@]}"; do
			runs_on "$t" "$c" || continue
			w="${walls[$t.$c]:-}"
			if [ -z "$w" ]; then
				echo "| ${label[$t]} | $c | 0 | ${status[$t.$c]:-not run} | | | |"
				continue
			fi
			n=$(printf '%s' "$w" | wc -w)
			m=$(printf '%s' "$w" | median)
			ratio="" ratio2=""
			[ -n "$base" ] && ratio=$(awk -v m="$m" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f×", m / b }')
			[ -n "$open" ] && ratio2=$(awk -v m="$m" -v b="$open" 'BEGIN { if (b > 0) printf "%.2f×", m / b }')
			rss=$(printf '%s' "${rsses[$t.$c]}" | maxof)
			rss=$(awk -v k="$rss" 'BEGIN { if (k > 0) printf "%.0f MB", k / 1024; else print "?" }')
			printf '| %s | %s | %d | %.2f s | %s | %s | %s |\n' "${label[$t]}" "$c" "$n" "$m" "$ratio" "$ratio2" "$rss"
		done
	done
	echo
	echo "Captures (tools/gencap, classic pcap, Ethernet, microsecond timestamps):"
	echo
	for c in "${caps[@]}"; do
		echo "- $c: \`gencap ${capargs[$c]}\`: ${capinfo[$c]}"
	done
	echo
	cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
	echo "Machine: $(nproc) cores ($cpu), $(free -g 2>/dev/null | awk '/^Mem:/ { print $2 " GiB" }'), Linux $(uname -r);" \
		"load average $load_start at the start, $load_end at the end; $(date -u +%Y-%m-%d)."
	echo "Versions: $("$GO" version | cut -d' ' -f3)$(command -v softflowd >/dev/null && softflowd -h 2>&1 | sed -n 's/.*softflowd version \([0-9.]*[0-9]\).*/, softflowd \1/p' | head -1)$(command -v tcpdump >/dev/null && tcpdump --version 2>&1 | sed -n 's/^tcpdump version /, tcpdump /p')$(command -v tshark >/dev/null && tshark --version 2>/dev/null | sed -n '1s/^TShark (Wireshark) \([^ ]*\).*/, tshark \1/p')."
	echo "GOMAXPROCS: ${GOMAXPROCS:-not set (one per core)}."
	echo "Wall times are medians of $reps run(s), interleaved across tools (a tool whose first run took over $slow s ran once); peak RSS is GNU time's maximum resident set size."
	rev=$(git rev-parse --short HEAD 2>/dev/null)
	if [ -n "$rev" ] && [ -n "$(git status --porcelain -- ':!tools' ':!scripts' 2>/dev/null)" ]; then
		rev="$rev with uncommitted changes"
	fi
	echo "flowtrack: built from ${rev:-an unknown revision}."
	for c in "${caps[@]}"; do
		[ -s "$work/flowtrack.$c.err" ] && echo "flowtrack on $c: $(grep ' packets (' "$work/flowtrack.$c.err" | tail -1 | sed 's/^.*\.pcap: //')."
		[ -s "$work/bounded.$c.err" ] && echo "flowtrack --max-conns $bound on $c: $(grep ' packets (' "$work/bounded.$c.err" | tail -1 | sed 's/^.*\.pcap: //') (target: peak RSS under 100 MiB in every run)."
	done
} >"$report"

echo
cat "$report"
if [ -n "$out" ]; then
	cp "$report" "$out" && log "report written to $out"
fi
