#!/usr/bin/env bash
# Installs what flowtrack needs to build and test on Debian or Ubuntu:
# libpcap (headers for cgo), and for the live tests (tools/netns-record,
# run as root) tcpdump, iproute2 (ip, ss, tc), nftables, ethtool and curl.
# nfdump (nfcapd and nfdump) is the IPFIX collector the export tests run;
# tmux is the terminal the end-to-end test of the UI runs it in; tcpreplay
# sends the frames that the AF_PACKET and libpcap captures are compared on.
# The live names test (tools/names-live) runs nginx-light, dnsmasq-base,
# curl, chromium and openssl between namespaces, and tshark to check it.
# Idempotent: installs only what is missing.
set -euo pipefail
pkgs=(libpcap-dev gcc tcpdump iproute2 nftables ethtool curl nfdump tmux nginx-light dnsmasq-base chromium openssl tshark tcpreplay)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
