// Package ui shows the connection table live in a terminal.
//
// # Data flow
//
// The UI never touches the flow table per packet. A builder goroutine takes
// a snapshot of the table on a ticker (at most ten a second, slower when a
// snapshot is expensive), merges the records of connections that recently
// left the table (see [Retired]), and filters, sorts and aggregates them into
// an immutable frame. It then swaps the frame in with one QueueUpdateDraw.
// The connection and service tables are virtual: they format only the rows
// on screen, so a million connections cost no more to draw than ten.
//
// Once the table holds many connections (50,000), a frame takes only the
// connections that changed since the last one, from the table's change
// lists (flows.Config.Changes, which the table must have set), and builds
// on the frame shown (incremental.go); a full snapshot still comes every
// 30 seconds and whenever the changes are too many to list.
//
// # Processes and names
//
// For a live capture, Config.Local names the local process behind each
// connection and the kernel's own states of its endpoints. The builder
// calls it for every row of every full snapshot, and for the changed rows
// of an incremental frame (a lookup in memory that the
// caller refreshes in the background, never per packet), and rows keep
// the process as an index into a table of names, so that frames stay free
// of pointers. Host names (Config.Names) are asked for only when a row is
// drawn, on the event goroutine: the lookup never blocks, costs a few
// dozen map reads a frame whatever the table's size, and names first what
// is on screen. The filter asks for the names of the rows it tests, on the
// builder goroutine, while names are shown.
//
// # Concurrency
//
// UI state (view, sort, filter, freeze, selection) lives on the tview event
// goroutine and changes only there; key handlers publish a new request for
// the builder and wake it without blocking, and never call Draw or
// QueueUpdate. The builder only reads the frame it last handed over, which
// the event goroutine no longer changes.
//
// # Clock
//
// Ages, idle times, rates and the linger of closed connections run on
// capture time (the newest packet's timestamp), like the flow table's
// timers, so a replay shows what happened at the pace it happened. Only the
// brief highlight of new rows uses the wall clock.
package ui
