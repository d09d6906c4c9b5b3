# flowtrack in a container. Build: docker build -t flowtrack .
# Run (live capture needs the host's network and two capabilities):
#   docker run --rm -it --network host --cap-add NET_RAW --cap-add NET_ADMIN flowtrack -i eth0
# Replay a file:
#   docker run --rm -v "$PWD/pcaps:/pcaps:ro" flowtrack -r /pcaps/wikipedia.pcap -o table

FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpcap-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags='-s -w' -o /out/flowtrack .

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpcap0.8 libcap2-bin \
	&& rm -rf /var/lib/apt/lists/* \
	&& useradd --system --uid 10001 --no-create-home flowtrack
COPY --from=build /out/flowtrack /usr/local/bin/flowtrack
# File capabilities let the non-root user capture.
RUN setcap cap_net_raw,cap_net_admin+eip /usr/local/bin/flowtrack
USER flowtrack
ENTRYPOINT ["/usr/local/bin/flowtrack"]
