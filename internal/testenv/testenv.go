// Package testenv lets a test say what it needs of the machine. CI (the
// CI environment variable set, as .ci/run runs) installs every package
// the tests need (scripts/setup.sh) and runs as root, so there a missing
// prerequisite fails the test rather than skipping it silently; on a
// developer's machine it skips, saying what is missing.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run in CI.
func CI() bool { return os.Getenv("CI") != "" }

// Missing ends the test for want of a prerequisite: it fails under CI and
// skips elsewhere, with the message either way.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf("CI is set, but a prerequisite is missing: "+format, args...)
	}
	t.Skipf(format, args...)
}

// LookPath returns the path of the command name, or ends the test as
// Missing does; pkg names the Debian package that has it.
func LookPath(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s is not installed (Debian package %s; scripts/setup.sh installs it)", name, pkg)
	}
	return p
}
