package main

import (
	"bufio"
	"io"
	"net/netip"
	"strconv"
	"time"
)

// truthHeader names the columns of the ground truth file.
const truthHeader = "id\tfamily\tclient_ip\tclient_port\tserver_ip\tserver_port\t" +
	"packets_c2s\tpackets_s2c\tbytes_c2s\tbytes_s2c\tpayload_c2s\tpayload_s2c\t" +
	"retrans_c2s\tretrans_s2c\tclient_state\tserver_state\tend\tfirst_seen\tlast_seen\trtt_ns"

// truthWriter writes one TSV line per connection.
type truthWriter struct {
	w   *bufio.Writer
	buf []byte
}

func newTruthWriter(w io.Writer) *truthWriter {
	t := &truthWriter{w: bufio.NewWriterSize(w, 1<<16)}
	t.w.WriteString("# gencap ground truth, one line per connection in no particular order (id: order of its first packet).\n" +
		"# States are each endpoint's right after the connection's last packet, before any timer:\n" +
		"# compare with flowtrack run with --time-wait and --handshake-timeout longer than the capture.\n" +
		"# Bytes are whole frame lengths (padding included); end says how the connection ended.\n")
	t.w.WriteString(truthHeader + "\n")
	return t
}

func (t *truthWriter) row(g *gen, c *conn) {
	var cip, sip [16]byte
	al := addrs(c, &cip, &sip)
	var ca, sa netip.Addr
	if al == 4 {
		ca, sa = netip.AddrFrom4([4]byte(cip[:4])), netip.AddrFrom4([4]byte(sip[:4]))
	} else {
		ca, sa = netip.AddrFrom16(cip), netip.AddrFrom16(sip)
	}
	b := t.buf[:0]
	b = strconv.AppendInt(b, c.id, 10)
	b = append(b, '\t')
	if al == 4 {
		b = append(b, '4')
	} else {
		b = append(b, '6')
	}
	b = append(b, '\t')
	b = ca.AppendTo(b)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(c.cport), 10)
	b = append(b, '\t')
	b = sa.AppendTo(b)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(c.sport), 10)
	for _, v := range [...]int64{c.pk[0], c.pk[1], c.by[0], c.by[1], c.pl[0], c.pl[1], c.rt[0], c.rt[1]} {
		b = append(b, '\t')
		b = strconv.AppendInt(b, v, 10)
	}
	b = append(b, '\t')
	b = append(b, stateNames[c.state[0]]...)
	b = append(b, '\t')
	b = append(b, stateNames[c.state[1]]...)
	b = append(b, '\t')
	b = append(b, c.endedLabel...)
	b = append(b, '\t')
	b = time.Unix(0, c.firstTS).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '\t')
	b = time.Unix(0, c.lastTS).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '\t')
	if c.rttSeen >= 0 {
		b = strconv.AppendInt(b, c.rttSeen, 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, '\n')
	t.w.Write(b)
	t.buf = b
}

func (t *truthWriter) flush() error { return t.w.Flush() }
