package devices

import "golang.org/x/sys/unix"

func mknod(path string, mode uint32, major, minor uint32) error {
	return unix.Mknod(path, mode, int(unix.Mkdev(major, minor)))
}
