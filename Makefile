# flowtrack: `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
PCAP  ?= pcaps/wikipedia.pcap

.PHONY: help setup build demo test check lint bench live generate

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'
	@grep -E '^[a-z]+-[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

setup: ## install the system packages flowtrack needs (idempotent; uses sudo when not root)
	@./scripts/setup.sh

build: setup ## build ./flowtrack (libpcap linked in where its static library is installed: scripts/build.sh)
	GO=$(GO) ./scripts/build.sh flowtrack

demo: build ## set up, build, and show every connection in a bundled capture
	./flowtrack -r $(PCAP) -o table

# The linters, pinned: `go run` of a fixed version builds them once into the
# Go build cache, so nothing needs installing.
STATICCHECK   := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOLANGCI_LINT := $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

lint: ## gofmt, vet, staticcheck, golangci-lint (.golangci.yml) and a go mod tidy check
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=darwin $(GO) build ./flows/ && GOOS=windows $(GO) build ./flows/ # flows is the standard library only: it builds anywhere
	$(STATICCHECK) ./...
	$(GOLANGCI_LINT) run ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

check: lint ## the fast lane for every edit: lint, then the short tests (no apt, no benchmarks)
	$(GO) test -pgo=off -short -count=1 ./... # -pgo=off: tests check behaviour; default.pgo only slows their compiling

test: setup lint ## the full lane (CI): set up, lint, every test with the race detector, every benchmark once
	$(GO) test -pgo=off -race -count=1 ./...
	FLOWTRACK_UI_INCREMENTAL=1 $(GO) test -pgo=off -race -count=1 ./ui # the UI's screens again, with incremental frames
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...

live: setup ## only the live test (root): flowtrack captures between two network namespaces, checked against ss
	$(GO) test -count=1 -v -run '^TestLive$$' ./tools/netns-record

bench: build ## run the benchmarks properly
	$(GO) test -run='^$$' -bench=. -benchmem -count=5 ./...

.PHONY: bench-compare
BENCHFLAGS ?=
bench-compare: setup ## flowtrack side by side with two bare loops (Go map, open addressing), softflowd, tcpdump, tshark (scripts/bench.sh; BENCHFLAGS=-quick; GOMAXPROCS=1 for one core)
	./scripts/bench.sh $(BENCHFLAGS)

generate: ## remake the eBPF objects and their Go (sockets/tracer_*.{go,o}) and bpf/vmlinux.h (needs clang, llvm, libbpf-dev, bpftool)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > sockets/bpf/vmlinux.h
	cd sockets && $(GO) generate ./...
