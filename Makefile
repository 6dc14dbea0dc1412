# berth — build, test, demo, bench. Everything runs as root on Debian 12.
SHELL      := /bin/bash
GO         ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS    := -s -w -X main.version=$(VERSION) -X main.gitCommit=$(COMMIT)
GOFLAGS_BUILD := -trimpath -tags 'netgo osusergo nsenter_embedded init_embedded'
NSENTER    := internal/nsjoin/embedded/berth-nsenter
INITBIN    := internal/initbin/embedded/berth-init
export CGO_ENABLED ?= 0
TEST_TIMEOUT ?= 60m

.PHONY: all build deps test test-unit test-integration vet demo bench clean

all: build

deps:
	@./hack/deps.sh

# bin/berth is static (CGO_ENABLED=0): it is copied into containers and
# onto hosts as a single file. bin/berth-runtime is the runc-compatible
# runtime alone (`berth runtime` is the same command line): a small binary
# starts faster, and the runtime starts once per container operation. Both
# embed the container init stage (cmd/berth-init) and the nsenter helper.
build: $(NSENTER)
	$(GO) build -trimpath -tags 'netgo osusergo' -ldflags '-s -w' -o $(INITBIN) ./cmd/berth-init
	sha256sum $(INITBIN) | cut -c1-16 > $(INITBIN).id
	$(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o bin/berth ./cmd/berth
	rm -f bin/berth-runtime
	$(GO) build $(GOFLAGS_BUILD) -ldflags '-s -w -X main.version=$(VERSION)' -o bin/berth-runtime ./cmd/berth-runtime
	$(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o bin/berth-monitor ./cmd/berth-monitor

# The one C program: joins a container's namespaces for exec (a Go process
# cannot setns into user/mount namespaces). Static, embedded in bin/berth.
$(NSENTER): internal/nsjoin/csrc/nsenter.c
	@mkdir -p $(dir $@)
	gcc -static -Os -s -Wall -Werror -o $@ $<

vet: $(NSENTER)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

# The whole suite: unit tests, fuzz corpora, and root integration tests
# against the real kernel and the real peers (runc, docker CLI, registry).
# The executables the tests' binaries seal under /run/berth/exe are
# removed at the end (hack/unseal.sh), those there before are kept.
# seccomp's differential tests against libseccomp use test-only cgo.
test: deps build vet
	@sealed="$$(ls /run/berth/exe 2>/dev/null || true)"; trap './hack/unseal.sh $$sealed' EXIT; set -ex; \
	BERTH_BIN=$(CURDIR)/bin/berth $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...; \
	CGO_ENABLED=1 $(GO) test -count=1 -tags libseccomp -run Libseccomp ./seccomp/...; \
	$(MAKE) test-oci

# The OCI runtime validation suite (runtime-tools, fetched and built into
# build/ at test time), run against runc, crun and berth side by side;
# fails if berth fails a file runc or crun passes. See test/oci.
OCI_SUITE ?= $(CURDIR)/build/oci-runtime-tools
.PHONY: test-oci
test-oci: build
	$(GO) run ./test/oci -suite $(OCI_SUITE) -require berth \
		-runtime runc=runc -runtime crun=crun,hide-cgroup2 -runtime berth=$(CURDIR)/bin/berth-runtime

# The talk's first command, on a fresh machine.
demo: deps build
	./hack/demo.sh

bench: deps build
	./bench/run.sh

clean:
	rm -rf bin

# Pure cgroup v2, for real: boots Debian's kernel in qemu (TCG) with a busybox
# initramfs and runs the cgroup tests there. `make test` runs it too (./test/vm).
.PHONY: test-vm
test-vm: build
	BERTH_BIN=$(CURDIR)/bin/berth $(GO) test -count=1 -timeout 30m -v -run VM ./test/vm/
