package sockets

// The eBPF programs (bpf/tracer.bpf.c) are compiled into tracer_bpfel.o
// and tracer_bpfeb.o, embedded by the generated tracer_bpfel.go and
// tracer_bpfeb.go; all four are committed, so that building flowtrack
// needs no clang. `make generate` remakes them (clang, llvm, libbpf-dev
// and bpftool, from Debian), and bpf/vmlinux.h from the running
// kernel's BTF.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -no-global-types -type event tracer bpf/tracer.bpf.c -- -I/usr/include
