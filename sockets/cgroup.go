package sockets

import (
	"strings"
)

// Container names the container or systemd unit a cgroup v2 path belongs
// to, from the names container runtimes and systemd give their cgroups:
//
//	docker       /system.slice/docker-<id>.scope, /docker/<id>
//	containerd   .../cri-containerd-<id>.scope, /containerd/<id> (nerdctl)
//	cri-o        .../crio-<id>.scope
//	podman       .../libpod-<id>.scope, /machine.slice/libpod-<id>.scope/container
//	kubernetes   /kubepods/<qos>/pod<uid>/<id> (cgroupfs driver): "kubepods:<id>"
//
// id is the first 12 characters of the container's 64-hex-digit id, as
// docker ps shows it. A path with no container gives the innermost
// systemd unit (a .service, else a .scope), for example "nginx.service" or
// "session-3.scope"; unit is "" when there is none (the root cgroup, or a
// cgroup made by hand).
func Container(path string) (container, unit string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := len(parts) - 1; i >= 0; i-- {
		parent := ""
		if i > 0 {
			parent = parentRuntime(parts, i)
		}
		if c := containerPart(parts[i], parent); c != "" {
			return c, ""
		}
	}
	for i := len(parts) - 1; i >= 0; i-- {
		if strings.HasSuffix(parts[i], ".service") {
			return "", parts[i]
		}
	}
	for i := len(parts) - 1; i >= 0; i-- {
		if strings.HasSuffix(parts[i], ".scope") {
			return "", parts[i]
		}
	}
	return "", ""
}

// runtimes maps a cgroup name's prefix (systemd driver) to the runtime.
var runtimes = [...]struct{ prefix, name string }{
	{"docker-", "docker"},
	{"cri-containerd-", "containerd"},
	{"crio-", "cri-o"},
	{"libpod-", "podman"},
}

// containerPart names the container one path element stands for, or "".
// parent is the runtime whose directory the element is in (cgroupfs
// driver, where the element is the bare id), or "".
func containerPart(p, parent string) string {
	if id, ok := strings.CutSuffix(p, ".scope"); ok {
		for _, r := range runtimes {
			if rest, ok := strings.CutPrefix(id, r.prefix); ok && isContainerID(rest) {
				return r.name + ":" + rest[:12]
			}
		}
		return ""
	}
	if rest, ok := strings.CutPrefix(p, "libpod-"); ok && parent == "podman" && isContainerID(rest) {
		return "podman:" + rest[:12]
	}
	if parent != "" && isContainerID(p) {
		return parent + ":" + p[:12]
	}
	return ""
}

// parentRuntime names the runtime whose directory parts[i] is in, with the
// cgroupfs driver: a kubepods pod (pod<uid>: kubepods), docker's,
// containerd's or podman's parent; "" for any other.
func parentRuntime(parts []string, i int) string {
	switch parent := parts[i-1]; {
	case strings.HasPrefix(parent, "pod") && i >= 2 && strings.HasPrefix(strings.Join(parts[:i-1], "/"), "kubepods"):
		return "kubepods"
	case parent == "docker":
		return "docker"
	case parent == "containerd":
		return "containerd"
	case parent == "libpod_parent":
		return "podman"
	}
	return ""
}

// isContainerID reports whether s is a 64-digit lowercase hex id.
func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
