package export

import "time"

// timeText formats times as time.RFC3339Nano does, remembering the text of
// the last second it formatted: one field of consecutive records mostly
// falls in one second, and formatting the date and time of day is the
// costliest part of encoding a record. The zero value is ready; a nil one
// formats without remembering; a timeText is for one goroutine.
type timeText struct {
	sec  int64
	ok   bool
	text [19]byte // "2006-01-02T15:04:05"
}

// append appends t as time.RFC3339Nano formats it.
func (c *timeText) append(b []byte, t time.Time) []byte {
	if c == nil || t.Location() != time.UTC {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	if sec := t.Unix(); !c.ok || sec != c.sec {
		if y := t.Year(); y < 0 || y > 9999 {
			return t.AppendFormat(b, time.RFC3339Nano)
		}
		t.AppendFormat(c.text[:0], "2006-01-02T15:04:05")
		c.sec, c.ok = sec, true
	}
	b = append(b, c.text[:]...)
	if ns := t.Nanosecond(); ns != 0 {
		b = appendFraction(b, uint64(ns), 9)
	}
	return append(b, 'Z')
}

// appendFraction appends frac, a fraction of 10^digits (not 0, at most 9
// digits), as a decimal point and its digits without the trailing zeros.
func appendFraction(b []byte, frac uint64, digits int) []byte {
	var d [10]byte
	d[0] = '.'
	for i := digits; i > 0; i-- {
		d[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := digits + 1
	for d[n-1] == '0' {
		n--
	}
	return append(b, d[:n]...)
}

// recordTimes formats a record's first and last times, each with its own
// timeText: they are often seconds apart, and one remembered second would
// be replaced at every field.
type recordTimes [2]timeText
