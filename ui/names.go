package ui

import (
	"net/netip"
	"strconv"
)

// Host names are looked up when a row is drawn, on the event goroutine:
// Names.Name never blocks, and asking only for the rows on screen costs a
// few dozen map lookups a frame whatever the size of the table, and gets
// the names a user looks at first. The filter asks the builder's own
// question (see filter.nameContains).

// hostPort returns "name:port" when names are shown and ap's name is
// known, else ap's numeric form.
func (u *ui) hostPort(ap netip.AddrPort) string {
	if n := u.hostName(ap.Addr()); n != "" {
		return n + ":" + strconv.Itoa(int(ap.Port()))
	}
	return ap.String()
}

// endpointText is a service's "address:port", or "name:port", with
// " vlan N" for tagged traffic.
func (u *ui) endpointText(e endpoint) string {
	if n := u.hostName(e.addrPort().Addr()); n != "" {
		s := n + ":" + strconv.Itoa(int(e.port))
		if e.vlan.N > 0 {
			s += " vlan " + e.vlan.String()
		}
		return s
	}
	return e.String()
}

// hostName returns a's name when names are shown and it is known, else "".
func (u *ui) hostName(a netip.Addr) string {
	if !u.showNames || u.cfg.Names == nil {
		return ""
	}
	n, _ := u.cfg.Names.Name(a)
	return n
}

// nameWidths are the widest names of the address columns seen on screen
// since names were last shown. They only grow, so that columns do not
// jump as the user scrolls; they take only the room that the columns
// chosen for the numeric addresses leave over (see growNames).
type nameWidths [2]int

// seen widens w for text in column i; it reports whether w grew.
func (w *nameWidths) seen(i int, text string) bool {
	if n := strlen(text); n > w[i] {
		w[i] = n
		return true
	}
	return false
}

// growNames gives the columns at idx (the address columns) up to want
// characters each, out of the room left in width by ws, in turns.
func growNames(ws []int, idx [2]int, want nameWidths, width int) {
	free := width - (sum(ws) + len(ws) - 1)
	for free > 0 {
		grown := false
		for k, i := range idx {
			if i >= 0 && ws[i] < want[k] && free > 0 {
				ws[i]++
				free--
				grown = true
			}
		}
		if !grown {
			return
		}
	}
}

func (u *ui) toggleNames() {
	u.showNames = !u.showNames
	u.conns.c.names = nameWidths{}
	u.conns.c.lay.width = -1
	u.svcs.c.names = nameWidths{}
	u.svcs.c.width = -1
	u.publish()
}
