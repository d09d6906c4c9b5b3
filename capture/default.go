package capture

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// DefaultInterface returns the interface a capture without -i should use,
// as tcpdump picks one: the interface of the default route with the lowest
// metric (IPv4, then IPv6), else the first interface libpcap lists that is
// up and not loopback. It returns "" when there is none.
func DefaultInterface() string {
	if name := defaultRoute("/proc/net/route", parseRoute4); name != "" {
		return name
	}
	if name := defaultRoute("/proc/net/ipv6_route", parseRoute6); name != "" {
		return name
	}
	ifs, err := Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifs {
		if ifc.Name == "any" || ifc.Name == "lo" || len(ifc.Addresses) == 0 {
			continue
		}
		return ifc.Name
	}
	return ""
}

// defaultRoute reads a route table and returns the interface of its
// default route with the lowest metric.
func defaultRoute(path string, parse func([]string) (iface string, metric int, ok bool)) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	best, bestMetric := "", int(^uint(0)>>1)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if iface, metric, ok := parse(strings.Fields(sc.Text())); ok && metric < bestMetric && iface != "lo" {
			best, bestMetric = iface, metric
		}
	}
	return best
}

// parseRoute4 reads a line of /proc/net/route: Iface Destination Gateway
// Flags RefCnt Use Metric Mask ...; a default route has destination and
// mask 0 and is up (flag 1).
func parseRoute4(f []string) (string, int, bool) {
	if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" {
		return "", 0, false
	}
	flags, err1 := strconv.ParseUint(f[3], 16, 32)
	metric, err2 := strconv.Atoi(f[6])
	if err1 != nil || err2 != nil || flags&1 == 0 {
		return "", 0, false
	}
	return f[0], metric, true
}

// parseRoute6 reads a line of /proc/net/ipv6_route: destination, prefix
// length, source, source prefix, next hop, metric, refcnt, use, flags,
// device; a default route has destination ::/0, a next hop, and is up.
func parseRoute6(f []string) (string, int, bool) {
	if len(f) < 10 || f[0] != strings.Repeat("0", 32) || f[1] != "00" || f[4] == strings.Repeat("0", 32) {
		return "", 0, false
	}
	metric, err1 := strconv.ParseUint(f[5], 16, 32)
	flags, err2 := strconv.ParseUint(f[8], 16, 32)
	if err1 != nil || err2 != nil || flags&1 == 0 {
		return "", 0, false
	}
	return f[9], int(metric), true
}
