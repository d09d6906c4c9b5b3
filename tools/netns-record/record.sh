#!/usr/bin/env bash
# record.sh: drive real kernel TCP sockets into each RFC 793 state between two
# network namespaces, capture the packets, and write what `ss` reported on
# both hosts as ground truth.
#
#   sudo tools/netns-record/record.sh            # all scenarios
#   sudo tools/netns-record/record.sh NAME...    # only these scenarios
#   sudo tools/netns-record/record.sh --live FLOWTRACK --out DIR [NAME...]
#
# Writes pcaps/kernel/NAME.pcap, NAME.ss (and NAME.mid.ss for the two
# port-reuse scenarios) and pcaps/kernel/SCENARIOS.tsv. See README.md here.
#
# --live: the live end-to-end test of flowtrack. Besides tcpdump, the given
# flowtrack binary captures live in the server namespace during each
# scenario; at the end the wire is frozen (see freeze), ss runs in both
# namespaces, and flowtrack is stopped (SIGINT) right after; its JSON
# records are compared with ss. Everything goes to DIR (never to
# pcaps/kernel), the namespaces are ftlive-PID-cli and ftlive-PID-srv (PID:
# this script's), so live runs never collide with the recorder or with each
# other. Exits 4 when flowtrack disagrees with ss beyond the known
# disagreements (live.go). See README.md here.
#
# Topology: namespace ftrec-cli (veth vcli: 10.99.0.1/24, fd99::1/64) and
# namespace ftrec-srv (veth vsrv: 10.99.0.2/24, fd99::2/64), joined by one
# veth pair created inside the namespaces (nothing is added to the host's
# own namespace). Every capture is taken in ftrec-srv on vsrv. Firewall drops
# are only ever made on the *input* hook of the receiving namespace, so every
# dropped packet has crossed the veth and is in the capture.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

LIVE= # the flowtrack binary in --live mode
IMPAIRED= # 1: the impaired scenarios (--impaired), into pcaps/impaired
while [ $# -gt 0 ]; do
	case $1 in
	--live) LIVE=${2:?--live needs the flowtrack binary}; shift 2 ;;
	--out) OUT=${2:?--out needs a directory}; shift 2 ;;
	--impaired) IMPAIRED=1; shift ;;
	--) shift; break ;;
	-*) echo "usage: record.sh [--live FLOWTRACK --out DIR | --impaired] [NAME...]" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ -z "$LIVE" ] || [ -z "$IMPAIRED" ] || { echo "record.sh: --live and --impaired do not go together" >&2; exit 2; }
if [ -n "$LIVE" ]; then
	[ -n "${OUT:-}" ] || { echo "record.sh: --live needs --out DIR" >&2; exit 2; }
	[ -x "$LIVE" ] || { echo "record.sh: $LIVE is not an executable" >&2; exit 2; }
	mkdir -p "$OUT"
	LIVE=$(cd "$(dirname "$LIVE")" && pwd)/$(basename "$LIVE")
	OUT=$(cd "$OUT" && pwd)
	NS_CLI=ftlive-$$-cli
	NS_SRV=ftlive-$$-srv
elif [ -n "$IMPAIRED" ]; then
	OUT=${OUT:-$ROOT/pcaps/impaired}
	NS_CLI=ftrec-cli
	NS_SRV=ftrec-srv
else
	OUT=${OUT:-$ROOT/pcaps/kernel}
	NS_CLI=ftrec-cli
	NS_SRV=ftrec-srv
fi
IF_CLI=vcli
IF_SRV=vsrv
CLI4=10.99.0.1
SRV4=10.99.0.2
CLI6=fd99::1
SRV6=fd99::2
CAP_NS=$NS_SRV
CAP_IF=$IF_SRV
SNAPLEN=128

for tool in ip ss nft tcpdump ethtool tc flock go; do
	command -v "$tool" >/dev/null || { echo "record.sh: $tool not found (see tools/netns-record/README.md)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "record.sh: run as root" >&2; exit 1; }

# One recording at a time: a second run would tear down the first one's
# namespaces. Live runs have namespaces of their own (named after their PID)
# and need no lock.
if [ -z "$LIVE" ]; then
	LOCKDIR=/run/lock
	[ -d "$LOCKDIR" ] || LOCKDIR=/tmp
	exec 9>"$LOCKDIR/netns-record.lock"
	flock -n 9 || { echo "record.sh: another run is in progress" >&2; exit 1; }
fi

WORK=$(mktemp -d)
BIN=$WORK/netns-record
PIDS=() # every process this run started (ours only)
FAILS=0
LIVE_DIFFS=0

LOGTAG=record
[ -z "$LIVE" ] || LOGTAG=live
log() { printf '[%s %s] %s\n' "$LOGTAG" "$(date +%T.%3N)" "$*" >&2; }

# forget PID: a process of ours that has been waited for (so that its PID,
# free again, is never signalled later).
forget() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

kill_ours() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}

# Remove our namespaces. Any process still inside them was started by this
# script (now or in an earlier, interrupted run): end those by PID first.
remove_namespaces() {
	local ns pid
	for ns in "$NS_CLI" "$NS_SRV"; do
		[ -e "/run/netns/$ns" ] || continue
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null || true
		done
		ip netns del "$ns" 2>/dev/null || true
	done
}

# Live namespaces left by a live run that was killed (SIGKILL, no trap):
# ftlive-PID-* whose PID is no longer running and that are over 10 minutes
# old (a live run takes well under that; the age guards against a run whose
# PID this shell cannot see). Any process inside them was started by that
# run.
remove_stale_live() {
	local ns pid name p now
	now=$(date +%s)
	for ns in /run/netns/ftlive-*-cli /run/netns/ftlive-*-srv; do
		[ -e "$ns" ] || continue
		name=${ns##*/}
		pid=${name#ftlive-}
		pid=${pid%-*}
		case $pid in '' | *[!0-9]*) continue ;; esac
		kill -0 "$pid" 2>/dev/null && continue
		[ $((now - $(stat -c %Y "$ns"))) -gt 600 ] || continue
		log "removing $name, left by an earlier live run"
		for p in $(ip netns pids "$name" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null || true
		done
		ip netns del "$name" 2>/dev/null || true
	done
}

cleanup() {
	local rc=$?
	set +e
	kill_ours
	remove_namespaces
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

setup() {
	[ -z "$LIVE" ] || remove_stale_live
	remove_namespaces
	ip netns add "$NS_CLI"
	ip netns add "$NS_SRV"
	ip -n "$NS_CLI" link add "$IF_CLI" type veth peer name "$IF_SRV" netns "$NS_SRV"
	local ns ifc a4 a6
	for ns in "$NS_CLI" "$NS_SRV"; do
		if [ "$ns" = "$NS_CLI" ]; then ifc=$IF_CLI a4=$CLI4 a6=$CLI6; else ifc=$IF_SRV a4=$SRV4 a6=$SRV6; fi
		ip -n "$ns" link set lo up
		# The fixed client ports of some scenarios (41013-41016) must not be
		# taken by an earlier scenario's ephemeral port: keep those above.
		ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="50000 60999"
		# Real-NIC-like packets in the capture: MTU-sized segments (no
		# TSO/GSO/GRO super-packets) and correct checksums (no offload).
		ip netns exec "$ns" ethtool -K "$ifc" tx off rx off tso off gso off gro off >/dev/null
		ip -n "$ns" addr add "$a4/24" dev "$ifc"
		ip -n "$ns" -6 addr add "$a6/64" dev "$ifc" nodad
		ip -n "$ns" link set "$ifc" up
		ip netns exec "$ns" nft add table inet ftrec
		ip netns exec "$ns" nft add chain inet ftrec in '{ type filter hook input priority 0; policy accept; }'
		# --live: the chain that freezes the wire at the final snapshot;
		# --impaired: drops before the capture point (fw_out).
		[ -z "$LIVE$IMPAIRED" ] || ip netns exec "$ns" nft add chain inet ftrec out '{ type filter hook output priority 0; policy accept; }'
	done
}

# ---- per-scenario helpers ----

SC= PORT= SADDR= CTL= EXPECT= DESC= DROPS= FAM= TD_PID= CAPSTART= MID= SNAP_T= HB=
FT_PID_final= FT_PID_mid=
# A scenario's files are made in $CTL and moved to $OUT only once it is
# complete, so an interrupted run leaves the previous files in place.

begin() { # NAME PORT FAMILY(4|6) EXPECTED DESCRIPTION
	SC=$1 PORT=$2 FAM=$3 EXPECT=$4 DESC=$5
	DROPS= CAPSTART=handshake TD_PID= FT_PID_final= FT_PID_mid= HB=100ms
	CTL=$WORK/$SC
	mkdir -p "$CTL"
	if [ "$FAM" = 6 ]; then SADDR="[$SRV6]:$PORT"; else SADDR="$SRV4:$PORT"; fi
	MID=
	log "== $SC (port $PORT, IPv$FAM)"
}

start_capture() { # [mid]: in --live mode, also a flowtrack stopped at the mid snapshot
	start_tcpdump
	[ -z "$IMPAIRED" ] || start_heartbeat
	[ -n "$LIVE" ] || return 0
	start_flowtrack final
	[ "${1:-}" != mid ] || start_flowtrack mid
}

start_tcpdump() {
	local filter="tcp port $PORT"
	[ -z "$IMPAIRED" ] || filter="$filter or udp port 9" # and the heartbeats
	ip netns exec "$CAP_NS" tcpdump -i "$CAP_IF" -s "$SNAPLEN" -U --immediate-mode -Z root -n \
		-w "$CTL/$SC.pcap" "$filter" 2>"$CTL/tcpdump.err" &
	TD_PID=$!
	PIDS+=("$TD_PID")
	local i
	for i in $(seq 500); do
		grep -q "listening on" "$CTL/tcpdump.err" 2>/dev/null && return 0
		kill -0 "$TD_PID" 2>/dev/null || break
		sleep 0.01
	done
	cat "$CTL/tcpdump.err" >&2
	fail "tcpdump did not start"
}

# start_flowtrack TAG: flowtrack captures live on the server's veth, as a
# user would: `flowtrack -i vsrv -o json 'tcp port PORT'`, until SIGINT.
# Its records go to NAME.flowtrack.json (TAG final) or NAME.mid.flowtrack.json.
# It is ready when its packet socket carries the BPF filter (ss -0 -b shows
# the socket's filter; libpcap attaches it last).
start_flowtrack() {
	local tag=$1 out=$CTL/$SC pid i
	[ "$tag" = final ] || out=$CTL/$SC.$tag
	ip netns exec "$CAP_NS" "$LIVE" -i "$CAP_IF" -o json "tcp port $PORT" >"$out.flowtrack.json" 2>"$out.flowtrack.err" &
	pid=$!
	PIDS+=("$pid")
	printf -v "FT_PID_$tag" %s "$pid"
	for i in $(seq 500); do
		if ip netns exec "$CAP_NS" ss -0 -b -p -n 2>/dev/null | grep -A1 "pid=$pid," |
			grep -qE 'bpf filter \(([2-9]|[0-9]{2,})\)'; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	cat "$out.flowtrack.err" >&2
	fail "flowtrack ($tag) did not start capturing"
}

# stop_flowtrack TAG: SIGINT, as a user's Ctrl-C; flowtrack prints its
# records and exits 0 within a fraction of a second.
stop_flowtrack() {
	local tag=$1 pid rc=0 i out=$CTL/$SC
	[ "$tag" = final ] || out=$CTL/$SC.$tag
	pid=FT_PID_$tag
	pid=${!pid}
	[ -n "$pid" ] || return 0
	kill -INT "$pid" 2>/dev/null || true
	for i in $(seq 250); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		forget "$pid"
		fail "flowtrack ($tag) did not stop within 5 s of SIGINT"
	fi
	wait "$pid" || rc=$?
	forget "$pid"
	printf -v "FT_PID_$tag" %s ""
	[ "$rc" = 0 ] || { cat "$out.flowtrack.err" >&2; fail "flowtrack ($tag) exited $rc"; }
	log "flowtrack ($tag): $(tail -n1 "$out.flowtrack.err")"
}

# live_compare TAG SSFILE SNAPSHOT_TIME: flowtrack's records against ss.
live_compare() {
	local tag=$1 ss=$2 until=$3 out=$CTL/$SC rc=0 line
	[ "$tag" = final ] || out=$CTL/$SC.$tag
	echo "$until" >"$out.snap"
	"$BIN" compare -scenario "$SC" -snapshot "$tag" -ss "$ss" -records "$out.flowtrack.json" \
		-packets "$CTL/$SC.pcap" -until "$until" >"$out.live.tsv" 2>"$out.live.report" || rc=$?
	while IFS= read -r line; do log "  $line"; done <"$out.live.tsv"
	case $rc in
	0) ;;
	1) LIVE_DIFFS=$((LIVE_DIFFS + 1)); sed 's/^/    /' "$out.live.report" >&2 ;;
	*) cat "$out.live.report" >&2; fail "compare failed" ;;
	esac
}

stop_capture() {
	[ -n "$TD_PID" ] || return 0
	[ -n "$LIVE" ] || sleep 0.2 # let tcpdump read the last packets from its ring (--live: finish did)
	kill -INT "$TD_PID" 2>/dev/null || true
	wait "$TD_PID" 2>/dev/null || true
	local got
	got=$(grep -E "packets (captured|dropped by kernel)" "$CTL/tcpdump.err" | tr '\n' ' ')
	log "tcpdump: $got"
	grep -q "^0 packets dropped by kernel" "$CTL/tcpdump.err" || log "WARNING: tcpdump dropped packets"
	TD_PID=
}

# start_heartbeat (--impaired): a UDP datagram from the server namespace to
# the client's port 9 every $HB (dropped at the client's input), in the
# capture: frames that are not TCP, which keep the capture's clock going
# after the scenario's last TCP packet, as other traffic does on a real
# link.
start_heartbeat() {
	ip netns exec "$NS_CLI" nft add rule inet ftrec in udp dport 9 drop
	ip netns exec "$NS_SRV" "$BIN" heartbeat -to "$CLI4:9" -every "$HB" -deadline 300s 2>>"$CTL/heartbeat.log" &
	PIDS+=("$!")
}

start_server() { # extra args
	ip netns exec "$NS_SRV" "$BIN" server -scenario "$SC" -addr "$SADDR" -ctl "$CTL" "$@" 2>>"$CTL/server.log" &
	PIDS+=("$!")
}

start_client() { # extra args
	ip netns exec "$NS_CLI" "$BIN" client -scenario "$SC" -addr "$SADDR" -ctl "$CTL" "$@" 2>>"$CTL/client.log" &
	PIDS+=("$!")
}

fail() {
	log "FAILED in $SC: $*"
	local f
	for f in "$CTL"/*.log; do [ -e "$f" ] && sed "s/^/    /" "$f" >&2; done
	exit 1
}

await() { # ROLE.STEP...
	local step i
	for step in "$@"; do
		for i in $(seq 1000); do
			[ -e "$CTL/$step" ] && continue 2
			compgen -G "$CTL/*.failed" >/dev/null && fail "a process failed while waiting for $step"
			sleep 0.01
		done
		fail "timed out waiting for $step"
	done
}

signal() { : >"$CTL/go.$1"; }

# await_long SECONDS ROLE.STEP: await, for the scenarios that wait on the
# kernel's long timers.
await_long() {
	local i
	for i in $(seq $(($1 * 10))); do
		[ -e "$CTL/$2" ] && return 0
		compgen -G "$CTL/*.failed" >/dev/null && fail "a process failed while waiting for $2"
		sleep 0.1
	done
	fail "timed out waiting for $2"
}

# fw_out cli|srv RULE... (--impaired): drop on the output hook of a
# namespace. From the client that is before the capture point (the capture
# never sees the packet); from the server too (tcpdump on vsrv sees what
# leaves after the output hook). Either way the packet is lost.
fw_out() {
	local ns=$NS_CLI
	[ "$1" = srv ] && ns=$NS_SRV
	shift
	ip netns exec "$ns" nft add rule inet ftrec out "$@"
	DROPS="${DROPS:+$DROPS; }$([ "$ns" = "$NS_CLI" ] && echo cli || echo srv) output: $*"
}

# inject c|s old|next: an RST into the scenario's connection from the
# given side's namespace (inject.go).
inject() {
	local ns=$NS_CLI
	[ "$1" = s ] && ns=$NS_SRV
	log "inject: $(ip netns exec "$ns" "$BIN" inject -packets "$CTL/$SC.pcap" -port "$PORT" -from "$1" -seq "$2")"
	DROPS="${DROPS:+$DROPS; }inject RST from $1, seq $2"
}

fw() { # cli|srv RULE...
	local ns=$NS_CLI
	[ "$1" = srv ] && ns=$NS_SRV
	shift
	ip netns exec "$ns" nft add rule inet ftrec in "$@"
	DROPS="${DROPS:+$DROPS; }$([ "$ns" = "$NS_CLI" ] && echo cli || echo srv) input: $*"
}

ss_both() { # outfile-prefix; sets SNAP_T (Unix ns, just after both ss ran)
	ip netns exec "$NS_CLI" ss -tanH state all "( sport = :$PORT or dport = :$PORT )" >"$1.cli"
	ip netns exec "$NS_SRV" ss -tanH state all "( sport = :$PORT or dport = :$PORT )" >"$1.srv"
	SNAP_T=$(date +%s%N)
}

# write_ss OUTFILE SSPREFIX SNAPSHOT_TIME
write_ss() {
	local out=$1 pre=$2
	{
		"$BIN" pair -cli "$pre.cli" -srv "$pre.srv" -port "$PORT" \
			-tuples "$CTL/client.tuples,$CTL/server.tuples" -packets "$CTL/$SC.pcap" -until "$3"
		echo "# ss -tanH in $NS_CLI (client):"
		sed 's/^/#   /' "$pre.cli"
		echo "# ss -tanH in $NS_SRV (server):"
		sed 's/^/#   /' "$pre.srv"
	} >"$out"
}

# The multiset of client/server states in a .ss file, e.g. "ESTAB/ESTAB*5 TIME-WAIT/CLOSED*3".
states_of() {
	grep -v '^#' "$1" | awk -F'\t' '{print $3 "/" $4}' | sort | uniq -c |
		awk '{printf "%s%s%s", (NR>1?" ":""), $2, ($1>1?"*"$1:"")}'
}

check() { # FILE EXPECTED
	local got
	got=$(states_of "$1")
	if [ "$got" = "$2" ]; then
		log "OK   $(basename "$1"): $got"
	else
		log "DIFF $(basename "$1"): got '$got', expected '$2'"
		FAILS=$((FAILS + 1))
	fi
}

mid_snapshot() { # EXPECTED
	sleep 0.3
	ss_both "$CTL/mid"
	[ -z "$LIVE" ] || stop_flowtrack mid
	MID="$SNAP_T $1"
}

# freeze (--live): from now on neither host puts a packet of the scenario's
# port on the wire (an output-hook drop in both namespaces). A segment
# dropped on output changes no TCP state (its sender only retries later),
# so the states ss shows next are the states at the freeze, and no packet
# after it can reach flowtrack (or tcpdump): flowtrack and ss see the same
# moment however late flowtrack is stopped. The sleep lets a segment
# already inside the veth arrive.
freeze() {
	ip netns exec "$NS_CLI" nft add rule inet ftrec out tcp dport "$PORT" drop
	ip netns exec "$NS_SRV" nft add rule inet ftrec out tcp sport "$PORT" drop
	sleep 0.05
}

finish() { # [settle seconds]
	sleep "${1:-0.3}"
	[ -z "$LIVE" ] || freeze
	ss_both "$CTL/final" # before anything is stopped
	if [ -n "$LIVE" ]; then
		sleep 0.2 # flowtrack and tcpdump read the last packets from their rings
		stop_flowtrack final
	fi
	stop_capture
	if [ -z "$LIVE" ]; then
		# The capture ends where ss looked: drop what came after
		# (retransmissions that the firewall keeps dropping, in the
		# scenarios that have them). A live run keeps them: flowtrack may
		# have seen some before it stopped.
		local cut
		cut=$("$BIN" trim -until "$SNAP_T" "$CTL/$SC.pcap")
		log "capture: ${cut% *} packets up to the ss snapshot, ${cut#* } after it cut off"
	fi
	write_ss "$CTL/$SC.ss" "$CTL/final" "$SNAP_T"
	check "$CTL/$SC.ss" "$EXPECT"
	if [ -n "$MID" ]; then
		write_ss "$CTL/$SC.mid.ss" "$CTL/mid" "${MID%% *}"
		check "$CTL/$SC.mid.ss" "${MID#* }"
	fi
	if [ -n "$LIVE" ]; then
		live_compare final "$CTL/$SC.ss" "$SNAP_T"
		[ -z "$MID" ] || live_compare mid "$CTL/$SC.mid.ss" "${MID%% *}"
	fi
	kill_ours
	if [ -n "$LIVE$IMPAIRED" ]; then
		ip netns exec "$NS_CLI" nft 'flush chain inet ftrec in; flush chain inet ftrec out'
		ip netns exec "$NS_SRV" nft 'flush chain inet ftrec in; flush chain inet ftrec out'
	else
		ip netns exec "$NS_CLI" nft flush chain inet ftrec in
		ip netns exec "$NS_SRV" nft flush chain inet ftrec in
	fi
	if [ -n "$LIVE" ]; then
		mv "$CTL/$SC".* "$OUT/"
	else
		rm -f "$OUT/$SC.pcap" "$OUT/$SC.ss" "$OUT/$SC.mid.ss"
		mv "$CTL/$SC.pcap" "$CTL/$SC.ss" "$OUT/"
		[ -z "$MID" ] || mv "$CTL/$SC.mid.ss" "$OUT/"
	fi
	local fam=IPv$FAM
	printf '%s\t%s\t%s\t%s:%s\t%s\t%s\t%s\t%s\t%s\n' "$SC" "$PORT" "$fam" "$CAP_NS" "$CAP_IF" "$CAPSTART" \
		"$EXPECT" "${DROPS:--}" "$(uname -r)" "$DESC" >>"$WORK/scenarios.tsv"
}

# A scenario whose processes need no help from the script.
plain() { # NAME PORT FAM EXPECTED DESCRIPTION
	begin "$@"
	start_capture
	start_server
	await server.listening
	start_client
	await client.done server.done
	finish
}

# ---- scenarios ----

sc_established() {
	plain established 7001 4 "ESTAB/ESTAB" \
		"handshake, 100 bytes client->server, 200 bytes back; both hold the socket"
}
sc_close_client() {
	plain close-client 7002 4 "TIME-WAIT/CLOSED" \
		"data both ways, client close() first, server close() on EOF"
}
sc_close_server() {
	plain close-server 7003 4 "CLOSED/TIME-WAIT" \
		"data both ways, server close() first, client close() on EOF"
}
sc_half_close() {
	plain half-close 7004 4 "FIN-WAIT-2/CLOSE-WAIT" \
		"client sends 100 bytes then shutdown(SHUT_WR); server reads EOF, sends 300 bytes on the half-open connection and never closes"
}
sc_fin_wait_1() {
	begin fin-wait-1 7005 4 "FIN-WAIT-1/CLOSE-WAIT" \
		"data both ways, then every packet from the server is dropped at the client; client shutdown(SHUT_WR): the FIN arrives, its ACK (and the ACKs of the FIN's retransmissions) never does"
	start_capture
	start_server
	await server.listening
	start_client
	await client.ready
	sleep 0.1
	fw cli tcp sport "$PORT" drop
	signal close
	await client.done server.done
	finish 0.7
}
sc_fin_lost() {
	begin fin-lost 7006 4 "FIN-WAIT-1/ESTAB" \
		"data both ways, then the client's FIN (and its retransmissions) is dropped at the server"
	start_capture
	start_server
	await server.listening
	start_client
	await client.ready server.done
	sleep 0.1
	fw srv tcp dport "$PORT" tcp flags \& fin == fin drop
	signal close
	await client.done
	finish 0.7
}
last_ack() { # NAME PORT FAM
	begin "$1" "$2" "$3" "TIME-WAIT/LAST-ACK" \
		"data both ways, client shutdown(SHUT_WR), server reads EOF; then every packet from the client is dropped at the server and the server close()s: the client ACKs the FIN (goes TIME_WAIT), the ACK never arrives"
	start_capture
	start_server
	await server.listening
	start_client
	await server.eof
	sleep 0.1
	fw srv tcp dport "$PORT" drop
	signal close
	await client.done server.done
	finish 0.7
}
sc_last_ack() { last_ack last-ack 7007 4; }
sc_simultaneous_close() {
	begin simultaneous-close 7008 4 "CLOSING/CLOSING" \
		"data both ways, then both sides shutdown(SHUT_WR) at once while an HTB rate limit on both veths holds each FIN back ~100 ms (behind a 1000-byte UDP filler to port 9, dropped), so the FINs cross; pure ACKs (the ACKs of the FINs) are dropped both ways and each side lets only its peer's first FIN in"
	start_capture
	start_server -filler "$CLI4:9"
	await server.listening
	start_client -filler "$SRV4:9"
	await client.ready server.ready
	sleep 0.1
	fw cli udp dport 9 drop
	fw srv udp dport 9 drop
	fw cli tcp sport "$PORT" tcp flags \& \(fin \| syn \| rst\) == 0 drop
	fw srv tcp dport "$PORT" tcp flags \& \(fin \| syn \| rst\) == 0 drop
	fw cli tcp sport "$PORT" tcp flags \& fin == fin quota over 80 bytes drop
	fw srv tcp dport "$PORT" tcp flags \& fin == fin quota over 80 bytes drop
	local ns ifc
	for ns in "$NS_CLI" "$NS_SRV"; do
		if [ "$ns" = "$NS_CLI" ]; then ifc=$IF_CLI; else ifc=$IF_SRV; fi
		ip netns exec "$ns" tc qdisc add dev "$ifc" root handle 1: htb default 10
		ip netns exec "$ns" tc class add dev "$ifc" parent 1: classid 1:10 htb rate 80kbit burst 100b cburst 100b
	done
	DROPS="$DROPS; both egress: htb rate 80kbit burst 100b"
	signal close
	await client.done server.done
	finish 0.8
	for ns in "$NS_CLI" "$NS_SRV"; do
		if [ "$ns" = "$NS_CLI" ]; then ifc=$IF_CLI; else ifc=$IF_SRV; fi
		ip netns exec "$ns" tc qdisc del dev "$ifc" root
	done
}
sc_syn_sent() {
	begin syn-sent 7009 4 "SYN-SENT/CLOSED" \
		"the server listens, but every SYN is dropped at the server's input: the client retransmits its SYN once (after 1 s) before ss runs"
	fw srv tcp dport "$PORT" drop
	start_capture
	start_server
	await server.listening
	start_client
	await client.dialing
	finish 1.4
}
sc_syn_recv() {
	begin syn-recv 7010 4 "SYN-SENT/SYN-RECV" \
		"the server listens; every SYN-ACK is dropped at the client's input: client SYN and its retransmission, server SYN-ACK and its retransmission"
	fw cli tcp sport "$PORT" tcp flags \& \(syn \| ack\) == syn \| ack drop
	start_capture
	start_server
	await server.listening
	start_client
	await client.dialing
	finish 1.4
}
sc_rst_client() {
	plain rst-client 7011 4 "CLOSED/CLOSED" \
		"data both ways, then the client sets SO_LINGER 0 and close()s: RST"
}
sc_rst_server() {
	plain rst-server 7012 4 "CLOSED/CLOSED" \
		"data both ways, then the server sets SO_LINGER 0 and close()s: RST"
}
sc_refused() {
	begin refused 7013 4 "CLOSED/CLOSED" \
		"no listener on the port: SYN answered by RST+ACK (client port fixed at 41013)"
	start_capture
	start_client -lport 41013
	await client.done
	finish
}
sc_many() {
	plain many 7014 4 "ESTAB/ESTAB*5 TIME-WAIT/CLOSED*3" \
		"8 connections from one client to one listener, data on each; the client close()s 3 of them (server close()s on EOF), 5 stay open"
}
sc_port_reuse_tw() {
	begin port-reuse-tw 7015 4 "ESTAB/ESTAB" \
		"client port 41015 (SO_REUSEADDR) twice: first connection closed by the server first (server TIME_WAIT, see port-reuse-tw.mid.ss), then a new SYN on the same 4-tuple, accepted out of the server's TIME_WAIT"
	start_capture mid
	start_server
	await server.listening
	start_client -lport 41015
	await client.first
	mid_snapshot "CLOSED/TIME-WAIT"
	signal second
	await client.done server.done
	finish
}
sc_port_reuse_rst() {
	begin port-reuse-rst 7016 4 "ESTAB/ESTAB" \
		"client port 41016 (SO_REUSEADDR) twice: first connection aborted by the client with RST (SO_LINGER 0; see port-reuse-rst.mid.ss), then a new connection on the same 4-tuple"
	start_capture mid
	start_server
	await server.listening
	start_client -lport 41016
	await client.first
	mid_snapshot "CLOSED/CLOSED"
	signal second
	await client.done server.done
	finish
}
sc_long_transfer() {
	plain long-transfer 7017 4 "TIME-WAIT/CLOSED" \
		"client uploads 1 MiB, server sends 2 MiB back, client close()s first, server close()s on EOF"
}
midstream() { # NAME PORT EXPECTED DESC
	begin "$1" "$2" 4 "$3" "$4"
	CAPSTART=midstream
	start_server
	await server.listening
	start_client
	await client.ready
	sleep 0.2
	start_capture
	signal continue
	await client.done server.done
	finish
}
sc_midstream_halfclose() {
	midstream midstream-halfclose 7018 "FIN-WAIT-2/CLOSE-WAIT" \
		"capture starts mid-stream after 10 exchanges of 1000 bytes each way; 10 more, then the client shutdown(SHUT_WR)s, the server sends 500 more bytes and holds"
}
sc_midstream_close() {
	midstream midstream-close 7019 "TIME-WAIT/CLOSED" \
		"capture starts mid-stream after 10 exchanges of 1000 bytes each way; 10 more, then the client close()s first, the server close()s on EOF"
}
sc_established6() {
	plain established6 7020 6 "ESTAB/ESTAB" "IPv6: as established"
}
sc_close_client6() {
	plain close-client6 7021 6 "TIME-WAIT/CLOSED" "IPv6: as close-client"
}
sc_last_ack6() { last_ack last-ack6 7022 6; }
# curl_get CURL_ARGS...: one GET /hello from the client namespace with curl;
# its connection's tuple goes to client.tuples.
curl_get() {
	local out
	out=$(ip netns exec "$NS_CLI" curl -sS -f --noproxy '*' --max-time 5 -o /dev/null \
		-w '%{http_code} %{local_ip}:%{local_port}' "$@" "http://$SADDR/hello" 2>>"$CTL/client.log") ||
		fail "curl $* failed"
	[ "${out%% *}" = 200 ] || fail "curl $*: HTTP status ${out%% *}"
	printf '%s\t%s\n' "${out#* }" "$SADDR" >>"$CTL/client.tuples"
	echo "curl $*: ${out}" >>"$CTL/client.log"
}
sc_http() {
	command -v curl >/dev/null || { log "http needs curl (apt-get install curl)"; exit 1; }
	begin http 7023 4 "CLOSED/TIME-WAIT ESTAB/ESTAB TIME-WAIT/CLOSED" \
		"a Go net/http server; curl GETs /hello and exits (curl closes first), curl GETs with Connection: close (the server closes first), then a Go net/http client GETs twice on one kept-alive connection and holds it"
	start_capture
	start_server
	await server.listening
	curl_get
	curl_get -H 'Connection: close'
	start_client
	await client.done
	finish
}

ALL=(established close_client close_server half_close fin_wait_1 fin_lost last_ack
	simultaneous_close syn_sent syn_recv rst_client rst_server refused many
	port_reuse_tw port_reuse_rst long_transfer midstream_halfclose midstream_close
	established6 close_client6 last_ack6)
# ---- impaired scenarios (--impaired, into pcaps/impaired) ----
# Loss before the capture point (fw_out), after it (fw), injected RSTs,
# and the kernel's long timers; heartbeats keep the capture's clock going.
# pcaps/impaired/README.md describes them.

sc_syn_giveup() {
	begin syn-giveup 7101 4 "CLOSED/CLOSED" \
		"every SYN is dropped at the server's input (after the capture point); the client (port 41101) connect()s with no timeout of its own: it gives up on the kernel's schedule (11 SYNs, ETIMEDOUT after about 131 s); mid snapshot at about 100 s (SYN-SENT)"
	HB=1s
	fw srv tcp dport "$PORT" drop
	start_capture
	start_server -deadline 250s
	await server.listening
	start_client -deadline 250s -lport 41101
	await client.dialing
	sleep 100
	mid_snapshot "SYN-SENT/CLOSED"
	await_long 60 client.gaveup
	finish 1
}
sc_synack_giveup() {
	begin synack-giveup 7102 4 "SYN-SENT/CLOSED" \
		"the client's (port 41102) SYNs after the first are dropped on its output (before the capture point) and every SYN-ACK at its input (after): the listener resends its SYN-ACK on its own timer (1, 2, 4, 8, 16 s) and drops the half-open connection 32 s after the last; the client is still retrying"
	HB=1s
	fw_out cli tcp dport "$PORT" tcp flags \& \(syn \| ack\) == syn quota over 80 bytes drop
	fw cli tcp sport "$PORT" tcp flags \& \(syn \| ack\) == syn \| ack drop
	start_capture
	start_server -deadline 250s
	await server.listening
	start_client -deadline 250s -lport 41102
	await client.dialing
	sleep 68
	finish
}
sc_synack_backoff() {
	begin synack-backoff 7103 4 "ESTAB/SYN-RECV" \
		"every packet from the client but its SYN is dropped at the server's input (after the capture point): the client is established and answers each SYN-ACK the server resends (1 s, then 2 s later) with an ACK that never arrives"
	fw srv tcp dport "$PORT" tcp flags \& syn == 0 drop
	start_capture
	start_server
	await server.listening
	start_client
	await client.done
	finish 4.5
}
fin_wait_2() { # NAME PORT EXPECTED DESC
	begin "$1" "$2" 4 "$3" "$4"
	HB=1s
	start_capture
	start_server -deadline 250s
	await server.listening
	start_client -deadline 250s
	await client.done server.done
	sleep 62
	finish
}
sc_fin_wait_2_orphan() {
	fin_wait_2 fin-wait-2-orphan 7104 "CLOSED/CLOSE-WAIT" \
		"data both ways, the client close()s (its FIN is acknowledged), the server holds its socket: the orphaned FIN_WAIT_2 ends after tcp_fin_timeout (60 s); snapshot at about 62 s"
}
sc_fin_wait_2_held() {
	fin_wait_2 fin-wait-2-held 7105 "FIN-WAIT-2/CLOSE-WAIT" \
		"as fin-wait-2-orphan, but the client only shutdown(SHUT_WR)s and holds its socket: FIN_WAIT_2 lasts; snapshot at about 62 s"
}
sc_rst_old() {
	begin rst-old 7106 4 "ESTAB/ESTAB" \
		"data both ways; then an RST from each side (injected from a raw socket) with the sequence number one past its SYN, below what the receiver has acknowledged: both ignore them"
	start_capture
	start_server
	await server.listening
	start_client
	await client.done server.done
	sleep 0.2
	inject c old
	sleep 0.2
	inject s old
	finish
}
rst_timewait() { # NAME PORT EXPECTED SEQ DESC
	begin "$1" "$2" 4 "$3" "$5"
	start_capture
	start_server
	await server.listening
	start_client
	await client.ready
	signal close
	await client.done server.done
	sleep 0.3
	inject s "$4"
	finish
}
sc_rst_old_timewait() {
	rst_timewait rst-old-timewait 7107 "TIME-WAIT/CLOSED" old \
		"data both ways, the client closes first (TIME_WAIT), the server on EOF; then an RST from the server's address (injected) with the sequence number one past its SYN: TIME_WAIT ignores it"
}
sc_rst_timewait_exact() {
	rst_timewait rst-timewait-exact 7108 "CLOSED/CLOSED" next \
		"as rst-old-timewait, but the RST has the next sequence number exactly: it ends TIME_WAIT (TIME_WAIT assassination, RFC 1337; net.ipv4.tcp_rfc1337 is 0)"
}
sc_rst_timewait_ahead() {
	rst_timewait rst-timewait-ahead 7114 "TIME-WAIT/CLOSED" ahead \
		"as rst-old-timewait, but the RST is 1000 past the next sequence number (in the window, not exact): TIME_WAIT ignores it, and sends no challenge ACK"
}
sc_fin_lost_once() {
	begin fin-lost-once 7109 4 "TIME-WAIT/CLOSED" \
		"data both ways; the client's first FIN is dropped at the server's input (after the capture point), its retransmission arrives; the server closes on EOF"
	start_capture
	start_server
	await server.listening
	start_client
	await client.ready
	fw srv tcp dport "$PORT" tcp flags \& fin == fin quota until 60 bytes drop
	signal close
	await client.done server.done
	finish 1
}
sc_final_ack_lost() {
	begin final-ack-lost 7110 4 "TIME-WAIT/CLOSED" \
		"the client closes first; the server closes on EOF; the client's ACK of the server's FIN is dropped once at the server's input (after the capture point): the server resends its FIN, the client (TIME_WAIT) acknowledges it again"
	start_capture
	start_server
	await server.listening
	start_client
	await client.ready
	sleep 0.2 # the client's delayed ACK of the server's data goes first
	fw srv tcp dport "$PORT" tcp flags \& \(fin \| syn \| rst\) == 0 ip length 52 quota until 60 bytes drop
	signal close
	await client.done server.done
	finish 1
}
sc_fin_cross_loss() {
	fin_cross fin-cross-loss 7111 cli \
		"data both ways, then both ends shutdown(SHUT_WR) at once while an HTB rate limit holds each FIN back (behind a UDP filler), so the FINs cross; the server's first FIN is dropped at the client's input (after the capture point); its retransmission arrives"
}
sc_fin_cross_loss_c() {
	fin_cross fin-cross-loss-c 7115 srv \
		"as fin-cross-loss, but the client's first FIN is dropped at the server's input (after the capture point)"
}
fin_cross() { # NAME PORT cli|srv DESC: whose input drops the first FIN it gets
	begin "$1" "$2" 4 "TIME-WAIT/TIME-WAIT" "$4"
	start_capture
	start_server -filler "$CLI4:9"
	await server.listening
	start_client -filler "$SRV4:9"
	await client.ready server.ready
	sleep 0.1
	fw srv udp dport 9 drop
	if [ "$3" = cli ]; then
		fw cli tcp sport "$PORT" tcp flags \& fin == fin quota until 60 bytes drop
	else
		fw srv tcp dport "$PORT" tcp flags \& fin == fin quota until 60 bytes drop
	fi
	local ns ifc
	for ns in "$NS_CLI" "$NS_SRV"; do
		if [ "$ns" = "$NS_CLI" ]; then ifc=$IF_CLI; else ifc=$IF_SRV; fi
		ip netns exec "$ns" tc qdisc add dev "$ifc" root handle 1: htb default 10
		ip netns exec "$ns" tc class add dev "$ifc" parent 1: classid 1:10 htb rate 80kbit burst 100b cburst 100b
	done
	DROPS="$DROPS; both egress: htb rate 80kbit burst 100b"
	signal close
	await client.done server.done
	finish 1
	for ns in "$NS_CLI" "$NS_SRV"; do
		if [ "$ns" = "$NS_CLI" ]; then ifc=$IF_CLI; else ifc=$IF_SRV; fi
		ip netns exec "$ns" tc qdisc del dev "$ifc" root
	done
}
sc_synack_lost_before() {
	begin synack-lost-before 7112 4 "TIME-WAIT/CLOSED" \
		"the server's first SYN-ACK is dropped on its output (never on the wire, not in the capture); then as close-client"
	fw_out srv tcp sport "$PORT" tcp flags \& \(syn \| ack\) == syn \| ack quota until 60 bytes drop
	start_capture
	start_server
	await server.listening
	start_client
	await client.done server.done
	finish 1
}
sc_data_lost_before() {
	begin data-lost-before 7113 4 "TIME-WAIT/CLOSED" \
		"the client writes 100 bytes three times; its first data segment is dropped on its output (before the capture point) and sent again on its timer; then as close-client"
	fw_out cli tcp dport "$PORT" ip length 152 quota until 160 bytes drop
	start_capture
	start_server
	await server.listening
	start_client
	await client.done server.done
	finish 1
}

IMPAIRED_ALL=(syn_giveup synack_giveup synack_backoff fin_wait_2_orphan fin_wait_2_held
	rst_old rst_old_timewait rst_timewait_exact rst_timewait_ahead fin_lost_once final_ack_lost fin_cross_loss fin_cross_loss_c
	synack_lost_before data_lost_before)

# --live runs these too (http needs curl; it is not in pcaps/kernel).
LIVE_ALL=("${ALL[@]}" http)

main() {
	local want=("$@") s
	if [ ${#want[@]} -eq 0 ]; then
		if [ -n "$LIVE" ]; then
			want=("${LIVE_ALL[@]}")
		elif [ -n "$IMPAIRED" ]; then
			want=("${IMPAIRED_ALL[@]}")
		else
			want=("${ALL[@]}")
		fi
	fi
	for s in "${want[@]}"; do
		s=${s//-/_}
		declare -F "sc_$s" >/dev/null || { log "unknown scenario $s"; exit 2; }
	done
	mkdir -p "$OUT"
	log "building the harness"
	(cd "$ROOT" && go build -o "$BIN" ./tools/netns-record)
	setup
	local start=$SECONDS
	for s in "${want[@]}"; do
		"sc_${s//-/_}"
	done
	log "all done in $((SECONDS - start)) s, $FAILS scenario(s) differ from the expected states"
	if [ -n "$LIVE" ]; then
		{
			echo $'# name\tport\tfamily\tcapture\tcapture_start\texpected_client/server\tfirewall\tkernel\tdescription'
			cat "$WORK/scenarios.tsv"
		} >"$OUT/SCENARIOS.tsv"
		cat "$OUT"/*.live.tsv >"$OUT/live.tsv"
		log "live: $(grep -c '^OK' "$OUT/live.tsv" || true) connection(s) agree, $(grep -c '^KNOWN' "$OUT/live.tsv" || true) known disagreement(s), $(grep -c '^DIFF' "$OUT/live.tsv" || true) disagreement(s); results in $OUT/live.tsv"
		[ "$LIVE_DIFFS" = 0 ] || exit 4
		return 0
	fi
	# SCENARIOS.tsv: rows of this run replace older rows of the same names.
	local manifest=$OUT/SCENARIOS.tsv header
	header=$'# name\tport\tfamily\tcapture\tcapture_start\texpected_client/server\tfirewall\tkernel\tdescription'
	{
		echo "$header"
		{
			if [ -f "$manifest" ]; then
				grep -v '^#' "$manifest" | awk -F'\t' 'NR==FNR{skip[$1]=1; next} !($1 in skip)' "$WORK/scenarios.tsv" -
			fi
			cat "$WORK/scenarios.tsv"
		} | sort -t$'\t' -k2,2n
	} >"$manifest.new"
	mv "$manifest.new" "$manifest"
	if [ $# -eq 0 ] && [ -z "$IMPAIRED" ] && [ -f "$OUT/README.md" ]; then
		sed -i "s/^Recorded on Linux kernel .*/Recorded on Linux kernel \`$(uname -r)\`./" "$OUT/README.md"
	fi
}

main "$@"
