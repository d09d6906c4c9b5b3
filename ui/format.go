package ui

import (
	"strconv"
	"strings"
	"time"
)

// fmtCount formats a count or a byte amount in at most five characters:
// 999, 1023, 1.5K, 15K, 1023K, 2.0M (binary multiples).
func fmtCount(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10)
	}
	return fmtScaled(float64(n))
}

// fmtRate formats a per-second rate like fmtCount; rates below 1 show as 0.
func fmtRate(v float64) string { return fmtCount(uint64(v + 0.5)) }

func fmtScaled(v float64) string {
	const units = "KMGTPE"
	u := -1
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	prec := 0
	if v < 9.95 {
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + units[u:u+1]
}

// fmtPair formats an up/down pair as "a/b".
func fmtPair(a, b string) string { return a + "/" + b }

// fmtAge formats a duration in at most six characters: 850ms, 9.5s, 42s,
// 3m04s, 2h05m, 3d02h.
func fmtAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0ms"
	case d < time.Second:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Minute:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d < time.Hour:
		return two(int64(d/time.Minute), "m", int64(d%time.Minute/time.Second), "s")
	case d < 24*time.Hour:
		return two(int64(d/time.Hour), "h", int64(d%time.Hour/time.Minute), "m")
	default:
		return two(int64(d/(24*time.Hour)), "d", int64(d%(24*time.Hour)/time.Hour), "h")
	}
}

func two(a int64, ua string, b int64, ub string) string {
	s := strconv.FormatInt(b, 10)
	if b < 10 {
		s = "0" + s
	}
	return strconv.FormatInt(a, 10) + ua + s + ub
}

// fmtRTT formats a round-trip time in at most six characters: 850µs,
// 2.35ms, 25.9ms, 250ms, 1.25s; "-" when unknown (negative).
func fmtRTT(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	if d < time.Millisecond {
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "µs"
	}
	ms := float64(d) / 1e6
	switch {
	case ms < 9.995:
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	case ms < 99.95:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	case ms < 999.5:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	case ms < 9995:
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + "s"
	default:
		return fmtAge(d)
	}
}

// fmtSpeed formats a replay speed: "max" for 0, "0.25x", "1x", "10x".
func fmtSpeed(s float64) string {
	if s <= 0 {
		return "max"
	}
	return strconv.FormatFloat(s, 'f', -1, 64) + "x"
}

// fmtClock formats a capture time of day with microseconds, UTC.
func fmtClock(t time.Time) string { return t.UTC().Format("15:04:05.000000") }

// fmtMilli formats a capture time of day to the millisecond, UTC.
func fmtMilli(t time.Time) string { return t.UTC().Format("15:04:05.000") }

// fmtStamp formats a full capture timestamp with microseconds, UTC.
func fmtStamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000") }

// pad returns s padded with spaces to width w (display cells); s is
// assumed to be made of single-width characters.
func pad(s string, w int) string {
	n := strlen(s)
	if n >= w {
		return s
	}
	return s + strings.Repeat(" ", w-n)
}

// strlen is the display width of s, counting every rune as one cell.
func strlen(s string) int {
	n := 0
	for range s {
		n++
	}
	return n
}
