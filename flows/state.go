package flows

// State is the RFC 793 state of one endpoint of a connection, as that host's
// kernel would report it (netstat, ss). LISTEN is not a state of a
// connection's socket and never appears: a server endpoint that has not yet
// answered a SYN is CLOSED.
type State uint8

// Endpoint states. The zero value is StateClosed.
const (
	StateClosed State = iota
	StateSynSent
	StateSynReceived
	StateEstablished
	StateFinWait1
	StateFinWait2
	StateCloseWait
	StateClosing
	StateLastAck
	StateTimeWait
	numStates
)

var stateNames = [numStates]string{
	StateClosed:      "CLOSED",
	StateSynSent:     "SYN_SENT",
	StateSynReceived: "SYN_RECEIVED",
	StateEstablished: "ESTABLISHED",
	StateFinWait1:    "FIN_WAIT_1",
	StateFinWait2:    "FIN_WAIT_2",
	StateCloseWait:   "CLOSE_WAIT",
	StateClosing:     "CLOSING",
	StateLastAck:     "LAST_ACK",
	StateTimeWait:    "TIME_WAIT",
}

// String returns the state's name as netstat prints it ("SYN_SENT").
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "INVALID"
}

// ParseState returns the state with the given netstat name; it also accepts
// the names ss prints ("SYN-SENT", "ESTAB", "SYN-RECV", "UNCONN").
func ParseState(name string) (State, bool) {
	for i, n := range stateNames {
		if n == name {
			return State(i), true
		}
	}
	switch name {
	case "ESTAB":
		return StateEstablished, true
	case "SYN-SENT":
		return StateSynSent, true
	case "SYN-RECV":
		return StateSynReceived, true
	case "FIN-WAIT-1":
		return StateFinWait1, true
	case "FIN-WAIT-2":
		return StateFinWait2, true
	case "CLOSE-WAIT":
		return StateCloseWait, true
	case "LAST-ACK":
		return StateLastAck, true
	case "TIME-WAIT":
		return StateTimeWait, true
	case "UNCONN", "CLOSE":
		return StateClosed, true
	}
	return 0, false
}

// Group classifies a state for display: connecting, established, closing
// or closed.
type Group uint8

// State groups.
const (
	GroupClosed Group = iota
	GroupConnecting
	GroupEstablished
	GroupClosing
)

// Group returns the state's group.
func (s State) Group() Group {
	switch s {
	case StateSynSent, StateSynReceived:
		return GroupConnecting
	case StateEstablished:
		return GroupEstablished
	case StateFinWait1, StateFinWait2, StateCloseWait, StateClosing, StateLastAck, StateTimeWait:
		return GroupClosing
	default:
		return GroupClosed
	}
}

// seqLT and friends compare sequence numbers modulo 2^32 (RFC 793 3.3).
func seqLT(a, b uint32) bool { return int32(a-b) < 0 }
func seqLE(a, b uint32) bool { return int32(a-b) <= 0 }
func seqGT(a, b uint32) bool { return int32(a-b) > 0 }
func seqGE(a, b uint32) bool { return int32(a-b) >= 0 }
