package ui

import (
	"os"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/flowtrack/flowtrack/flows"
)

// theme holds every style the UI draws with. Without colour (NO_COLOR) it
// falls back on attributes only: bold, dim, underline and reverse.
type theme struct {
	color      bool
	base       tcell.Style
	header     tcell.Style // table header row
	sorted     tcell.Style // the sort column's header
	group      [4]tcell.Style
	ended      tcell.Style // closed or retired rows
	fresh      tcell.Style // new rows, briefly
	selected   tcell.Style
	warn       tcell.Style
	problem    tcell.Style // a row's problem
	bar        tcell.Style // view bar
	barActive  tcell.Style
	key        tcell.Style // key names in the footer
	dim        tcell.Style
	tagKey     string // tview tags for the same styles in text views
	tagDim     string
	tagGroup   [4]string
	tagWarn    string
	tagHeading string
	tagProblem string
}

func newTheme(noColor bool) *theme {
	d := tcell.StyleDefault
	t := &theme{color: !noColor, base: d}
	if noColor {
		t.header = d.Bold(true)
		t.sorted = d.Bold(true).Underline(true)
		t.group = [4]tcell.Style{
			flows.GroupClosed:      d.Dim(true),
			flows.GroupConnecting:  d.Italic(true),
			flows.GroupEstablished: d.Bold(true),
			flows.GroupClosing:     d,
		}
		t.ended = d.Dim(true)
		t.fresh = d.Underline(true)
		t.selected = d.Reverse(true)
		t.warn = d.Bold(true).Reverse(true)
		t.problem = d.Bold(true)
		t.tagProblem = "[::b]"
		t.bar = d
		t.barActive = d.Reverse(true)
		t.key = d.Bold(true)
		t.dim = d.Dim(true)
		t.tagKey, t.tagDim, t.tagWarn, t.tagHeading = "[::b]", "[::d]", "[::br]", "[::bu]"
		t.tagGroup = [4]string{"[::d]", "[::i]", "[::b]", "[::-]"}
		return t
	}
	t.header = d.Bold(true).Foreground(tcell.ColorAqua)
	t.sorted = d.Bold(true).Foreground(tcell.ColorAqua).Underline(true)
	t.group = [4]tcell.Style{
		flows.GroupClosed:      d.Foreground(tcell.ColorGray),
		flows.GroupConnecting:  d.Foreground(tcell.ColorYellow),
		flows.GroupEstablished: d.Foreground(tcell.ColorLime),
		flows.GroupClosing:     d.Foreground(tcell.ColorOrange),
	}
	t.ended = d.Foreground(tcell.ColorGray).Dim(true)
	t.fresh = d.Background(tcell.ColorNavy)
	t.selected = d.Reverse(true)
	t.warn = d.Foreground(tcell.ColorBlack).Background(tcell.ColorYellow).Bold(true)
	t.problem = d.Foreground(tcell.ColorRed).Bold(true)
	t.tagProblem = "[red::b]"
	t.bar = d.Foreground(tcell.ColorSilver)
	t.barActive = d.Foreground(tcell.ColorBlack).Background(tcell.ColorAqua).Bold(true)
	t.key = d.Foreground(tcell.ColorAqua).Bold(true)
	t.dim = d.Foreground(tcell.ColorGray)
	t.tagKey, t.tagDim, t.tagWarn, t.tagHeading = "[aqua::b]", "[gray::]", "[black:yellow:b]", "[aqua::b]"
	t.tagGroup = [4]string{"[gray::]", "[yellow::]", "[lime::]", "[orange::]"}
	return t
}

// noColor reports whether the NO_COLOR convention asks for no colour.
func noColor() bool { return os.Getenv("NO_COLOR") != "" }

// useTerminalDefaults makes tview draw on the terminal's own background and
// foreground rather than black and white.
func useTerminalDefaults() {
	s := &tview.Styles
	s.PrimitiveBackgroundColor = tcell.ColorDefault
	s.ContrastBackgroundColor = tcell.ColorDefault
	s.MoreContrastBackgroundColor = tcell.ColorDefault
	s.PrimaryTextColor = tcell.ColorDefault
	s.BorderColor = tcell.ColorDefault
	s.TitleColor = tcell.ColorDefault
	s.GraphicsColor = tcell.ColorDefault
}
