package ui

import (
	"strings"

	"github.com/gdamore/tcell/v2"

	"github.com/flowtrack/flowtrack/diag"
)

// view is what the body of the screen shows.
type view uint8

const (
	viewConns view = iota
	viewServices
	viewDetail
	viewProblems
)

// views is a set of views an action applies in.
type views uint8

const (
	inConns    views = 1 << viewConns
	inServices views = 1 << viewServices
	inDetail   views = 1 << viewDetail
	inProblems views = 1 << viewProblems
	inLists          = inConns | inServices
	inViews          = inLists | inProblems // the lists and the Problems view
	inAll            = inViews | inDetail
)

// binding is one key that triggers an action.
type binding struct {
	key tcell.Key
	ch  rune // for tcell.KeyRune
}

func ch(r rune) binding       { return binding{tcell.KeyRune, r} }
func key(k tcell.Key) binding { return binding{k, 0} }

// action is one entry of the key table, which drives both the handling of
// keys and the hints in the footer and the help overlay (as k9s's
// action.go does), so the two never disagree.
type action struct {
	keys   []binding
	shown  string // the keys as the footer and help show them
	label  string // footer label; "" keeps it out of the footer
	help   string
	in     views
	replay bool // only when replaying a file
	names  bool // only with host names to show (Config.Names)
	local  bool // only with connection names (Config.Local)
	// do handles the key on the event goroutine; nil passes it on to the
	// focused widget (movement).
	do func(u *ui)
	// labelFn, if set, overrides label depending on the UI's state;
	// helpFn help.
	labelFn, helpFn func(u *ui) string
}

// keyTable is every key the UI understands, in the order the footer shows
// them (the footer drops hints from the end when the screen is narrow). It
// is set in init because the help overlay's handler reads it.
var keyTable []action

func init() { keyTable = keys() }

func keys() []action {
	return []action{
		{keys: []binding{ch('q'), key(tcell.KeyCtrlC)}, shown: "q", label: "quit", help: "quit (Ctrl-C too); the terminal is restored", in: inAll, do: (*ui).quit},
		{keys: []binding{ch('?')}, shown: "?", label: "help", help: "show or hide this help", in: inAll, do: (*ui).toggleHelp},
		{keys: []binding{key(tcell.KeyEnter)}, shown: "Enter", label: "details", help: "details: both ends, each state transition and its cause", in: inConns, do: (*ui).openDetail},
		{keys: []binding{key(tcell.KeyEnter)}, shown: "Enter", label: "connections", help: "list the connections of the selected service", in: inServices, do: (*ui).openService},
		{keys: []binding{key(tcell.KeyEnter)}, shown: "Enter", label: "connections", help: "list the connections with the selected problem", in: inProblems, do: (*ui).openProblem},
		{keys: []binding{key(tcell.KeyEnter), key(tcell.KeyEscape), key(tcell.KeyBackspace), key(tcell.KeyBackspace2)}, shown: "Esc Enter", label: "back", help: "back to the list", in: inDetail, do: (*ui).closeDetail},
		{keys: []binding{key(tcell.KeyTab)}, shown: "Tab", label: "services", help: "next view: connections, services, problems", in: inViews, do: (*ui).nextView,
			labelFn: func(u *ui) string { return viewNames[nextView(u.view, 1)] }},
		{keys: []binding{key(tcell.KeyBacktab)}, shown: "Shift-Tab", help: "the view before", in: inViews, do: (*ui).prevView},
		{keys: []binding{ch('/')}, shown: "/", label: "filter", help: "filter by address, port, state or conn_state", in: inViews, do: (*ui).openFilter,
			helpFn: func(u *ui) string {
				switch {
				case u.cfg.Processes && u.cfg.Names != nil:
					return "filter by address, port, state, process, host name or problem"
				case u.cfg.Processes:
					return "filter by address, port, state, conn_state, process or problem"
				case u.cfg.Names != nil:
					return "filter by address, port, state, conn_state, host name or problem"
				}
				return "filter by address, port, state, conn_state or problem"
			}},
		{keys: []binding{ch('n')}, shown: "n", label: "names", help: "host names (reverse DNS) or numeric addresses", in: inAll, names: true, do: (*ui).toggleNames,
			labelFn: func(u *ui) string {
				if u.showNames {
					return "numeric"
				}
				return "names"
			}},
		{keys: []binding{ch('a')}, shown: "a", label: "by name", help: "group the services by the name their clients asked for, or by address:port", in: inServices, local: true, do: (*ui).toggleByName,
			labelFn: func(u *ui) string {
				if u.svcByName {
					return "by address"
				}
				return "by name"
			}},
		{keys: []binding{ch('s')}, shown: "s", label: "sort", help: "sort by the next column (or click a column header)", in: inLists, do: (*ui).cycleSort},
		{keys: []binding{ch('S')}, shown: "S", label: "reverse", help: "reverse the sort order", in: inLists, do: (*ui).reverseSort},
		{keys: []binding{ch(' ')}, shown: "Space", label: "freeze", help: "freeze the display; capture and counting go on", in: inAll, do: (*ui).toggleFreeze,
			labelFn: func(u *ui) string {
				if u.frozen {
					return "unfreeze"
				}
				return "freeze"
			}},
		{keys: []binding{ch('!')}, shown: "!", label: "problems only", help: "show only the connections with a problem, or all", in: inLists, do: (*ui).toggleProblems,
			labelFn: func(u *ui) string {
				if u.onlyProblems {
					return "all"
				}
				return "problems only"
			}},
		{keys: []binding{ch('c')}, shown: "c", label: "hide closed", help: "hide or show closed connections (the dimmed rows)", in: inViews, do: (*ui).toggleClosed,
			labelFn: func(u *ui) string {
				if u.hideClosed {
					return "show closed"
				}
				return "hide closed"
			}},
		{keys: []binding{ch('p')}, shown: "p", label: "pause", help: "pause or resume the replay", in: inAll, replay: true, do: (*ui).togglePause,
			labelFn: func(u *ui) string {
				if u.cfg.Replay != nil && u.cfg.Replay.Paused() {
					return "resume"
				}
				return "pause"
			}},
		{keys: []binding{ch('+'), ch('=')}, shown: "+", label: "faster", help: "replay faster", in: inAll, replay: true, do: (*ui).faster},
		{keys: []binding{ch('-'), ch('_')}, shown: "-", label: "slower", help: "replay slower", in: inAll, replay: true, do: (*ui).slower},
		{keys: []binding{ch('.')}, shown: ".", label: "step", help: "pause the replay and step one packet", in: inAll, replay: true, do: (*ui).step},
		{keys: []binding{key(tcell.KeyEscape)}, shown: "Esc", help: "clear the filter; then back to Services or Problems", in: inViews, do: (*ui).escape},
		{keys: []binding{key(tcell.KeyUp), key(tcell.KeyDown), ch('k'), ch('j')}, shown: "↑ ↓ k j", help: "move", in: inAll},
		{keys: []binding{key(tcell.KeyPgUp), key(tcell.KeyPgDn), key(tcell.KeyCtrlB), key(tcell.KeyCtrlF)}, shown: "PgUp PgDn", help: "move a page", in: inAll},
		{keys: []binding{key(tcell.KeyHome), key(tcell.KeyEnd), ch('g'), ch('G')}, shown: "Home End g G", help: "first or last row", in: inAll},
	}
}

// available reports whether action a applies to this run of the UI: the
// replay keys only to a replay, the names key only with names to show.
func (u *ui) available(a *action) bool {
	return !(a.replay && u.cfg.Replay == nil) && !(a.names && u.cfg.Names == nil) && !(a.local && u.cfg.Local == nil)
}

// lookup returns the action for event ev in the UI's current state.
func (u *ui) lookup(ev *tcell.EventKey) *action {
	k, r := ev.Key(), ev.Rune()
	for i := range keyTable {
		a := &keyTable[i]
		if a.in&(1<<u.view) == 0 || !u.available(a) {
			continue
		}
		for _, b := range a.keys {
			if b.key == k && (k != tcell.KeyRune || b.ch == r) {
				return a
			}
		}
	}
	return nil
}

// hints returns the footer's key hints for the current state.
func (u *ui) hints() []hint {
	var hs []hint
	for i := range keyTable {
		a := &keyTable[i]
		if a.label == "" || a.in&(1<<u.view) == 0 || !u.available(a) {
			continue
		}
		label := a.label
		if a.labelFn != nil {
			label = a.labelFn(u)
		}
		hs = append(hs, hint{a.shown, label, a})
	}
	return hs
}

type hint struct {
	key, label string
	a          *action
}

// helpText renders the help overlay from the key table and the column
// descriptions.
func (u *ui) helpText() string {
	th := u.theme
	var b strings.Builder
	section := func(title string) { b.WriteString("\n " + th.tagHeading + title + "[-:-:-]\n") }
	line := func(k, text string) {
		b.WriteString(" " + th.tagKey + pad(k, 13) + "[-:-:-] " + escape(text) + "\n")
	}
	groups := []struct {
		title  string
		in     views
		replay bool
	}{
		{"Everywhere", inAll, false},
		{"Lists (connections, services, problems)", inViews, false},
		{"Connections and services", inLists, false},
		{"Connections", inConns, false},
		{"Services", inServices, false},
		{"Problems", inProblems, false},
		{"Details", inDetail, false},
		{"Replay", inAll, true},
	}
	for _, g := range groups {
		if g.replay && u.cfg.Replay == nil {
			continue
		}
		section(g.title)
		for i := range keyTable {
			if a := &keyTable[i]; a.in == g.in && a.replay == g.replay && u.available(a) {
				help := a.help
				if a.helpFn != nil {
					help = a.helpFn(u)
				}
				line(a.shown, help)
			}
		}
	}
	section("Filter")
	what := []string{"the client's or server's address:port", "a state name", "the conn_state"}
	if u.cfg.Processes {
		what = append(what, "the Process column (PID/command)")
	}
	if u.cfg.Names != nil {
		what = append(what, "either end's name:port while names are shown (n)")
	}
	list := strings.Join(what[:len(what)-1], ", ") + " or " + what[len(what)-1]
	if len(what) == 3 {
		list = what[0] + ", " + what[1] + " or " + what[2]
	}
	b.WriteString(wrap("Words separated by spaces must all match. A word matches part of "+list+
		", ignoring case. :443 is exactly port 443, 10.0.0.0/8 a prefix, and !word keeps what does not match."+nameFilterHelp(u)+
		" problem:KIND keeps the connections with that problem (problem:close-wait; part of a name, such as problem:reset, takes every kind it names), problem:any those with any.", 70))
	section("Connection columns")
	for c := range numCols {
		if c == colProcess && !u.cfg.Processes || c == colName && u.cfg.Local == nil {
			continue
		}
		line(columns[c].name, columns[c].help)
	}
	section("Service columns")
	for c := range numSvcCols {
		line(svcColumns[c].name, svcColumns[c].help)
	}
	section("Problems view columns")
	for c := range numProbCols {
		line(probColumns[c].name, probColumns[c].help)
	}
	section("Problems")
	b.WriteString(problemsHelp(th))
	section("Colours")
	b.WriteString(" " + th.tagGroup[1] + "SYN_SENT SYN_RECEIVED[-:-:-] connecting  " + th.tagGroup[2] + "ESTABLISHED[-:-:-]\n")
	b.WriteString(" " + th.tagGroup[3] + "FIN_WAIT_1 FIN_WAIT_2 CLOSE_WAIT CLOSING LAST_ACK TIME_WAIT[-:-:-] closing\n")
	b.WriteString(" " + th.tagGroup[0] + "CLOSED[-:-:-]. Dimmed rows are closed, or gone from the table and shown\n")
	b.WriteString(" for a while (the linger); new rows are highlighted briefly.\n")
	b.WriteString(" ↑ is client→server, ↓ server→client. Times are capture time.\n")
	return b.String()
}

// wrap breaks text into lines of at most width characters at spaces, each
// with a leading space, as the help's paragraphs are.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(text) {
		if i > 0 && n+1+strlen(w) > width {
			b.WriteString("\n")
			n = 0
		}
		if n > 0 {
			b.WriteString(" ")
			n++
		} else {
			b.WriteString(" ")
		}
		b.WriteString(escape(w))
		n += strlen(w)
	}
	b.WriteString("\n")
	return b.String()
}

// nameFilterHelp is the help's sentence on filtering by name, when
// connections have names.
func nameFilterHelp(u *ui) string {
	if u.cfg.Local == nil {
		return ""
	}
	return " While names are shown, a word also matches the Name column; name:text matches the Name column alone (name:wikipedia)."
}

// problemsHelp lists the kinds of problems for the help: each name (with
// the Problem column's, when shorter) and what it means.
func problemsHelp(th *theme) string {
	var b strings.Builder
	for k := range diag.NumKinds {
		name := k.String()
		if s := shortKind(k); s != name {
			name += " (" + s + ")"
		}
		b.WriteString(" " + th.tagProblem + name + "[-:-:-]\n")
		for _, l := range strings.SplitAfter(strings.TrimSuffix(wrap(problemHelp[k], 66), "\n"), "\n") {
			b.WriteString("  " + l) // under the name
		}
		b.WriteString("\n")
	}
	return b.String()
}
