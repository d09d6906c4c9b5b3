package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissing runs a test that lacks a command in a child process, with
// and without CI set: it fails under CI and skips elsewhere.
func TestMissing(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		LookPath(t, "no-such-command-testenv", "none")
		t.Fatal("LookPath returned for a missing command")
	}
	for _, c := range []struct {
		ci   string
		fail bool
		want string
	}{
		{"true", true, "--- FAIL"},
		{"", false, "--- SKIP"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+c.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.fail || !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "no-such-command-testenv is not installed") {
			t.Errorf("CI=%q: %v\n%s", c.ci, err, out)
		}
	}
}
