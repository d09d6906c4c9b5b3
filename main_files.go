package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/flowtrack/flowtrack/capture"
)

// fileList is -r: it may be given again and again.
type fileList []string

func (f *fileList) String() string { return strings.Join(*f, " ") }

func (f *fileList) Set(v string) error {
	if v == "" {
		return fmt.Errorf("an empty file name")
	}
	*f = append(*f, v)
	return nil
}

// openFiles opens what -r named: one file, or a set read as one capture.
// Files of a directory that are not captures are named on stderr.
func openFiles(args []string, filter string, stderr io.Writer) (capture.Source, error) {
	files, notCaptures, err := capture.ExpandPaths(args)
	if err != nil {
		return nil, err
	}
	src, err := capture.OpenFiles(files, filter)
	if err != nil {
		return nil, err
	}
	if len(notCaptures) > 0 {
		fmt.Fprintf(stderr, "flowtrack: left out %d files that are not captures: %s\n", len(notCaptures), strings.Join(notCaptures, ", "))
	}
	return src, nil
}

// undecodedLine says what frames the capture held that flowtrack does not
// decode, most frequent first, or "" if none.
func undecodedLine(c *capture.Counters) string {
	kinds := c.UndecodedKinds()
	if len(kinds) == 0 {
		return ""
	}
	parts := make([]string, 0, 4)
	for i, k := range kinds {
		if i == 4 {
			parts = append(parts, fmt.Sprintf("%d other kinds", len(kinds)-4))
			break
		}
		parts = append(parts, fmt.Sprintf("%d %s", k.Frames, k.Encap))
	}
	return fmt.Sprintf("%d frames in an encapsulation flowtrack does not decode: %s", c.Undecoded.Load(), strings.Join(parts, ", "))
}
