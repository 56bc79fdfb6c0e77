# bulkhead — see README.md. Every target installs what it needs on a fresh
# Debian machine (scripts/install-deps, Go modules through the proxy).

GO        ?= go
BIN       := bin/bulkhead
EXAMPLE   ?= examples/minimal.yml
OUT       ?= out
# The local content store: component images and pulled images live here.
export BULKHEAD_STORE ?= $(CURDIR)/.cache/store
export SOURCE_DATE_EPOCH ?= 0

.PHONY: all build deps images kernel test test-unit bench fuzz lint demo powercut clean spec-docs man

all: build

deps:
	@scripts/install-deps

build:
	$(GO) build -trimpath -ldflags "-X main.commit=$$(git rev-parse HEAD 2>/dev/null)" -o $(BIN) ./cmd/bulkhead

# Component images (init, runc, kernels, systemd-boot, example services) into
# the local store. Cached: an unchanged recipe is not rebuilt. With
# SIGN_KEY=path/to/key (or env://NAME) each image is signed in the store.
# On a terminal a line shows the recipe being built and for how long.
images: build deps
	$(BIN) image build $(if $(SIGN_KEY),--sign-key $(SIGN_KEY)) images/*/

# The hardened kernel (kernel/README.md): kernel/build compiles it (about a
# quarter of an hour, once: cached by a hash of source, config and toolchain)
# and the recipe puts bulkhead/kernel:6.1-hardened into the store. `images`
# builds it too, through the same recipe.
kernel: build
	kernel/build
	$(BIN) image build $(if $(SIGN_KEY),--sign-key $(SIGN_KEY)) images/kernel-hardened

# The whole suite, boot tests in qemu included.
test: deps images
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 60m ./...

# Build the bundled example, boot it in qemu, ask the service, power off.
# Only the component images the example uses are built (not the hardened
# kernel, unless the example names it).
demo: deps build
	$(BIN) image build --for $(EXAMPLE) images/*/
	scripts/demo $(EXAMPLE)

bench: deps images
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./builder/... ./internal/host/apply/ ./internal/host/tpmseal/ ./internal/host/luks2/
	scripts/bench/run
	scripts/bench/linuxkit
	scripts/bench/registry
	scripts/bench/secureboot

# Power cuts during updates, in qemu: N cuts (default 50) at random steps
# and offsets of an A/B update, each followed by a cold boot that must come
# up on the old or the new version, serving, with /var intact. Prints the
# table. (make test cuts once at each step.)
N ?= 50
powercut: deps images
	BULKHEAD_POWERCUTS=$(N) BULKHEAD_POWERCUT_TABLE=$(OUT)/powercut.txt \
	  $(GO) test -count=1 -timeout 300m -run '^TestPowerCuts$$' -v ./e2e/ | grep -v '^ *\[\|bulkhead-init\|^ *\[' ; \
	  cat $(OUT)/powercut.txt

# Every reader of untrusted bytes, FUZZTIME each (go test runs one fuzz
# target per invocation): spec, layer, initrd (cpio, gzip, zstd), GPT,
# FAT chains and boot sector, ISO directory records, EROFS, signature
# bundles and DSSE envelopes, update bundles.
FUZZTIME ?= 60s
FUZZ_TARGETS := \
	./builder/config:FuzzParse \
	./builder/rootfs:FuzzApplyLayer \
	./builder/scan:FuzzReadInitrd \
	./builder/disk:FuzzReadLayout \
	./builder/disk:FuzzFATChains \
	./builder/disk:FuzzFATBootSector \
	./builder/disk:FuzzISORecords \
	./builder/rootimg:FuzzRead \
	./builder/sign:FuzzVerifyBundle \
	./internal/update:FuzzReader \
	./internal/host/luks2:FuzzReadHeader

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t#*:}; \
	  echo "fuzz $$fn ($$pkg)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x $$pkg; \
	done

lint:
	@out=$$(gofmt -l cmd builder images internal kernel e2e docs examples 2>/dev/null); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The spec reference and JSON Schema (docs/), generated from builder/config's
# types; TestSpecReference fails when the committed ones drift.
spec-docs:
	$(GO) test ./builder/config -run '^TestSpecReference$$' -count=1 -update

# The manual page, generated from every command's --help.
man: build
	mkdir -p docs/man
	$(BIN) man > docs/man/bulkhead.1

clean:
	rm -rf bin $(OUT)
