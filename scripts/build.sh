#!/usr/bin/env bash
# build.sh [OUT]: build flowtrack (to ./flowtrack by default), with libpcap
# linked into the binary where its static library is installed (the build
# tag pcapstatic, capture/pcapstatic.go), dynamically elsewhere. Run from
# anywhere; GO names the go command.
set -euo pipefail
out=$(realpath -m "${1:-flowtrack}")
go=${GO:-go}
cd "$(dirname "$0")/.."
if "$go" build -tags pcapstatic -o "$out" . 2>/dev/null; then
	exit 0
fi
echo "build.sh: no static libpcap (or libdbus) to link in: linking libpcap dynamically" >&2
exec "$go" build -o "$out" .
