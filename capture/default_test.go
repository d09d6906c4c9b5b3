package capture

import (
	"os/exec"
	"strings"
	"testing"
)

func TestParseRoutes(t *testing.T) {
	if name, metric, ok := parseRoute4(strings.Fields("eth0	00000000	0100000A	0003	0	0	100	00000000	0	0	0")); !ok || name != "eth0" || metric != 100 {
		t.Errorf("IPv4 default route: %q %d %v", name, metric, ok)
	}
	if _, _, ok := parseRoute4(strings.Fields("eth0	0000000A	00000000	0001	0	0	0	00FFFFFF	0	0	0")); ok {
		t.Error("a subnet route taken for the default")
	}
	z := strings.Repeat("0", 32)
	line := z + " 00 " + z + " 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 wlan0"
	if name, metric, ok := parseRoute6(strings.Fields(line)); !ok || name != "wlan0" || metric != 1024 {
		t.Errorf("IPv6 default route: %q %d %v", name, metric, ok)
	}
}

// TestDefaultInterfaceMatchesIP compares with what `ip route` says.
func TestDefaultInterfaceMatchesIP(t *testing.T) {
	out, err := exec.Command("ip", "-4", "route", "show", "default").Output()
	if err != nil || len(out) == 0 {
		t.Skip("no IPv4 default route here (or no ip command)")
	}
	f := strings.Fields(string(out))
	want := ""
	for i := range f {
		if f[i] == "dev" && i+1 < len(f) {
			want = f[i+1]
			break
		}
	}
	if got := DefaultInterface(); got != want {
		t.Errorf("DefaultInterface() = %q, ip route says %q", got, want)
	}
}
