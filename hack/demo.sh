#!/bin/sh
# The talk's first command with berth on a fresh machine: build a busybox
# bundle from Debian's busybox-static and run it through berth's runtime.
set -eu
cd "$(dirname "$0")/.."
b=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$b"' EXIT
go run ./hack/mkbundle "$b"
cd "$b"
echo "+ berth-runtime run demo   # sh -c 'echo \"hello world\"' in a busybox bundle"
exec "$OLDPWD/bin/berth-runtime" --root "$b/state" run demo
