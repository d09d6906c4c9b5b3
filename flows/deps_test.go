package flows

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoCaptureOrUIImports keeps the dependency rule: flows imports
// neither gopacket nor any terminal UI package.
func TestNoCaptureOrUIImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"gopacket", "tview", "tcell"} {
			if strings.Contains(dep, banned) {
				t.Errorf("flows depends on %s", dep)
			}
		}
	}
}
