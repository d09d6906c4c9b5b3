#!/usr/bin/env bash
# The browser case of issue 14, by hand (root; Debian's chromium and nginx):
# in a network namespace of its own, headless Chromium loads a page of 40
# images from two local nginx servers that close every connection after one
# response (keepalive_timeout 0), while flowtrack -i lo -o json captures in
# the same namespace. Prints how many of the connections to the two servers
# name chromium, and how many name nginx at the server end (flowtrack shows
# the client's process when the client is local). Pass --no-ebpf to see
# the socket table alone. Bounded: Chromium gets 20 s, flowtrack 30 s.
#
# usage: sudo scripts/browser-names.sh [--no-ebpf]
set -euo pipefail
cd "$(dirname "$0")/.."
for c in chromium nginx; do command -v "$c" >/dev/null || { echo "needs $c (apt-get install $c)" >&2; exit 1; }; done
tmp=$(mktemp -d)
ns=browser-$$
ft=""
cleanup() {
	[ -n "$ft" ] && kill "$ft" 2>/dev/null || true
	for p in "$tmp"/nginx*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
	ip netns delete "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/flowtrack" .
ip netns add "$ns"
ip -n "$ns" link set lo up

mkdir -p "$tmp/www" "$tmp/profile"
printf 'GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;' >"$tmp/www/px.gif"
{
	echo '<!doctype html><html><body>'
	for i in $(seq 20); do
		echo "<img src=\"http://127.0.0.1:8081/px.gif?$i\"><img src=\"http://127.0.0.1:8082/px.gif?$i\">"
	done
	echo '</body></html>'
} >"$tmp/www/index.html"
for port in 8081 8082; do
	cat >"$tmp/nginx$port.conf" <<CONF
user root;
worker_processes 1;
pid $tmp/nginx$port.pid;
error_log $tmp/nginx$port.err;
events { worker_connections 256; }
http {
	access_log off;
	keepalive_timeout 0;
	client_body_temp_path $tmp/cb$port; proxy_temp_path $tmp/px$port; fastcgi_temp_path $tmp/fc$port;
	uwsgi_temp_path $tmp/uw$port; scgi_temp_path $tmp/sc$port;
	server { listen 127.0.0.1:$port; root $tmp/www; add_header Cache-Control no-store; }
}
CONF
	ip netns exec "$ns" nginx -c "$tmp/nginx$port.conf"
done
sleep 0.5
ip netns exec "$ns" "$tmp/flowtrack" -i lo -o json --duration 30s "$@" >"$tmp/out.json" 2>"$tmp/err" &
ft=$!
sleep 2
ip netns exec "$ns" timeout 20 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--user-data-dir="$tmp/profile" --dump-dom http://127.0.0.1:8081/ >/dev/null 2>"$tmp/chromium.err" || true
sleep 1
kill -INT "$ft"
wait "$ft" || true
ft=""
total=$(grep -cE '"server":"127.0.0.1:808[12]"' "$tmp/out.json" || true)
chromium=$(grep -E '"server":"127.0.0.1:808[12]"' "$tmp/out.json" | grep -c '"process":"chromium"' || true)
echo "connections to the two servers: $total; naming chromium: $chromium"
grep -E '^flowtrack: processes' "$tmp/err" || true
grep -E '"server":"127.0.0.1:808[12]"' "$tmp/out.json" | grep -v '"process":"chromium"' | head -3 || true
