package main

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/flowtrack/flowtrack/capture"
	"github.com/flowtrack/flowtrack/flows"
)

// progressEvery is how often the progress line is redrawn.
const progressEvery = 250 * time.Millisecond

// startProgress shows one line on stderr while a headless replay runs, if
// stderr is a terminal: the file being read, files and bytes read of the
// total, packets a second, connections and the time left (the library's
// estimate from the bytes' rate). It prints nothing when stderr is not a
// terminal, nor for a live capture (replay false) or a source that does
// not report its progress. The returned function stops it and clears the
// line.
func startProgress(replay bool, stderr io.Writer, c *capture.Counters, t *flows.Table) (stop func()) {
	if !replay || !isTerminal(stderr) {
		return func() {}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		var bar *progressbar.ProgressBar
		tk := time.NewTicker(progressEvery)
		defer tk.Stop()
		lastFrames, last := c.Frames.Load(), time.Now()
		for {
			select {
			case <-done:
				if bar != nil {
					_ = bar.Clear()
				}
				return
			case now := <-tk.C:
				p, ok := c.Progress()
				if !ok || p.Bytes <= 0 {
					continue
				}
				if bar == nil {
					bar = newProgressBar(stderr, p.Bytes)
				}
				frames := c.Frames.Load()
				rate := float64(frames-lastFrames) / now.Sub(last).Seconds()
				lastFrames, last = frames, now
				bar.Describe(progressText(p, rate, t.Opened()))
				_ = bar.Set64(min(p.BytesDone, p.Bytes))
			}
		}
	}()
	return func() { close(done); <-finished }
}

func newProgressBar(w io.Writer, total int64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(progressEvery/2),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionUseIECUnits(false),
	)
}

// progressText is the line's description: file, files read of the set,
// packets a second, connections.
func progressText(p capture.Progress, rate float64, conns uint64) string {
	s := filepath.Base(p.File)
	if p.Files > 1 {
		s += fmt.Sprintf(" (%d/%d files)", min(p.FilesDone+1, p.Files), p.Files)
	}
	return fmt.Sprintf("%s %s pkt/s, %s conns", s, siCount(rate), siCount(float64(conns)))
}

// siCount writes n with a k, M or G suffix.
func siCount(n float64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fG", n/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}
