#!/bin/sh
# Installs the Debian packages berth's build, demo and tests use.
# Idempotent: packages already installed are skipped, so repeated runs are fast.
set -eu
pkgs="busybox-static uidmap runc crun libseccomp-dev gcc make git iproute2 libcap2-bin
      docker-registry skopeo umoci qemu-system-x86 cpio kmod docker.io containerd
      containernetworking-plugins ca-certificates xz-utils procps systemd"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# docker.io/containerd ship services that must not start on their own here:
	# tests start dockerd/containerd themselves on private sockets.
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
	apt-get install -y -qq --no-install-recommends $missing
	rm -f /usr/sbin/policy-rc.d
fi
if ! command -v go >/dev/null 2>&1; then
	[ -x /usr/local/go/bin/go ] || { echo "deps: Go 1.26 is required (expected at /usr/local/go)" >&2; exit 1; }
fi
