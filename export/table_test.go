package export

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"text/tabwriter"

	"github.com/flowtrack/flowtrack/diag"
	"github.com/flowtrack/flowtrack/flows"
	"github.com/flowtrack/flowtrack/local"
)

// tabwriterTable writes the table as text/tabwriter lays it out (padding
// 2, no flags), each line's cells made with fmt: the layout WriteTable
// promises, made the plain way.
func tabwriterTable(w io.Writer, recs []*flows.Record, annotate local.Lookup, kinds func(*flows.Record) diag.Set) error {
	var locals []local.Info
	names, sockets := false, false
	if annotate != nil {
		locals = make([]local.Info, len(recs))
		for i := range recs {
			locals[i] = annotate(recs[i])
			names = names || locals[i].ServerName != ""
			sockets = sockets || locals[i].Sockets
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "Proto\tClient\tServer"
	if names {
		head += "\tName"
	}
	head += "\tClient state\tServer state\tPkts\tBytes\tPkts c>s/s>c\tBytes c>s/s>c\tRTT\tRetrans\tZeek\tFlags"
	if kinds != nil {
		head += "\tProblems"
	}
	if sockets {
		head += "\tProcess"
	}
	fmt.Fprintln(tw, head)
	for i := range recs {
		r := recs[i]
		var l local.Info
		if locals != nil {
			l = locals[i]
		}
		rtt := "-"
		if r.RTT >= 0 {
			rtt = fmtRTT(r.RTT)
		}
		fmt.Fprintf(tw, "tcp\t%s\t%s", r.Client, r.Server)
		if names {
			name := "-"
			if l.ServerName != "" {
				name = l.ServerName + " (" + l.NameSource + ")"
			}
			fmt.Fprintf(tw, "\t%s", name)
		}
		fmt.Fprintf(tw, "\t%s\t%s\t%d\t%s\t%d/%d\t%s/%s\t%s\t%d/%d\t%s\t%s",
			StateText(r.ClientState, r.ClientDoubt), StateText(r.ServerState, r.ServerDoubt),
			r.C2S.Packets+r.S2C.Packets, HumanBytes(r.C2S.Bytes+r.S2C.Bytes),
			r.C2S.Packets, r.S2C.Packets, HumanBytes(r.C2S.Bytes), HumanBytes(r.S2C.Bytes),
			rtt, r.C2S.Retransmits, r.S2C.Retransmits, r.ConnState(), flagsText(r))
		if kinds != nil {
			fmt.Fprintf(tw, "\t%s", kinds(r))
		}
		if sockets {
			fmt.Fprintf(tw, "\t%s", processText(&l))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// FuzzWriteTable: WriteTable lays out any names and process names (from
// the wire and from the host: tabs, line breaks, tabwriter's escape byte,
// wide runes) as text/tabwriter does, with and without the annotation's
// and the problems' columns.
func FuzzWriteTable(f *testing.F) {
	for _, s := range [][2]string{{"example.com", "curl"}, {"", ""}, {"caf\u00e9.example", "n\u00e4me"},
		{"a\tb", "x"}, {"h", "two\nlines"}, {"\xff", "p"}, {"v\vf\f", "q"}, {"x", "\xffesc\xff"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, process string) {
		rs := synRecords(3)
		rs[1].RTT = 1234567
		rs[2].C2S.Bytes, rs[2].S2C.Packets = 123456789, 7
		recs := []*flows.Record{&rs[0], &rs[1], &rs[2]}
		lookup := func(r *flows.Record) local.Info {
			if r.Client.Addr().As4()[3] == 1 {
				return local.Info{Sockets: true, PID: 7, Process: process, ServerName: name, NameSource: "sni"}
			}
			return local.Info{}
		}
		kinds := func(r *flows.Record) diag.Set {
			if r.Client.Addr().As4()[3] == 2 {
				return diag.Set(0).Add(diag.Refused).Add(diag.SlowConnect)
			}
			return 0
		}
		for _, c := range []struct {
			annotate local.Lookup
			kinds    func(*flows.Record) diag.Set
		}{{nil, nil}, {lookup, nil}, {nil, kinds}, {lookup, kinds}} {
			var got, want bytes.Buffer
			if err := WriteTable(&got, recs, c.annotate, c.kinds); err != nil {
				t.Fatal(err)
			}
			if err := tabwriterTable(&want, recs, c.annotate, c.kinds); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("WriteTable:\n%q\ntabwriter:\n%q", got.String(), want.String())
			}
		}
	})
}
