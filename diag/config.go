package diag

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config holds the thresholds of the rules (docs/problems.md). Zero
// fields take the defaults named; main sets them from flags (AddFlags).
type Config struct {
	// Kernel is the TCP configuration of the hosts whose schedules the
	// rules follow (default: Linux's defaults).
	Kernel Kernel
	// Stall is the least silence before a resent segment for it to be a
	// timeout-retransmit (default: Kernel.RTOMin, 200 ms).
	Stall time.Duration
	// Loss is the share of a direction's data segments resent (or missed
	// by the capture) from which it is a loss problem (default 0.02),
	// once at least LossMin of them were (default 3).
	Loss    float64
	LossMin int
	// ZeroWindow is how long a zero window must last (default 1 s).
	ZeroWindow time.Duration
	// CloseWait and FinWait2 are how long an endpoint must have been in
	// that state (defaults 60 s, and Kernel.FinTimeout: 60 s).
	CloseWait, FinWait2 time.Duration
	// HalfOpenResends is how many resends in a row its peer must leave
	// unanswered for an end to count as vanished (default 4: at least
	// 3 s with Linux's minimum timeout doubling from 200 ms).
	HalfOpenResends int
	// A handshake RTT above both SlowFactor times its service's median
	// and that median plus SlowMargin is slow (defaults 4 and 100 ms),
	// once the service has SlowSamples handshakes (default 20).
	SlowFactor  float64
	SlowMargin  time.Duration
	SlowSamples int
	// PortPressure is how many TIME_WAIT sockets one client may hold to
	// one service at once before its ephemeral ports count as running
	// short (default 14116: half of Linux's 28232).
	PortPressure int
	// TrendStep is the interval between the samples of a service's
	// CLOSE_WAIT count, of which the last TrendSamples tell whether it
	// keeps growing (defaults 1 minute and 5).
	TrendStep    time.Duration
	TrendSamples int
	// TimeWait and IdleTimeout are the table's (flows.Config): how long
	// an end stays in TIME_WAIT, and how long after its last packet an
	// idle connection was retired (defaults 60 s and 1 h).
	TimeWait, IdleTimeout time.Duration
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Kernel == (Kernel{}) {
		c.Kernel = Linux
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	num := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	dur(&c.Stall, c.Kernel.RTOMin)
	if c.Loss <= 0 {
		c.Loss = 0.02
	}
	num(&c.LossMin, 3)
	dur(&c.ZeroWindow, time.Second)
	dur(&c.CloseWait, time.Minute)
	dur(&c.FinWait2, c.Kernel.FinTimeout)
	num(&c.HalfOpenResends, 4)
	if c.SlowFactor <= 0 {
		c.SlowFactor = 4
	}
	dur(&c.SlowMargin, 100*time.Millisecond)
	num(&c.SlowSamples, 20)
	num(&c.PortPressure, 14116)
	dur(&c.TrendStep, time.Minute)
	num(&c.TrendSamples, 5)
	dur(&c.TimeWait, time.Minute)
	dur(&c.IdleTimeout, time.Hour)
	return c
}

// AddFlags defines the thresholds' flags on fs, writing into c.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	d := Config{}.withDefaults()
	c.Loss = d.Loss
	fs.DurationVar(&c.Stall, "rto-stall", d.Stall, "problems: the least silence before a resent segment for a timeout-retransmit")
	fs.Var((*percent)(&c.Loss), "loss", "problems: the share of a direction's data segments resent from which it is loss (`percent`)")
	fs.IntVar(&c.LossMin, "loss-min", d.LossMin, "problems: ... once at least this many were resent")
	fs.DurationVar(&c.ZeroWindow, "zero-window", d.ZeroWindow, "problems: how long a zero window lasts before it is one")
	fs.DurationVar(&c.CloseWait, "close-wait", d.CloseWait, "problems: how long an endpoint stays in CLOSE_WAIT before it is one")
	fs.DurationVar(&c.FinWait2, "fin-wait-2", d.FinWait2, "problems: how long an endpoint stays in FIN_WAIT_2 before it is one")
	fs.IntVar(&c.HalfOpenResends, "half-open-resends", d.HalfOpenResends, "problems: resends in a row left unanswered before their peer counts as vanished (half-open)")
	fs.Float64Var(&c.SlowFactor, "slow-rtt-factor", d.SlowFactor, "problems: a handshake RTT this many times its service's median is slow-connect ...")
	fs.DurationVar(&c.SlowMargin, "slow-rtt-margin", d.SlowMargin, "problems: ... and this much above it")
	fs.IntVar(&c.SlowSamples, "slow-rtt-samples", d.SlowSamples, "problems: ... once the service has this many handshakes")
	fs.IntVar(&c.PortPressure, "port-pressure", d.PortPressure, "problems: TIME_WAIT sockets one client may hold to one service before its ports run short")
	fs.DurationVar(&c.TrendStep, "leak-step", d.TrendStep, "problems: the interval between samples of a service's CLOSE_WAIT count")
	fs.IntVar(&c.TrendSamples, "leak-samples", d.TrendSamples, "problems: how many samples of a service's CLOSE_WAIT count tell a leak: it leaks when they (3 at least) never fall and the last is above the first")
}

// percent is a share given on the command line as a percentage ("2",
// "2%" or "0.5").
type percent float64

func (p *percent) String() string {
	return strconv.FormatFloat(float64(*p)*100, 'g', -1, 64) + "%"
}

func (p *percent) Set(v string) error {
	f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil || f <= 0 || f > 100 {
		return fmt.Errorf("want a percentage above 0 and at most 100, such as 2 or 0.5%%")
	}
	*p = percent(f / 100)
	return nil
}
