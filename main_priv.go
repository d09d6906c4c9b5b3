package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// dropPrivileges switches a process running as root to an unprivileged
// user, once the capture handle is open and before any packet is parsed.
// name is --user ("" for the default, "root" to keep root). By default a
// replay started with sudo becomes the invoking user (SUDO_UID/SUDO_GID): it
// needs no privilege at all. A live capture keeps root unless --user is
// given, because naming the processes behind other users' sockets needs
// it. It returns the user switched to, or "" when nothing changed.
func dropPrivileges(name string, live bool) (string, error) {
	if os.Geteuid() != 0 || name == "root" {
		return "", nil
	}
	var uid, gid int
	var who string
	switch {
	case name != "":
		u, err := user.Lookup(name)
		if err != nil {
			return "", fmt.Errorf("--user %s: %w", name, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		who = name
	case !live && os.Getenv("SUDO_UID") != "":
		var err1, err2 error
		uid, err1 = strconv.Atoi(os.Getenv("SUDO_UID"))
		gid, err2 = strconv.Atoi(os.Getenv("SUDO_GID"))
		if err := errors.Join(err1, err2); err != nil {
			return "", fmt.Errorf("SUDO_UID/SUDO_GID: %w", err)
		}
		who = os.Getenv("SUDO_USER")
		if who == "" {
			who = "uid " + strconv.Itoa(uid)
		}
	default:
		return "", nil
	}
	if uid == 0 {
		return "", nil
	}
	// Order matters: supplementary groups and the group while still root,
	// then the user. Go applies these to every thread of the process.
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return "", fmt.Errorf("dropping root: setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return "", fmt.Errorf("dropping root: setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return "", fmt.Errorf("dropping root: setuid %d: %w", uid, err)
	}
	if syscall.Setuid(0) == nil {
		return "", errors.New("dropping root: could still become root again; refusing to go on")
	}
	return who, nil
}
