// Package jsonrec decodes flowtrack's NDJSON output (-o json) as a client
// would: with encoding/json and the field names of the documented
// contract, independently of package export that writes it. Tests and
// the tools that check flowtrack's output read it through here.
package jsonrec

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// Record is one line of flowtrack's NDJSON output.
type Record struct {
	Event             string    `json:"event"` // --follow only
	PID               *int      `json:"pid"`   // live captures only
	Process           string    `json:"process"`
	KernelClientState string    `json:"kernel_client_state"`
	KernelServerState string    `json:"kernel_server_state"`
	Proto             string    `json:"proto"`
	Client            string    `json:"client"`
	Server            string    `json:"server"`
	ClientState       string    `json:"client_state"`
	ServerState       string    `json:"server_state"`
	ClientCertain     *bool     `json:"client_state_certain"` // present only when false
	ServerCertain     *bool     `json:"server_state_certain"`
	Midstream         bool      `json:"midstream"`
	Role              string    `json:"role"`
	PacketsC2S        uint64    `json:"packets_c2s"`
	PacketsS2C        uint64    `json:"packets_s2c"`
	BytesC2S          uint64    `json:"bytes_c2s"`
	BytesS2C          uint64    `json:"bytes_s2c"`
	PayloadC2S        uint64    `json:"payload_c2s"`
	PayloadS2C        uint64    `json:"payload_s2c"`
	RetransmitsC2S    uint64    `json:"retransmits_c2s"`
	RetransmitsS2C    uint64    `json:"retransmits_s2c"`
	GapsC2S           uint64    `json:"gaps_c2s"`
	GapsS2C           uint64    `json:"gaps_s2c"`
	RTTms             *float64  `json:"rtt_ms"`
	FirstSeen         string    `json:"first_seen"`
	LastSeen          string    `json:"last_seen"`
	ConnState         string    `json:"conn_state"`
	History           string    `json:"history"`
	Evicted           bool      `json:"evicted"`
	VLAN              []int     `json:"vlan"`
	Problems          []Problem `json:"problems"`

	// A --follow "problem" event's problem (docs/problems.md).
	Kind     string   `json:"kind"`
	Side     string   `json:"side"`
	Since    string   `json:"since"`
	Detail   string   `json:"detail"`
	Evidence []Packet `json:"evidence"`

	Raw string `json:"-"` // the line as written
}

// Problem is one of a record's problems.
type Problem struct {
	Kind     string   `json:"kind"`
	Side     string   `json:"side"`
	Since    string   `json:"since"`
	Detail   string   `json:"detail"`
	Evidence []Packet `json:"evidence"`
}

// Packet is one evidence packet of a problem.
type Packet struct {
	TS    string  `json:"ts"`
	From  string  `json:"from"`
	Flags string  `json:"flags"`
	Seq   *uint32 `json:"seq"`
	Ack   *uint32 `json:"ack"`
	Note  string  `json:"note"`
}

// Read decodes every line of r; blank lines are skipped.
func Read(r io.Reader) ([]Record, error) {
	var recs []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return recs, fmt.Errorf("line %d: %w: %q", n, err, line)
		}
		rec.Raw = string(line)
		recs = append(recs, rec)
	}
	return recs, sc.Err()
}
