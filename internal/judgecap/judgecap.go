// Package judgecap replays a capture file as flowtrack does and judges
// its connections as the JSON output does (package diag), for tests.
package judgecap

import (
	"slices"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
)

// Conn is one connection's record and problems.
type Conn struct {
	Record   flows.Record
	Problems []diag.Problem
}

// File reads the capture at path into a table, judges every connection in
// the order its record is written (each against its service's earlier
// ones, through diag.Services), and returns them in the order they
// started, with the services' summaries. A file that cannot be opened is
// an error; one that fails part-way gives what was read before.
func File(path string, cfg diag.Config) ([]Conn, []diag.Summary, error) {
	svc := diag.NewServices(diag.New(cfg))
	var conns []Conn
	var tab *flows.Table
	judge := func(recs []flows.Record) {
		for i := range recs {
			conns = append(conns, Conn{Record: recs[i], Problems: svc.Judge(&recs[i], tab.Now())})
		}
	}
	tab = flows.NewTable(flows.Config{OnRetire: judge, TimeWait: cfg.TimeWait, IdleTimeout: cfg.IdleTimeout})
	src, err := capture.OpenFile(path, "")
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	d := capture.NewDecoder()
	var p flows.Packet
	for {
		data, ci, link, err := src.Next()
		if err != nil {
			break // io.EOF, or a file cut short: what was read stays
		}
		if d.Decode(link, data, ci, &p) == capture.ResultTCP {
			tab.Apply(&p)
		}
	}
	tab.FlushEach(judge)
	slices.SortStableFunc(conns, func(a, b Conn) int {
		if c := a.Record.FirstSeen.Compare(b.Record.FirstSeen); c != 0 {
			return c
		}
		if a.Record.ID < b.Record.ID {
			return -1
		}
		return 0
	})
	return conns, svc.Summaries(), nil
}
