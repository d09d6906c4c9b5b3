// Command netns-problems records real kernel TCP sockets made to fail in
// each of the ways flowtrack names (docs/problems.md), between two network
// namespaces per scenario, for the captures of pcaps/problems and the
// tests that judge them.
//
//	netns-problems record -out DIR [NAME...]   (root) every scenario, or some, at once
//	netns-problems role -scenario S -side server|client -server HOST:PORT -ctl DIR
//
// record makes, for each scenario, the namespaces diag16-PID-NAME-c and
// -s joined by a veth pair (nothing in the host's namespace), captures the
// scenario's port on the server's veth with tcpdump, runs this program's
// two roles in them, and removes everything it made (also what an earlier
// run killed before cleaning up left). It writes DIR/NAME.pcap and
// DIR/SCENARIOS.tsv: each scenario's port, description, the thresholds to
// judge it with and the problems its design makes. Every wait is bounded;
// a role exits by itself after a minute.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: netns-problems record -out DIR [NAME...] | role ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "record":
		fs := flag.NewFlagSet("record", flag.ExitOnError)
		out := fs.String("out", "", "directory for NAME.pcap and SCENARIOS.tsv")
		_ = fs.Parse(os.Args[2:])
		if *out == "" {
			fmt.Fprintln(os.Stderr, "record: -out DIR is needed")
			os.Exit(2)
		}
		if err := record(*out, fs.Args()); err != nil {
			fmt.Fprintln(os.Stderr, "netns-problems:", err)
			os.Exit(1)
		}
	case "role":
		fs := flag.NewFlagSet("role", flag.ExitOnError)
		name := fs.String("scenario", "", "scenario")
		side := fs.String("side", "", "server or client")
		e := &env{log: os.Stderr}
		fs.StringVar(&e.server, "server", "", "the server's HOST:PORT")
		fs.StringVar(&e.ctl, "ctl", "", "control directory")
		_ = fs.Parse(os.Args[2:])
		playRole(e, *name, *side)
	default:
		fmt.Fprintf(os.Stderr, "unknown subcommand %q\n", os.Args[1])
		os.Exit(2)
	}
}

// playRole runs one side of a scenario, in the namespace it was started in.
func playRole(e *env, name, side string) {
	time.AfterFunc(time.Minute, func() { e.logf("a minute passed: exiting"); os.Exit(3) })
	sc := find(name)
	if sc == nil {
		e.fail("unknown scenario %q", name)
	}
	switch side {
	case "server":
		sc.server(e)
	case "client":
		sc.client(e)
		mark(e.ctl, "client.done")
		hold() // its sockets stay as they are until the capture has stopped
	default:
		e.fail("unknown side %q", side)
	}
}

func find(name string) *scenario {
	for _, sc := range scenarios {
		if sc.name == name {
			return sc
		}
	}
	return nil
}

// record runs the named scenarios (all if none) at once, each in its own
// namespaces, and writes their captures and SCENARIOS.tsv to out.
func record(out string, names []string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	removeStale()
	var todo []*scenario
	for _, sc := range scenarios {
		if len(names) == 0 || contains(names, sc.name) {
			todo = append(todo, sc)
		}
	}
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, sc := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = recordOne(bin, out, sc)
		}()
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", todo[i].name, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "\n"))
	}
	return writeManifest(filepath.Join(out, "SCENARIOS.tsv"))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// recordOne records one scenario into out/NAME.pcap.
func recordOne(bin, out string, sc *scenario) error {
	p, err := newPair(sc)
	if err != nil {
		return err
	}
	defer p.remove()
	ctl, err := os.MkdirTemp("", "diag16-"+sc.name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ctl)
	pcap := filepath.Join(out, sc.name+".pcap")
	capt, err := startCapture(p, sc.port, pcap)
	if err != nil {
		return err
	}
	var roles []*role
	defer func() {
		capt.stop() // before the roles end: their exit puts nothing in the capture
		for _, r := range roles {
			r.kill()
		}
	}()
	if sc.server != nil {
		r, err := startRole(bin, p.srv, sc.name, "server", ctl, sc.port)
		if err != nil {
			return err
		}
		roles = append(roles, r)
		if !awaitFile(filepath.Join(ctl, "server.ready"), 10*time.Second) {
			return fmt.Errorf("the server did not start:\n%s", r.log)
		}
	}
	r, err := startRole(bin, p.cli, sc.name, "client", ctl, sc.port)
	if err != nil {
		return err
	}
	roles = append(roles, r)
	if !awaitFile(filepath.Join(ctl, "client.done"), 30*time.Second) {
		return fmt.Errorf("the client did not finish:\n%s", logs(roles))
	}
	if _, err := os.Stat(filepath.Join(ctl, "failed")); err == nil {
		return fmt.Errorf("a role failed:\n%s", logs(roles))
	}
	time.Sleep(300 * time.Millisecond) // the last packets reach the capture
	return nil
}

func logs(roles []*role) string {
	var b bytes.Buffer
	for _, r := range roles {
		b.Write(r.log.Bytes())
	}
	return b.String()
}

// writeManifest writes SCENARIOS.tsv (manifest).
func writeManifest(path string) error {
	return os.WriteFile(path, manifest(), 0o644)
}

// manifest is the text of SCENARIOS.tsv, made from the scenario table
// (its one source of truth): name, port, flags, expected problems (in
// the grammar of scenario.expect), description.
func manifest() []byte {
	var b bytes.Buffer
	b.WriteString("# The scenarios of pcaps/problems (tools/netns-problems): name, server port, the thresholds\n" +
		"# flowtrack judges the capture with, the problems the design makes (see README.md), what happens.\n")
	for _, sc := range scenarios {
		fmt.Fprintf(&b, "%s\t%d\t%s\t%s\t%s\n", sc.name, sc.port, strings.Join(sc.flags, " "), sc.expect, sc.desc)
	}
	return b.Bytes()
}
