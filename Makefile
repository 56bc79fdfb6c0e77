# bulkhead — see README.md. Every target installs what it needs on a fresh
# Debian machine (scripts/install-deps, Go modules through the proxy).

GO        ?= go
BIN       := bin/bulkhead
EXAMPLE   ?= examples/minimal.yml
OUT       ?= out
# The local content store: component images and pulled images live here.
export BULKHEAD_STORE ?= $(CURDIR)/.cache/store
export SOURCE_DATE_EPOCH ?= 0

.PHONY: all build deps images kernel test test-unit bench fuzz lint demo powercut clean

all: build

deps:
	@scripts/install-deps

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/bulkhead

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
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./builder/... ./internal/init/apply/
	scripts/bench
	scripts/registry-bench

# Power cuts during updates, in qemu: N cuts (default 50) at random steps
# and offsets of an A/B update, each followed by a cold boot that must come
# up on the old or the new version, serving, with /var intact. Prints the
# table. (make test cuts once at each step.)
N ?= 50
powercut: deps images
	BULKHEAD_POWERCUTS=$(N) BULKHEAD_POWERCUT_TABLE=$(OUT)/powercut.txt \
	  $(GO) test -count=1 -timeout 300m -run '^TestPowerCuts$$' -v ./e2e/ | grep -v '^ *\[\|bulkhead-init\|^ *\[' ; \
	  cat $(OUT)/powercut.txt

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 60s -fuzzminimizetime 5s ./builder/config
	$(GO) test -run '^$$' -fuzz '^FuzzApplyLayer$$' -fuzztime 60s -fuzzminimizetime 200x ./builder/rootfs
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime 60s -fuzzminimizetime 200x ./internal/update

lint:
	@out=$$(gofmt -l cmd builder images internal kernel e2e 2>/dev/null); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin $(OUT)
