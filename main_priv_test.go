package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/internal/testenv"
)

// TestDropPrivileges runs the real binary as root and reads the uid of the
// running process from /proc: --user drops root for a live capture, and a
// replay started through sudo becomes the sudo user.
func TestDropPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root: it checks that flowtrack drops root")
	}
	bin := buildFlowtrack(t)
	dir := filepath.Dir(bin)
	// The binary must be reachable by nobody.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	uidOf := func(env []string, args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "status"))
			if err != nil {
				break
			}
			for _, line := range strings.Split(string(status), "\n") {
				if strings.HasPrefix(line, "Uid:") && !strings.HasPrefix(strings.Fields(line)[1], "0") {
					return strings.Fields(line)[1]
				}
			}
		}
		return "0"
	}
	if uid := uidOf(nil, "-i", "lo", "-o", "json", "--user", "nobody", "--duration", "3s", "port", "1"); uid != "65534" {
		t.Errorf("live capture with --user nobody runs as uid %s, want 65534", uid)
	}
	// A FIFO keeps the replay open while the test looks at it.
	fifo := filepath.Join(dir, "in.pcap")
	if err := exec.Command("mkfifo", fifo).Run(); err != nil {
		testenv.Missing(t, "mkfifo: %v", err)
	}
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		data, _ := os.ReadFile("pcaps/eth-http-get.pcap")
		f.Write(data[:24]) // the file header, then nothing until the test ends
		time.Sleep(3 * time.Second)
		f.Close()
	}()
	if uid := uidOf([]string{"SUDO_UID=65534", "SUDO_GID=65534", "SUDO_USER=nobody"}, "-r", fifo, "-o", "json"); uid != "65534" {
		t.Errorf("replay started by sudo runs as uid %s, want 65534", uid)
	}
}

// TestInterfaceDisappears deletes the interface under a live capture, in a
// network namespace the test makes: flowtrack must stop at once with a
// clear message, not hang.
func TestInterfaceDisappears(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root: it makes a network namespace")
	}
	ns := "ftgone-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		testenv.Missing(t, "cannot make a network namespace: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	for _, args := range [][]string{
		{"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
		{"link", "set", "v0", "up"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			testenv.Missing(t, "ip %v: %v %s", args, err, out)
		}
	}
	bin := buildFlowtrack(t)
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "-i", "v0", "-o", "json")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Its capture is open once it holds its packet sockets (one per lane
	// through AF_PACKET, the default): a fixed second was too short on a
	// loaded machine, where flowtrack had not yet looked for v0.
	netnsPair{b: ns}.waitCapturing(t, &ftProc{cmd: cmd}, tableLanes())
	if out, err := exec.Command("ip", "-n", ns, "link", "del", "v0").CombinedOutput(); err != nil {
		t.Fatalf("deleting v0: %v %s", err, out)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(stderr.String(), "disappeared") {
			t.Fatalf("exit %v, stderr %q: want a failure that says the interface disappeared", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("flowtrack still running 5 s after its interface was deleted")
	}
}
