#!/bin/sh
# make bench: every benchmark side by side with its peer, printing ratios.
# Each stream adds its own line. CI does not run this (speed never fails CI).
set -eu
cd "$(dirname "$0")"
export PATH="/usr/local/go/bin:$PATH"
# cgroups: create+configure+delete of a container's cgroup set, berth vs runc's library.
(cd cgroups && go run . -n 200 -rounds 5)
# seccomp: program length, instructions executed per syscall and compile time, berth vs libseccomp (test-only cgo).
(cd .. && CGO_ENABLED=1 go run -tags libseccomp ./seccomp/internal/seccompbench -rounds 7)
# registry: pull + unpack of a 66 MB image from a loopback registry, berth vs dockerd 20.10.
(cd .. && go run ./bench/pull -rounds 5 -berth bin/berth)
# runtime: berth-runtime run vs runc run on the same busybox bundle (runc spec, process true): wall time, peak RSS.
(cd .. && go run ./bench/runtime -rounds 15 -berth bin/berth-runtime)
# engine: docker run --rm / docker exec through the docker CLI, berth daemon vs dockerd 20.10; monitor vs shim memory.
(cd .. && go run ./bench/engine -rounds 9 -berth bin/berth)
