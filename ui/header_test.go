package ui

import (
	"strings"
	"testing"
)

// TestHeaderLongPath: however long the capture's path (a repository cloned
// deep in a temporary directory), the header keeps the connection counts
// whole at 80 columns: it shortens the path first, to its base name, then
// with an ellipsis in its middle, and the counts last.
func TestHeaderLongPath(t *testing.T) {
	h := newHarness(t, 80, 24, scenario())
	deep := "/tmp/" + strings.Repeat("a-rather-long-directory-name/", 8) + "pcaps/wikipedia.pcap"
	longName := "/srv/captures/capture-of-a-very-busy-web-server-on-a-monday-morning-2026-01-02.pcap"
	for _, c := range []struct {
		source string
		width  int
		want   string
	}{
		{deep, 80, " wikipedia.pcap  2026-01-02 03:04:07.000  1x  0 pkt/s  7 active / 8 connections"},
		{longName, 80, " capture-of-a-v…2026-01-02.pcap  03:04:07  1x  0 pkt/s  7 active / 8 connections"},
		// Narrower still: the path down to minPath, then the counts short.
		{deep, 50, " wikip…a.pcap  03:04:07  1x  0 pkt/s  7/8 conns"},
		{longName, 50, " captu…2.pcap  03:04:07  1x  0 pkt/s  7/8 conns"},
		{longName, 300, " " + longName + "  2026-01-02 03:04:07.000  replay 1x  0 pkt/s 0B/s  7 active / 8 connections"},
		{"test.pcap", 80, " test.pcap  2026-01-02 03:04:07.000  1x  0 pkt/s  7 active / 8 connections"},
	} {
		h.source.Store(&c.source)
		h.resize(c.width, 24)
		h.tick()
		if got := strings.Split(h.text(), "\n")[0]; got != c.want {
			t.Errorf("%d columns, capture %s:\nheader %q\nwant   %q", c.width, c.source, got, c.want)
		}
	}
}

func TestEllipsize(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"wikipedia.pcap", 20, "wikipedia.pcap"},
		{"wikipedia.pcap", 14, "wikipedia.pcap"},
		{"wikipedia.pcap", 13, "wikipe…a.pcap"},
		{"wikipedia.pcap", 12, "wikip…a.pcap"},
		{"äöüäöü", 5, "äö…öü"},
		{"abc", 2, "abc"}, // too short for an ellipsis to help
	} {
		if got := ellipsize(c.s, c.n); got != c.want {
			t.Errorf("ellipsize(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}
