// Package inspect owns berth's instruments: it turns what the kernel says
// about a process (/proc/PID/ns/* and the nsfs ioctls, /proc/PID/status,
// /proc/PID/cgroup and the cgroup files, mountinfo, uid/gid maps) into the
// reports the talk shows: the namespace tree of user namespaces owning the
// others (like namespaces_of.go, with --pidns), the capability sets decoded
// the way getpcaps prints them, a process's cgroups with their limits and
// usage, and one isolation report comparing all of it with Docker's
// defaults.
//
// inspect only reads. It never joins namespaces, writes cgroup files,
// signals processes or knows how a container was made; resolving a
// container name to a PID belongs to the command line.
package inspect
