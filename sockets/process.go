package sockets

import (
	"bufio"
	"bytes"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Process is what is known of a process that owned a socket: what the
// kernel said at the event (or the socket table) and what /proc said the
// first time flowtrack looked. It is kept after the process exits, and
// never changes once made, so it may be shared.
type Process struct {
	PID       int
	Comm      string // command name (at most 15 bytes)
	Exe       string // the executable's path; "" if it could not be read (the process had exited, or belongs to another user and flowtrack is not root)
	Cmdline   string // the arguments, separated by spaces; "" if unknown
	UID       uint32 // real user id
	User      string // its name, "" if it has none
	CgroupID  uint64 // cgroup v2 id, 0 if unknown
	Cgroup    string // cgroup v2 path, "" if unknown
	Container string // "docker:0123456789ab" and the like (see Container), "" if none
	Unit      string // the systemd unit when there is no container ("nginx.service"), else ""
	Start     uint64 // start time, in ns since boot (as /proc/<pid>/stat counts it, rounded to clock ticks); tells a reused PID
}

// Bounds of what the process cache keeps.
const (
	MaxProcs   = 1 << 16 // processes remembered (oldest forgotten first)
	maxCmdline = 512     // bytes of a command line kept
	maxCgroups = 1 << 14 // cgroup ids whose paths are remembered
	cgroupScan = 5 * time.Second
)

// procKey tells processes apart even when a PID is reused.
type procKey struct {
	pid   int32
	start uint64
}

// procCache fills Process values from /proc at a process's first event and
// keeps them, at most MaxProcs, after the process exits. It is safe for
// concurrent use.
type procCache struct {
	root       string // "/proc"
	cgroupRoot string // where cgroup v2 is mounted, "" if nowhere

	mu       sync.Mutex // guards the following
	procs    map[procKey]*Process
	byPID    map[int32]*Process // the latest process seen with each PID
	order    []procKey          // procs' keys, oldest first
	users    map[uint32]string
	cgroups  map[uint64]string // cgroup id → path
	lastScan time.Time         // of the cgroup tree
}

func newProcCache(root string) *procCache {
	return &procCache{
		root:       root,
		cgroupRoot: cgroup2Mount(root),
		procs:      make(map[procKey]*Process),
		byPID:      make(map[int32]*Process),
		users:      make(map[uint32]string),
		cgroups:    make(map[uint64]string),
	}
}

// clockTick is the unit of /proc/<pid>/stat's start time (USER_HZ, 100 on
// every Linux architecture flowtrack runs on).
const clockTick = uint64(10 * time.Millisecond)

// event returns the process behind an event: pid and its start time in ns
// since boot, the comm, uid and cgroup id the kernel reported. It reads
// /proc only for a process not seen before, and only trusts what it reads
// if /proc/<pid> is still the process that caused the event (same start
// time): else exe and cmdline stay unknown.
func (c *procCache) event(pid int32, start uint64, comm string, uid uint32, cgroup uint64) *Process {
	k := procKey{pid, start / clockTick * clockTick}
	c.mu.Lock()
	p := c.procs[k]
	c.mu.Unlock()
	if p != nil && p.Comm == comm {
		return p
	}
	np := &Process{PID: int(pid), Comm: comm, UID: uid, CgroupID: cgroup, Start: k.start}
	if st, ok := c.readStart(pid); ok && st == k.start {
		c.fill(np)
	}
	return c.add(k, np)
}

// pid returns the process with the given PID, as the socket table names
// it (no start time, no cgroup id): the one seen last with that PID and
// comm, else what /proc says now.
func (c *procCache) pid(pid int32, comm string, uid uint32) *Process {
	c.mu.Lock()
	p := c.byPID[pid]
	c.mu.Unlock()
	if p != nil && p.Comm == comm {
		return p
	}
	np := &Process{PID: int(pid), Comm: comm, UID: uid}
	if start, ok := c.readStart(pid); ok {
		np.Start = start
		c.fill(np)
	} // else it has exited: remember that much, not to look again
	return c.add(procKey{pid, np.Start}, np)
}

// add records p under k, unless another caller did first, forgetting the
// oldest process past MaxProcs.
func (c *procCache) add(k procKey, p *Process) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.procs[k]; old != nil && old.Comm == p.Comm {
		return old
	}
	if _, ok := c.procs[k]; !ok {
		c.order = append(c.order, k)
	}
	c.procs[k] = p
	c.byPID[k.pid] = p
	for len(c.procs) > MaxProcs && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		if q := c.procs[old]; q != nil && c.byPID[old.pid] == q {
			delete(c.byPID, old.pid)
		}
		delete(c.procs, old)
	}
	if cap(c.order) > 4*MaxProcs {
		c.order = append([]procKey(nil), c.order...)
	}
	if p.User == "" {
		p.User = c.userLocked(p.UID)
	}
	if p.Cgroup == "" && p.CgroupID != 0 {
		p.Cgroup = c.cgroups[p.CgroupID]
	}
	if p.Cgroup != "" && p.Container == "" && p.Unit == "" {
		p.Container, p.Unit = Container(p.Cgroup)
	}
	return p
}

// fill reads the executable, command line and cgroup of p from /proc. Any
// of them may fail (the process exited, or is another user's): what was
// read is kept.
func (c *procCache) fill(p *Process) {
	dir := c.root + "/" + strconv.Itoa(p.PID) + "/"
	if exe, err := os.Readlink(dir + "exe"); err == nil {
		p.Exe = strings.TrimSuffix(exe, " (deleted)")
	}
	if b, err := readSmall(dir+"cmdline", maxCmdline); err == nil {
		p.Cmdline = strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	}
	if b, err := readSmall(dir+"cgroup", 4096); err == nil {
		if path, ok := cgroupV2Path(b); ok {
			c.learnCgroup(p, path)
		}
	}
	if p.CgroupID != 0 && p.Cgroup == "" {
		p.Cgroup = c.cgroupPath(p.CgroupID)
	}
}

// learnCgroup takes path from /proc/<pid>/cgroup as p's cgroup if it has
// p's cgroup id (the process may have moved since the event), and
// remembers the id's path.
func (c *procCache) learnCgroup(p *Process, path string) {
	if c.cgroupRoot == "" {
		return
	}
	id, ok := inode(c.cgroupRoot + path)
	if !ok {
		return
	}
	if p.CgroupID == 0 {
		p.CgroupID = id
	}
	if id == p.CgroupID {
		p.Cgroup = path
	}
	c.mu.Lock()
	if len(c.cgroups) < maxCgroups {
		c.cgroups[id] = path
	}
	c.mu.Unlock()
}

// cgroupPath returns the path of the cgroup with the given id, walking
// the cgroup tree (at most every cgroupScan) when it is not known yet: a
// process that exited at once leaves its cgroup id in the event and no
// /proc entry to read it from.
func (c *procCache) cgroupPath(id uint64) string {
	c.mu.Lock()
	path, ok := c.cgroups[id]
	scan := !ok && c.cgroupRoot != "" && time.Since(c.lastScan) > cgroupScan
	if scan {
		c.lastScan = time.Now()
	}
	c.mu.Unlock()
	if ok || !scan {
		return path
	}
	found := make(map[uint64]string)
	walkCgroups(c.cgroupRoot, "", found, maxCgroups)
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range found {
		if len(c.cgroups) >= maxCgroups {
			break
		}
		c.cgroups[k] = v
	}
	return c.cgroups[id]
}

// walkCgroups records the id (directory inode) of every cgroup under
// root+rel, at most max.
func walkCgroups(root, rel string, found map[uint64]string, max int) {
	ents, err := os.ReadDir(root + rel)
	if err != nil {
		return
	}
	if id, ok := inode(root + rel); ok {
		p := rel
		if p == "" {
			p = "/"
		}
		found[id] = p
	}
	for _, e := range ents {
		if len(found) >= max {
			return
		}
		if e.IsDir() {
			walkCgroups(root, rel+"/"+e.Name(), found, max)
		}
	}
}

// userLocked names uid, remembering the answer (c.mu held).
func (c *procCache) userLocked(uid uint32) string {
	if n, ok := c.users[uid]; ok {
		return n
	}
	n := ""
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		n = u.Username
	}
	if len(c.users) < 1<<12 {
		c.users[uid] = n
	}
	return n
}

// readStart returns a process's start time from /proc/<pid>/stat (field
// 22, in clock ticks since boot), in ns.
func (c *procCache) readStart(pid int32) (uint64, bool) {
	b, err := readSmall(c.root+"/"+strconv.Itoa(int(pid))+"/stat", 1024)
	if err != nil {
		return 0, false
	}
	return parseStatStart(b)
}

// parseStatStart parses the start time out of a /proc/<pid>/stat line.
// The command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so fields are counted from the last ')'.
func parseStatStart(b []byte) (uint64, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); the start time is field 22.
	if len(f) < 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil || v > 1<<63/clockTick {
		return 0, false
	}
	return v * clockTick, true
}

// cgroupV2Path finds the cgroup v2 line ("0::PATH") of /proc/<pid>/cgroup.
func cgroupV2Path(b []byte) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok && strings.HasPrefix(p, "/") {
			return p, true
		}
	}
	return "", false
}

// cgroup2Mount finds where cgroup v2 is mounted (/sys/fs/cgroup, or
// /sys/fs/cgroup/unified on a hybrid system), from /proc/self/mounts.
func cgroup2Mount(procRoot string) string {
	b, err := readSmall(procRoot+"/self/mounts", 1<<20)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == "cgroup2" {
			return strings.TrimSuffix(f[1], "/")
		}
	}
	return ""
}

// readSmall reads at most max bytes of a file.
func readSmall(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, max)
	n := 0
	for n < max {
		m, err := f.Read(b[n:])
		n += m
		if err != nil || m == 0 {
			break
		}
	}
	return b[:n], nil
}
