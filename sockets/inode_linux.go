package sockets

import "golang.org/x/sys/unix"

// inode returns the inode number of path (a cgroup's id is the inode of
// its directory in the cgroup v2 file system).
func inode(path string) (uint64, bool) {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return 0, false
	}
	return st.Ino, true
}
