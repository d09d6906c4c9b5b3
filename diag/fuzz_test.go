package diag

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/flowtrack/flowtrack/flows"
)

// FuzzJudge judges the records of arbitrary packet sequences on a few
// 4-tuples, through Services as the JSON output does, at arbitrary times
// after them: it must never panic, and its output is bounded (at most one
// problem of each kind, and one more of half-open; at most four evidence
// packets each; sentences of a few hundred bytes), agrees with Kinds, and
// each service's summary holds together.
func FuzzJudge(f *testing.F) {
	f.Add([]byte{0x02, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x12, 1, 0, 0, 0x10, 0, 0, 0, 0, 0, 1, 2, 3, 4})
	f.Add(make([]byte, 240))
	f.Fuzz(func(t *testing.T, data []byte) {
		var pkts []pk
		var at time.Duration
		for len(data) >= 12 {
			b := data[:12]
			data = data[12:]
			at += time.Duration(b[11]>>3) * 50 * time.Millisecond
			x := pk{from: "cs"[b[0]&1], flags: flows.Flags(b[2]) | flows.Flags(b[3]&1)<<8,
				seq: binary.BigEndian.Uint32(b[4:]) >> (b[1] >> 4), ack: binary.BigEndian.Uint32(b[8:]) >> (b[1] >> 4),
				n: uint32(b[3] >> 1), at: at, win: int(b[10]) - 1, ttl: 60 + b[11]&3, ts: uint32(at/time.Millisecond) + uint32(b[1]&7),
				port: 40000 + uint16(b[1]&3)}
			pkts = append(pkts, x)
		}
		recs, now := records(pkts)
		flows.SortByStart(recs)
		svc := NewServices(New(Config{TrendStep: time.Second}))
		for i := range recs {
			later := now.Add(time.Duration(len(pkts)%7) * 20 * time.Second)
			ps := svc.Judge(&recs[i], later)
			checkProblems(t, svc.j, &recs[i], svc.j.Until(&recs[i], later), ps)
			if len(ps) > int(NumKinds)+1 {
				t.Fatalf("%d problems", len(ps))
			}
		}
		for _, sm := range svc.Summaries() {
			if sm.Refused > sm.Attempts || sm.Attempts > sm.Conns || sm.RTTs > sm.Conns || sm.RTTP99 < sm.RTTMedian {
				t.Fatalf("summary %+v", sm)
			}
		}
	})
}
