package export

import (
	"time"

	"github.com/flowtrack/flowtrack/diag"
)

// appendProblems appends the field name (`"problems":[...],`): each
// problem as an object with its kind, side, start, detail and evidence
// packets (docs/problems.md).
func appendProblems(b []byte, name string, problems []diag.Problem) []byte {
	b = append(append(append(b, '"'), name...), `":[`...)
	for i := range problems {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendProblemFields(b, &problems[i])
		b = append(b, '}')
	}
	return append(b, "],"...)
}

// appendProblemFields appends a problem's fields, without braces.
func appendProblemFields(b []byte, p *diag.Problem) []byte {
	b = appendString(b, "kind", p.Kind.String())
	b = appendString(b, "side", p.Side.String())
	b = p.Since.UTC().AppendFormat(appendKey(b, "since"), time.RFC3339Nano)
	b = append(b, `",`...)
	b = append(b, `"detail":`...)
	b = appendQuoted(b, p.Detail) // sentences may hold anything a name does
	b = append(b, `,"evidence":[`...)
	for i := range p.Evidence {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEvidence(b, &p.Evidence[i])
	}
	return append(b, ']')
}

// appendEvidence appends one evidence packet as an object: "ts", "from"
// (client or server), "flags" as tcpdump writes them, "seq" and "ack"
// when known, and "note".
func appendEvidence(b []byte, e *diag.Packet) []byte {
	b = append(b, `{"ts":"`...)
	b = e.At.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `",`...)
	from := "server"
	if e.FromClient {
		from = "client"
	}
	b = appendString(b, "from", from)
	if e.Flags != 0 {
		b = appendString(b, "flags", e.Flags.String())
	}
	if e.HasSeq {
		b = appendNumber(b, "seq", "", uint64(e.Seq))
	}
	if e.HasAck {
		b = appendNumber(b, "ack", "", uint64(e.Ack))
	}
	if e.Note != "" {
		b = append(b, `"note":`...)
		b = appendQuoted(b, e.Note)
		b = append(b, ',')
	}
	b[len(b)-1] = '}'
	return b
}
