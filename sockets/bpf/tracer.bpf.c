// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//
// tracer.bpf.c tells user space which process is behind each TCP socket
// of this host, at the moments the process is known: when it connects
// (fexit on tcp_connect, once the 4-tuple is complete), when it accepts
// (fexit on inet_csk_accept), and when it listens (the tracepoint
// sock:inet_sock_set_state, entering LISTEN). Closes, and listeners that
// stop listening, come from the same tracepoint. Nothing runs per packet.
//
// On kernels without fentry/fexit (no trampolines, or a kernel locked
// down against them), the tracepoint names connecting processes the way
// tcplife does: it remembers the process that moves a socket to SYN_SENT
// (in connect, before the source port is chosen) and reports it when the
// socket leaves SYN_SENT. Accepting processes are named where accept(2)
// and accept4(2) return, from the trace events syscalls:sys_exit_accept
// and sys_exit_accept4 or, where those cannot be attached (no tracefs),
// the raw tracepoint sys_exit: the descriptor they return leads to the
// socket. A connection to a listener is also reported when it is
// ESTABLISHED, and user space credits it to the process that listens
// until an accept names its own: that covers what no accept(2) reports
// (io_uring, connections never accepted).
//
// Build: make generate (bpf2go, clang; see sockets/gen.go).

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define S_IFMT 0170000
#define S_IFSOCK 0140000

// Linux TCP states (include/net/tcp_states.h).
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define TCP_LISTEN 10

// What an event reports; user space (sockets/tracer_linux.go) has the
// same values.
enum kind {
	KIND_CONNECT = 1, // the process connected the socket
	KIND_ACCEPT = 2,  // the process accepted the socket
	KIND_LISTEN = 3,  // the process made the socket listen
	KIND_CLOSE = 4,   // the socket was closed (any context: no process)
	KIND_UNLISTEN = 5, // a listening socket stopped listening
	KIND_CONNECTED = 6, // tracepoint path: ESTABLISHED, with the process that connected it
	KIND_PASSIVE = 7, // tracepoint path: a connection to a listener ESTABLISHED (no process)
};

// event is one ring buffer record. The Go side decodes it by hand
// (tracer_linux.go), so the layout is fixed: 8-byte fields first.
struct event {
	__u64 ts;     // bpf_ktime_get_ns: CLOCK_MONOTONIC
	__u64 cgroup; // the process's cgroup v2 id
	__u64 pstart; // the process's start time (boot-based ns), to tell a reused PID
	__u32 netns;  // the socket's network namespace inode
	__u32 tgid;   // process
	__u32 tid;    // thread
	__u32 uid;    // the process's real uid
	__u8 saddr[16]; // local address (IPv4 in the first 4 bytes)
	__u8 daddr[16]; // remote address
	__u16 sport;  // local port, host order
	__u16 dport;  // remote port, host order
	__u16 family; // AF_INET or AF_INET6
	__u8 kind;
	__u8 state;   // for KIND_CLOSE: the state the socket left
	char comm[16];
};

// For bpf2go to find the type and emit it in Go (tracerEvent).
const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); // user space may change it before loading
} events SEC(".maps");

// lost counts the events the ring buffer had no room for, per CPU.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

// who is a process remembered for a socket between SYN_SENT and
// ESTABLISHED (tracepoint path only).
struct who {
	__u64 cgroup;
	__u64 pstart;
	__u32 tgid;
	__u32 tid;
	__u32 uid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct who);
} connecting SEC(".maps");

// Set by user space before loading: whether the tracepoint must name
// connecting processes itself (fexit is not available).
volatile const __u8 tp_connect = 0;

// Set by user space before loading, when sys_exit names accepting
// processes: the numbers of accept(2) and accept4(2) on the kernel's
// architecture.
volatile const __s64 nr_accept = -1;
volatile const __s64 nr_accept4 = -1;

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);
	if (n)
		*n += 1; // per CPU: no other writer
}

// fill_sock copies a socket's addresses, ports, family and namespace.
static __always_inline void fill_sock(struct event *e, struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->family = family;
	// skc_num is the bound port; a socket entering CLOSE has already
	// given its port back (inet_put_port zeroes it), but inet_sport, the
	// port its packets carry, is kept.
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (!e->sport)
		e->sport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	e->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO((__u32 *)e->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)e->daddr, sk, __sk_common.skc_daddr);
	}
}

// current_start is when the calling process (its thread group leader)
// started, as /proc/<pid>/stat counts it (start_boottime).
static __always_inline __u64 current_start(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(task, group_leader, start_boottime);
}

// current_comm copies the command name of the calling process (its thread
// group leader's, as /proc/<pid>/comm shows it), not the thread's: a
// browser connects from threads named after their jobs.
static __always_inline void current_comm(char *comm)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	BPF_CORE_READ_STR_INTO((char(*)[16])comm, task, group_leader, comm);
}

// fill_current copies the calling process's identity.
static __always_inline void fill_current(struct event *e)
{
	__u64 id = bpf_get_current_pid_tgid();
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->cgroup = bpf_get_current_cgroup_id();
	e->pstart = current_start();
	current_comm(e->comm);
}

static __always_inline struct event *reserve(void)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = bpf_ktime_get_ns();
	return e;
}

// report sends an event for sk on behalf of the calling process.
static __always_inline int report(struct sock *sk, __u8 kind)
{
	if (!sk)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0; // MPTCP's accept returns its own kind of socket
	struct event *e = reserve();
	if (!e)
		return 0;
	e->kind = kind;
	fill_sock(e, sk);
	fill_current(e);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("fexit/tcp_connect")
int BPF_PROG(tcp_connect_exit, struct sock *sk, int ret)
{
	if (ret)
		return 0;
	return report(sk, KIND_CONNECT);
}

// Kernels whose tcp_connect cannot be traced: the two callers, which
// call it once the 4-tuple is complete.
SEC("fexit/tcp_v4_connect")
int BPF_PROG(tcp_v4_connect_exit, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	if (ret)
		return 0;
	return report(sk, KIND_CONNECT);
}

SEC("fexit/tcp_v6_connect")
int BPF_PROG(tcp_v6_connect_exit, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	if (ret)
		return 0;
	return report(sk, KIND_CONNECT);
}

// inet_csk_accept(struct sock *sk, struct proto_accept_arg *arg), from
// Linux 6.10.
SEC("fexit/inet_csk_accept")
int BPF_PROG(inet_csk_accept_exit, struct sock *sk, void *arg, struct sock *newsk)
{
	return report(newsk, KIND_ACCEPT);
}

// inet_csk_accept(struct sock *sk, int flags, int *err, bool kern),
// before Linux 6.10. User space loads the variant whose arguments the
// kernel's BTF describes.
SEC("fexit/inet_csk_accept")
int BPF_PROG(inet_csk_accept_exit_old, struct sock *sk, int flags, int *err, bool kern, struct sock *newsk)
{
	return report(newsk, KIND_ACCEPT);
}

// arm64's struct pt_regs, whose syscall number is not x86's orig_ax (CO-RE
// relocates the field, or the branch that reads it is dropped).
struct pt_regs___arm64 {
	int syscallno;
} __attribute__((preserve_access_index));

// syscall_nr is the number of the system call that regs entered with, -1
// on an architecture this does not know.
static __always_inline long syscall_nr(struct pt_regs *regs)
{
	if (bpf_core_field_exists(regs->orig_ax))
		return regs->orig_ax;
	struct pt_regs___arm64 *arm = (void *)regs;
	if (bpf_core_field_exists(arm->syscallno))
		return arm->syscallno;
	return -1;
}

// fd_sock returns the socket behind the calling process's descriptor fd,
// NULL if the descriptor is not a socket's.
static __always_inline struct sock *fd_sock(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	// a socket's file and the socket point at each other
	if (!sock || BPF_CORE_READ(sock, file) != f)
		return 0;
	return BPF_CORE_READ(sock, sk);
}

// The raw tracepoint sys_exit, through BTF, where neither fexit nor the
// trace events can name the process that accepts: every system call of
// the host ends here, so the number is checked first (a load from regs,
// no helper), and only accept(2) and accept4(2) that returned a
// descriptor go on. The descriptor is the
// caller's own, installed before the call returned: the socket it leads
// to is the one accepted (or, if another thread closed it and opened
// another socket under the same number meanwhile, a socket of the same
// process).
SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_accept, struct pt_regs *regs, long ret)
{
	long nr = syscall_nr(regs);
	if (nr != nr_accept && nr != nr_accept4)
		return 0;
	if (nr < 0 || ret < 0)
		return 0;
	return report(fd_sock(ret), KIND_ACCEPT);
}

// The trace events syscalls:sys_exit_accept and sys_exit_accept4 (user
// space attaches the program to both): they run only for these two calls,
// where sys_exit runs for every call.
SEC("tracepoint/syscalls/sys_exit_accept4")
int sys_exit_accept_event(struct syscall_trace_exit *ctx)
{
	if (ctx->ret < 0)
		return 0;
	return report(fd_sock(ctx->ret), KIND_ACCEPT);
}

// The tracepoint sock:inet_sock_set_state, attached through BTF (tp_btf):
// unlike a classic tracepoint, it needs no tracefs mounted.
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, struct sock *sk, int oldstate, int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	__u64 key = (__u64)sk;
	__u8 kind;

	if (newstate == TCP_LISTEN) {
		// In listen(), before an unbound socket gets its port: such a
		// listener (rare) is found by the scan at start only.
		if (BPF_CORE_READ(sk, __sk_common.skc_num) == 0)
			return 0;
		return report(sk, KIND_LISTEN);
	}
	if (tp_connect && newstate == TCP_SYN_SENT) {
		struct who w = {};
		__u64 id = bpf_get_current_pid_tgid();
		w.tgid = id >> 32;
		w.tid = (__u32)id;
		w.uid = (__u32)bpf_get_current_uid_gid();
		w.cgroup = bpf_get_current_cgroup_id();
		w.pstart = current_start();
		current_comm(w.comm);
		bpf_map_update_elem(&connecting, &key, &w, BPF_ANY);
		return 0;
	}
	if (tp_connect && oldstate == TCP_SYN_SENT) {
		// ESTABLISHED, or CLOSE for a connection refused or given up:
		// either way the 4-tuple is complete now.
		struct who *w = bpf_map_lookup_elem(&connecting, &key);
		if (w) {
			struct event *e = reserve();
			if (e) {
				e->kind = KIND_CONNECTED;
				fill_sock(e, sk);
				e->tgid = w->tgid;
				e->tid = w->tid;
				e->uid = w->uid;
				e->cgroup = w->cgroup;
				e->pstart = w->pstart;
				__builtin_memcpy(e->comm, w->comm, sizeof(e->comm));
				bpf_ringbuf_submit(e, 0);
			}
			bpf_map_delete_elem(&connecting, &key);
		}
	}
	if (tp_connect && oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED)
		// in softirq: user space credits it to the listener, whose
		// process accepts it (no accept is traced on this path)
		kind = KIND_PASSIVE;
	else if (oldstate == TCP_LISTEN && newstate == TCP_CLOSE)
		// not LISTEN -> SYN_RECV: a new connection's socket, cloned
		// from the listener, starts from the listener's state
		kind = KIND_UNLISTEN;
	else if (newstate == TCP_CLOSE)
		kind = KIND_CLOSE;
	else
		return 0;
	struct event *e = reserve();
	if (!e)
		return 0;
	e->kind = kind;
	e->state = oldstate;
	fill_sock(e, sk);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
