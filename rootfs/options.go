// Package rootfs owns a container's root filesystem as the init stage
// builds it inside the new mount namespace: the OCI mounts (resolved inside
// the rootfs without following symlinks out of it), /dev and its devices,
// pivot_root, masked and read-only paths, and the read-only root. It runs
// only inside the container's mount namespace; it never touches host mounts.
package rootfs

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Options is a parsed OCI mount option list.
type Options struct {
	Flags       uintptr // MS_* flags for mount(2)
	Clear       uintptr // MS_* flags explicitly turned off (rw, suid, …)
	Propagation []uintptr
	// Attr and AttrClear are mount_setattr(2) attributes for bind mounts;
	// Recursive says whether they apply to the whole tree (the "r" forms).
	Attr, AttrClear uint64
	Recursive       bool
	Bind, RBind     bool
	Data            []string
	Idmap           bool
	RecursiveIdmap  bool
	TmpCopyUp       bool
}

type flagOpt struct {
	clear bool
	flag  uintptr
}

var flagOpts = map[string]flagOpt{
	"async": {true, unix.MS_SYNCHRONOUS}, "atime": {true, unix.MS_NOATIME},
	"defaults": {false, 0}, "dev": {true, unix.MS_NODEV}, "diratime": {true, unix.MS_NODIRATIME},
	"dirsync": {false, unix.MS_DIRSYNC}, "exec": {true, unix.MS_NOEXEC},
	"iversion": {false, unix.MS_I_VERSION}, "lazytime": {false, unix.MS_LAZYTIME},
	"loud": {true, unix.MS_SILENT}, "mand": {false, unix.MS_MANDLOCK},
	"noatime": {false, unix.MS_NOATIME}, "nodev": {false, unix.MS_NODEV},
	"nodiratime": {false, unix.MS_NODIRATIME}, "noexec": {false, unix.MS_NOEXEC},
	"noiversion": {true, unix.MS_I_VERSION}, "nolazytime": {true, unix.MS_LAZYTIME},
	"nomand": {true, unix.MS_MANDLOCK}, "norelatime": {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME}, "nosuid": {false, unix.MS_NOSUID},
	"relatime": {false, unix.MS_RELATIME}, "remount": {false, unix.MS_REMOUNT},
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"silent": {false, unix.MS_SILENT}, "strictatime": {false, unix.MS_STRICTATIME},
	"suid": {true, unix.MS_NOSUID}, "sync": {false, unix.MS_SYNCHRONOUS},
}

var propagationOpts = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// Recursive attribute options ("rro", "rnosuid", …) as mount_setattr
// attributes: set (false) or cleared (true).
var recursiveAttrOpts = map[string]struct {
	clear bool
	attr  uint64
}{
	"rro": {false, unix.MOUNT_ATTR_RDONLY}, "rrw": {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid": {false, unix.MOUNT_ATTR_NOSUID}, "rsuid": {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev": {false, unix.MOUNT_ATTR_NODEV}, "rdev": {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec": {false, unix.MOUNT_ATTR_NOEXEC}, "rexec": {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime": {false, unix.MOUNT_ATTR_NODIRATIME}, "rdiratime": {true, unix.MOUNT_ATTR_NODIRATIME},
	"rnoatime": {false, unix.MOUNT_ATTR_NOATIME}, "rrelatime": {false, unix.MOUNT_ATTR_RELATIME},
	"rstrictatime": {false, unix.MOUNT_ATTR_STRICTATIME}, "rnosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow": {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

// ParseOptions splits an OCI option list into flags, propagation and data.
// Options the kernel takes as data (size=, mode=, lowerdir=, …) pass
// through unchanged.
func ParseOptions(opts []string) (Options, error) {
	var o Options
	for _, raw := range opts {
		opt := strings.TrimSpace(raw)
		switch {
		case opt == "":
			continue
		case opt == "bind":
			o.Bind = true
		case opt == "rbind":
			o.Bind, o.RBind = true, true
		case opt == "idmap":
			o.Idmap = true
		case opt == "ridmap":
			o.Idmap, o.RecursiveIdmap = true, true
		case opt == "tmpcopyup":
			o.TmpCopyUp = true
		case opt == "nosymfollow":
			o.Attr |= unix.MOUNT_ATTR_NOSYMFOLLOW
		case opt == "symfollow":
			o.AttrClear |= unix.MOUNT_ATTR_NOSYMFOLLOW
		default:
			if f, ok := flagOpts[opt]; ok {
				if f.clear {
					o.Flags &^= f.flag
					o.Clear |= f.flag
				} else {
					o.Flags |= f.flag
					o.Clear &^= f.flag
				}
				continue
			}
			if p, ok := propagationOpts[opt]; ok {
				o.Propagation = append(o.Propagation, p)
				continue
			}
			if r, ok := recursiveAttrOpts[opt]; ok {
				o.Recursive = true
				if r.clear {
					o.AttrClear |= r.attr
				} else {
					o.Attr |= r.attr
				}
				continue
			}
			if strings.ContainsAny(opt, "\x00") {
				return o, fmt.Errorf("mount option %q contains a NUL byte", opt)
			}
			o.Data = append(o.Data, opt)
		}
	}
	return o, nil
}

// attrFromFlags converts the MS_* flags that have a per-mount meaning to
// mount_setattr attributes, for bind mounts.
func attrFromFlags(set, clear uintptr) (attrSet, attrClr uint64) {
	pairs := []struct {
		ms   uintptr
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY}, {unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV}, {unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
	}
	for _, p := range pairs {
		if set&p.ms != 0 {
			attrSet |= p.attr
		}
		if clear&p.ms != 0 {
			attrClr |= p.attr
		}
	}
	// Access-time modes are one field: the last one asked for wins.
	switch {
	case set&unix.MS_NOATIME != 0:
		attrSet |= unix.MOUNT_ATTR_NOATIME
		attrClr |= unix.MOUNT_ATTR__ATIME
	case set&unix.MS_STRICTATIME != 0:
		attrSet |= unix.MOUNT_ATTR_STRICTATIME
		attrClr |= unix.MOUNT_ATTR__ATIME
	case set&unix.MS_RELATIME != 0:
		attrSet |= unix.MOUNT_ATTR_RELATIME
		attrClr |= unix.MOUNT_ATTR__ATIME
	}
	return attrSet, attrClr
}
