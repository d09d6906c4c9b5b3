package ui

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gdamore/tcell/v2"
)

// TestScreens drives the UI through its views and keys at two terminal
// sizes and compares each screen with a golden file.
func TestScreens(t *testing.T) {
	for _, size := range [][2]int{{120, 30}, {80, 24}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			h := newHarness(t, size[0], size[1], scenario())
			var out strings.Builder
			shot := func(name string) {
				fmt.Fprintf(&out, "=== %s\n%s", name, h.text())
			}
			shot("start: oldest first")
			h.keys("s")
			shot("s: sort by the next column on screen")
			h.keys("S")
			shot("S: reverse")
			h.keys("/443")
			shot("/443: filter as typed")
			h.key(tcell.KeyEnter)
			shot("Enter: filter kept")
			h.key(tcell.KeyEscape)
			shot("Esc: filter cleared")
			h.keys("c")
			shot("c: closed hidden")
			h.keys("c")
			h.key(tcell.KeyTab)
			shot("Tab: services")
			h.key(tcell.KeyEnter)
			shot("Enter: the connections of the first service")
			h.key(tcell.KeyEscape)
			shot("Esc: back to the services")
			h.key(tcell.KeyTab)
			shot("Tab: problems, the most severe first")
			h.key(tcell.KeyDown)
			h.key(tcell.KeyEnter)
			shot("Enter: the connections with the second problem")
			h.key(tcell.KeyEnter)
			shot("Enter: its details, with the problem and its packets")
			h.key(tcell.KeyEscape)
			h.key(tcell.KeyEscape)
			shot("Esc Esc: back to the problems")
			h.key(tcell.KeyTab)
			h.keys("!")
			shot("Tab, !: only the connections with problems")
			h.keys("!")
			h.keys("g")
			h.key(tcell.KeyEnter)
			shot("Enter: details of the first connection")
			h.key(tcell.KeyEscape)
			h.keys(" ")
			h.apply(pkt("10.0.0.7:40100", "10.0.0.2:80", 2, 1000, 0, 0, 3e9))
			h.tick()
			shot("Space: frozen; a new connection is not shown, the header counts it")
			h.keys(" ")
			h.tick()
			shot("Space again: live")
			h.keys("?")
			shot("?: help")
			h.keys("?")
			h.keys("q")
			if err := <-h.done; err != nil {
				t.Fatal(err)
			}
			h.done <- nil // for the cleanup
			golden(t, fmt.Sprintf("screens-%dx%d.txt", size[0], size[1]), out.String())
		})
	}
}
