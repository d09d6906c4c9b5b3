package peek

import (
	"net/netip"
	"strings"
)

// maxName is the longest name kept: a DNS name's text form is at most 253
// characters (RFC 1035's 255 octets on the wire).
const maxName = 253

// hostName returns b as a host name in lower case, without a trailing dot,
// if it is one: 1 to 253 characters of letters, digits, '-', '_' and '.',
// no empty label, and not an IP address (a name is what a client asked
// for; an address names nothing more than the address itself). Anything
// else, including bytes a terminal or a JSON reader would choke on, is
// not a name.
func hostName(b []byte) (string, bool) {
	if n := len(b); n > 0 && b[n-1] == '.' {
		b = b[:n-1]
	}
	if len(b) == 0 || len(b) > maxName {
		return "", false
	}
	upper := false
	prev := byte('.')
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c >= 'A' && c <= 'Z':
			upper = true
		case c == '.':
			if prev == '.' {
				return "", false
			}
		default:
			return "", false
		}
		prev = c
	}
	if prev == '.' {
		return "", false // an empty last label
	}
	s := string(b)
	if upper {
		s = strings.ToLower(s)
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return "", false
	}
	return s, true
}
