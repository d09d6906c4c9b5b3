#!/usr/bin/env bash
# Live check of connection names (issue 18): real clients (curl, headless
# Chromium) reach nginx by names that dnsmasq answers, between two network
# namespaces made here, while flowtrack captures live on the client's side
# with its default settings. The names come from this script's own
# configuration (NAMES below), never from flowtrack.
#
# Usage (root): names.sh FLOWTRACK OUTDIR [--no-chromium]
# Writes OUTDIR/records.json (flowtrack -o json), OUTDIR/flowtrack.err,
# OUTDIR/expect.tsv (client port, server, expected name, source; one line
# per curl connection), OUTDIR/chromium.tsv (server, name the page asked
# for), OUTDIR/wire.pcap (tcpdump on the same interface, to show that the
# hellos were split), and OUTDIR/log. Everything it starts is ended by PID,
# and both namespaces are removed, on exit, failure or SIGTERM.
set -euo pipefail
ft=${1:?usage: names.sh FLOWTRACK OUTDIR [--no-chromium]}
out=${2:?usage: names.sh FLOWTRACK OUTDIR [--no-chromium]}
chromium=1
[ "${3:-}" = --no-chromium ] && chromium=0
mkdir -p "$out"
exec 3>"$out/log"
log() { echo "names.sh: $*" >&3; }

ns_c="names18-$$-c" ns_s="names18-$$-s"
work=$(mktemp -d /tmp/names18-live.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	ip netns del "$ns_c" 2>/dev/null || true
	ip netns del "$ns_s" 2>/dev/null || true
	rm -rf "/etc/netns/$ns_c" "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

C=10.118.0.1 S1=10.118.0.2 S2=10.118.0.3 DNS=10.118.0.53
D=names18.test
ip netns add "$ns_c"
ip netns add "$ns_s"
ip -n "$ns_c" link add vc type veth peer name vs netns "$ns_s"
ip -n "$ns_c" addr add "$C/24" dev vc
for a in "$S1" "$S2" "$DNS"; do ip -n "$ns_s" addr add "$a/24" dev vs; done
for n in "$ns_c" "$ns_s"; do ip -n "$n" link set lo up; done
ip -n "$ns_c" link set vc up
ip -n "$ns_s" link set vs up
# Segments as they are on a wire: no offloads, so the capture sees each
# segment the MSS allows. The server advertises an MSS of 300, so that
# every ClientHello spans two segments or more: curl's TLS 1.3 hello is
# about 520 bytes, its TLS 1.2 one about 500 with every cipher offered,
# Chromium's about 2000.
ip netns exec "$ns_c" ethtool -K vc tx off tso off gso off gro off >/dev/null
ip netns exec "$ns_s" ethtool -K vs tx off tso off gso off gro off >/dev/null
ip -n "$ns_s" route add "$C/32" dev vs advmss 300

# DNS: a name per address, two names on S1 (told apart by SNI), and a CNAME
# chain www -> mid -> cdn, whose head is the name asked for.
cat >"$work/dnsmasq.conf" <<EOF
no-resolv
no-hosts
bind-interfaces
listen-address=$DNS
port=53
host-record=alpha.$D,$S1
host-record=beta.$D,$S1
host-record=plain.$D,$S1
host-record=raw.$D,$S1
host-record=cdn.$D,$S2
host-record=split.$D,$S2
host-record=img.$D,$S2
cname=mid.$D,cdn.$D
cname=www.$D,mid.$D
local-ttl=300
EOF
ip netns exec "$ns_s" dnsmasq --keep-in-foreground --conf-file="$work/dnsmasq.conf" --pid-file="$work/dnsmasq.pid" --log-facility=- 2>>"$out/log" &
pids+=($!)
mkdir -p "/etc/netns/$ns_c"
echo "nameserver $DNS" >"/etc/netns/$ns_c/resolv.conf"

# nginx: one self-signed certificate for every name, HTTPS on both
# addresses, HTTP on S1, and a page whose images come from another name.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$D" \
	-addext "subjectAltName=DNS:*.$D" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
mkdir -p "$work/www"
{
	echo "<html><body>"
	for i in 1 2 3 4; do echo "<img src=\"https://img.$D/i$i.png\">"; done
	echo "</body></html>"
} >"$work/www/page.html"
printf 'ok\n' >"$work/www/index.html"
for i in 1 2 3 4; do printf 'x%.0s' $(seq 64) >"$work/www/i$i.png"; done
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path $work;
	proxy_temp_path $work;
	fastcgi_temp_path $work;
	uwsgi_temp_path $work;
	scgi_temp_path $work;
	keepalive_timeout 0;
	default_type text/html;
	server {
		listen $S1:443 ssl;
		listen $S2:443 ssl;
		server_name _;
		ssl_certificate $work/cert.pem;
		ssl_certificate_key $work/key.pem;
		ssl_protocols TLSv1.2 TLSv1.3;
		root $work/www;
	}
	server {
		listen $S1:80;
		server_name _;
		root $work/www;
	}
}
EOF
ip netns exec "$ns_s" nginx -c "$work/nginx.conf" -g 'daemon off;' 2>>"$out/log" &
pids+=($!)

# flowtrack, as a user runs it, and tcpdump beside it.
ip netns exec "$ns_c" "$ft" -i vc -o json >"$out/records.json" 2>"$out/flowtrack.err" &
ftpid=$!
pids+=($ftpid)
ip netns exec "$ns_c" tcpdump -i vc -s 0 -U -w "$out/wire.pcap" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do
	ip netns exec "$ns_s" bash -c "exec 3<>/dev/tcp/$S1/443" 2>/dev/null &&
		ip netns exec "$ns_s" bash -c "exec 3<>/dev/tcp/$S1/80" 2>/dev/null && break
	sleep 0.1
done
sleep 1 # flowtrack's and tcpdump's captures are open

# The curl cases: client port, URL, extra options, expected name, source.
cur() {
	local port=$1 url=$2 want=$3 src=$4
	shift 4
	log "curl $url from port $port $*"
	ip netns exec "$ns_c" curl -sS -k --max-time 10 --local-port "$port" "$@" -o /dev/null "$url" >>"$out/log" 2>&1
	printf '%s\t%s\t%s\n' "$port" "$want" "$src" >>"$out/expect.tsv"
}
: >"$out/expect.tsv"
cur 41001 "https://alpha.$D/" "alpha.$D" sni --tlsv1.3
cur 41002 "https://beta.$D/" "beta.$D" sni --tlsv1.2 --tls-max 1.2 --ciphers 'ALL:@SECLEVEL=0'
cur 41003 "http://plain.$D/" "plain.$D" host
cur 41004 "https://www.$D/" "www.$D" sni --tlsv1.3
cur 41005 "https://split.$D/" "split.$D" sni --tlsv1.3
cur 41006 "https://split.$D/" "split.$D" sni --tlsv1.2 --tls-max 1.2 --ciphers 'ALL:@SECLEVEL=0'
# A first payload that is neither TLS nor HTTP: named by DNS.
log "raw.$D:80 from port 41007"
ip netns exec "$ns_c" bash -c "exec 3<>/dev/tcp/raw.$D/80 && printf 'hello\r\n\r\n' >&3 && timeout 5 cat <&3 >/dev/null" >>"$out/log" 2>&1 || true
printf '%s\t%s\t%s\n' "raw" "raw.$D" dns >>"$out/expect.tsv"

if [ "$chromium" = 1 ]; then
	prof=$(mktemp -d "$work/chromium.XXXXXX")
	log "chromium https://alpha.$D/page.html"
	ip netns exec "$ns_c" timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic \
		--no-first-run --disable-background-networking --disable-component-update --disable-sync \
		--ignore-certificate-errors --user-data-dir="$prof" --virtual-time-budget=5000 \
		--dump-dom "https://alpha.$D/page.html" >"$out/chromium.html" 2>>"$out/log" || log "chromium failed: $?"
	printf '%s\t%s\n' "$S1:443" "alpha.$D" >"$out/chromium.tsv"
	printf '%s\t%s\n' "$S2:443" "img.$D" >>"$out/chromium.tsv"
fi

sleep 1
kill -INT "$ftpid"
wait "$ftpid" || log "flowtrack exited $?"
log "done"
