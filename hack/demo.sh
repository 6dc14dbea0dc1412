#!/bin/sh
# The talk's first command with berth on a fresh machine: the busybox image
# is imported from Debian's busybox-static with `berth import`, and
# `berth run` starts the daemon on demand (as root) when none answers.
#
# BERTH_DEMO_PRIVATE=1 runs everything on a private socket and data root
# under /var/lib/berth-demo (the daemon is stopped at the end).
set -eu
cd "$(dirname "$0")/.."
berth="$PWD/bin/berth"
if [ "${BERTH_DEMO_PRIVATE:-0}" = 1 ]; then
	root=/var/lib/berth-demo
	export DOCKER_HOST="unix://$root/berth.sock" BERTH_DATA_ROOT="$root/data" BERTH_EXEC_ROOT="$root/exec"
	stop_daemon() {
		"$berth" container prune -f >/dev/null 2>&1 || true
		pid=$(ss -xlpn 2>/dev/null | grep -F " $root/berth.sock " | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
		if [ -n "$pid" ]; then kill "$pid"; fi
	}
	trap stop_daemon EXIT
fi
say() { printf '\n$ %s\n' "$*"; }

say "berth images    # as root, starts the daemon when none answers"
"$berth" images
if ! "$berth" image inspect busybox >/dev/null 2>&1; then
	say "go run ./hack/mkbusybox | berth import -c 'CMD [\"sh\"]' - busybox"
	go run ./hack/mkbusybox | "$berth" import -c 'CMD ["sh"]' - busybox
fi

say "berth run busybox sh -c 'echo \"hello world\"'"
"$berth" run --rm busybox sh -c 'echo "hello world"'

say "berth run busybox ls -l bin | awk '{print \$2, \$5, \$9}' | grep -w -e busybox -e ls -e sh"
"$berth" run --rm busybox ls -l bin | awk '{print $2, $5, $9}' | grep -w -e busybox -e ls -e sh

say "berth run busybox sh -c 'echo \"\$\$\"; id'"
"$berth" run --rm busybox sh -c 'echo "$$"; id'

say "berth run -d --name demo-sleep --cpu-period=2000 --cpu-quota=1000 busybox sh -c 'sleep 1000'"
"$berth" rm -f demo-sleep >/dev/null 2>&1 || true
"$berth" run -d --name demo-sleep --cpu-period=2000 --cpu-quota=1000 busybox sh -c 'sleep 1000'
say "berth container ls | awk '\$2 == \"busybox\" {print \$1}'"
id=$("$berth" container ls --filter name=demo-sleep | awk '$2 == "busybox" {print $1}')
echo "$id"
say "berth exec $id sh -c 'grep Name /proc/[1-9]*/status'"
"$berth" exec "$id" sh -c 'grep Name /proc/[1-9]*/status'
say "berth inspect caps $id"
"$berth" inspect caps "$id" | head -1
"$berth" rm -f demo-sleep >/dev/null

say "berth run --security-opt=seccomp=deny_unshare.json busybox sh -c 'unshare -U echo hi'; echo \$?"
prof=$(mktemp /tmp/deny_unshare.XXXXXX.json)
printf '{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [ { "name": "unshare", "action": "SCMP_ACT_KILL" } ] }\n' >"$prof"
set +e
"$berth" run --rm --security-opt=seccomp="$prof" busybox sh -c 'unshare -U echo hi'
echo $?
set -e
rm -f "$prof"
