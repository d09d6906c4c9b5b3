package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// pair is one scenario's two network namespaces, joined by a veth pair
// made inside them (nothing is added to the host's own namespace): the
// client's (veth vcli, 10.99.0.1/24, fd99::1/64) and the server's (vsrv,
// 10.99.0.2/24, fd99::2/64). Each has an nftables table "diag16" with an
// input chain "in", where a scenario drops the packets it loses.
type pair struct {
	cli, srv string // namespace names: diag16-PID-SCENARIO-{c,s}
}

const (
	cliAddr4 = "10.99.0.1"
	srvAddr4 = "10.99.0.2"
)

// nsPrefix starts every namespace of this program's, so that a run never
// touches another's (and removes only what an earlier run of its own left).
const nsPrefix = "diag16-"

// run runs a command with a deadline and returns its combined output.
func run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// newPair makes the namespaces of scenario sc, with its sysctls.
func newPair(sc *scenario) (*pair, error) {
	p := &pair{
		cli: fmt.Sprintf("%s%d-%s-c", nsPrefix, os.Getpid(), sc.name),
		srv: fmt.Sprintf("%s%d-%s-s", nsPrefix, os.Getpid(), sc.name),
	}
	steps := [][]string{
		{"ip", "netns", "add", p.cli},
		{"ip", "netns", "add", p.srv},
		{"ip", "-n", p.cli, "link", "add", "vcli", "type", "veth", "peer", "name", "vsrv", "netns", p.srv},
	}
	for _, side := range []struct {
		ns, ifc, a4, a6 string
		sysctls         []string
	}{{p.cli, "vcli", cliAddr4, "fd99::1", sc.cliSysctls}, {p.srv, "vsrv", srvAddr4, "fd99::2", nil}} {
		steps = append(steps,
			[]string{"ip", "-n", side.ns, "link", "set", "lo", "up"},
			// Segments as a real NIC puts them on the wire: MTU-sized,
			// with their checksums (no TSO, GSO or GRO super-packets).
			[]string{"ip", "netns", "exec", side.ns, "ethtool", "-K", side.ifc, "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off"},
			[]string{"ip", "-n", side.ns, "addr", "add", side.a4 + "/24", "dev", side.ifc},
			[]string{"ip", "-n", side.ns, "-6", "addr", "add", side.a6 + "/64", "dev", side.ifc, "nodad"},
			[]string{"ip", "-n", side.ns, "link", "set", side.ifc, "up"},
			[]string{"ip", "netns", "exec", side.ns, "nft", "add table inet diag16"},
			[]string{"ip", "netns", "exec", side.ns, "nft", "add chain inet diag16 in { type filter hook input priority 0; policy accept; }"},
		)
		for _, s := range side.sysctls {
			steps = append(steps, []string{"ip", "netns", "exec", side.ns, "sysctl", "-qw", s})
		}
	}
	for _, st := range steps {
		if _, err := run(10*time.Second, st[0], st[1:]...); err != nil {
			p.remove()
			return nil, err
		}
	}
	return p, nil
}

// remove deletes the namespaces, after ending any process still inside
// them (all started by this program).
func (p *pair) remove() {
	for _, ns := range []string{p.cli, p.srv} {
		removeNamespace(ns)
	}
}

func removeNamespace(ns string) {
	if out, err := run(5*time.Second, "ip", "netns", "pids", ns); err == nil {
		for _, f := range strings.Fields(out) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_, _ = run(5*time.Second, "ip", "netns", "del", ns)
}

// removeStale deletes the namespaces an earlier run of this program left
// (killed before it could clean up): diag16-PID-* whose PID is gone.
func removeStale() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, nsPrefix) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(strings.TrimPrefix(name, nsPrefix), "%d-", &pid); err != nil || pid <= 0 {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			continue // its run is still going
		}
		removeNamespace(name)
	}
}

// capture is tcpdump on the server's veth, writing the scenario's pcap.
type capture struct {
	cmd  *exec.Cmd
	errf string
}

// startCapture starts tcpdump in the server namespace for port, and
// waits until it listens.
func startCapture(p *pair, port int, pcap string) (*capture, error) {
	errf := pcap + ".tcpdump"
	f, err := os.Create(errf)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command("ip", "netns", "exec", p.srv, "tcpdump", "-i", "vsrv", "-s", "128", "-U", "--immediate-mode",
		"-Z", "root", "-n", "-w", pcap, fmt.Sprintf("tcp port %d", port))
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &capture{cmd: cmd, errf: errf}
	for range 500 {
		if b, _ := os.ReadFile(errf); bytes.Contains(b, []byte("listening on")) {
			return c, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.stop()
	return nil, errors.New("tcpdump did not start")
}

// stop ends tcpdump (SIGINT: it writes what it has) and waits for it.
func (c *capture) stop() {
	_ = c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	_ = os.Remove(c.errf)
}

// role is a role process of this program in a namespace.
type role struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

// startRole runs this program's `role` subcommand in namespace ns.
func startRole(bin, ns, scenario, side, ctl string, port int) (*role, error) {
	var log bytes.Buffer
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "role", "-scenario", scenario, "-side", side,
		"-server", fmt.Sprintf("%s:%d", srvAddr4, port), "-ctl", ctl)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &role{cmd: cmd, log: &log}, nil
}

// kill ends the role (it may be holding sockets on purpose) and waits.
func (r *role) kill() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// awaitFile waits up to limit for path to exist.
func awaitFile(path string, limit time.Duration) bool {
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return true
		}
	}
	return false
}

// mark creates ctl/name, to tell the orchestrator a step was reached.
func mark(ctl, name string) {
	_ = os.WriteFile(filepath.Join(ctl, name), nil, 0o644)
}
