#!/bin/sh
# unseal.sh NAME... — removes the sealed executables under /run/berth/exe
# (read-only bind mounts berth makes of its init and nsenter helper, see
# internal/sealed) except the NAMEs given: `make test` passes the ones that
# were there before it ran, so the copies its own builds sealed go and a
# running daemon's stay. Processes started from a removed copy keep it.
set -eu
dir=/run/berth/exe
[ -d "$dir" ] || exit 0
for path in "$dir"/*; do
	[ -e "$path" ] || continue
	name=${path##*/}
	keep=no
	for k in "$@"; do
		[ "$k" = "$name" ] && keep=yes
	done
	[ "$keep" = yes ] && continue
	umount -l "$path" 2>/dev/null || true
	rm -f "$path"
done
