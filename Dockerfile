# syntax=docker/dockerfile:1
# flowtrack in a container. Build: docker build -t flowtrack .
#
# Watch a host and feed its connections to a fleet's collectors (live
# capture needs the host's network and two capabilities; naming the process
# behind every connection with eBPF needs two more, and the host's PID
# namespace to read /proc of the processes; see docs/processes.md. Not
# --security-opt no-new-privileges, which would disable the binary's file
# capabilities):
#   docker run -d --name flowtrack --restart unless-stopped \
#     --network host --pid host \
#     --cap-add NET_RAW --cap-add NET_ADMIN --cap-add BPF --cap-add PERFMON \
#     flowtrack -i eth0 -o json --ipfix collector.example:4739 --metrics :9464
# Watch interactively:
#   docker run --rm -it --network host --pid host --cap-add NET_RAW --cap-add NET_ADMIN \
#     --cap-add BPF --cap-add PERFMON flowtrack -i eth0
# Replay a file:
#   docker run --rm -v "$PWD/pcaps:/pcaps:ro" flowtrack -r /pcaps/wikipedia.pcap -o table
#
# The base images are named by tag; a CI that wants reproducible images
# pins them by digest (FROM golang:1.26-bookworm@sha256:...).

FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpcap-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# cgo: gopacket's pcap binds libpcap, linked into the binary (pcapstatic).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=1 go build -tags pcapstatic -trimpath -ldflags='-s -w' -o /out/flowtrack .

FROM debian:bookworm-slim
# The binary needs only the C library; libcap2-bin is for setcap (getcap
# shows what the binary may do).
RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin \
	&& rm -rf /var/lib/apt/lists/* \
	&& useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin flowtrack
# File capabilities let the non-root user capture. The binary is installed
# and given them in one step: COPY does not keep file capabilities, and a
# setcap after a COPY would store the binary in two layers.
RUN --mount=type=bind,from=build,source=/out/flowtrack,target=/tmp/flowtrack \
	install -m 0755 /tmp/flowtrack /usr/local/bin/flowtrack \
	&& setcap cap_net_raw,cap_net_admin,cap_bpf,cap_perfmon+eip /usr/local/bin/flowtrack
USER flowtrack
# --metrics :9464 serves Prometheus metrics here (any port will do).
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/flowtrack"]
