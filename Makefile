# ocirender / ocimount. `make demo` runs the main job on a generated sample image;
# `make test` installs what the tests need (Debian packages, as root) and runs everything.
GO      ?= go
BIN     := bin
DEMO    := demo
PKGS    := ./...
# Debian packages the tests and benchmarks drive as oracles and peers.
DEBS    := fuse3 squashfs-tools squashfs-tools-ng squashfuse umoci buildah skopeo debootstrap pigz attr \
           zstd xz-utils bzip2 tar time
FUZZTIME ?= 20s

.PHONY: all build test unit e2e demo bench fuzz lint deps clean

all: build

build:
	$(GO) build -trimpath -o $(BIN)/ocirender ./cmd/ocirender
	$(GO) build -trimpath -o $(BIN)/ocimount ./cmd/ocimount

# deps installs the Debian packages the tests need when some are missing (root only).
deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "not root: cannot install$$missing; tests that need them will skip"; fi; \
	fi

# test: every package under the race detector in -short mode (which skips the slow,
# tool-heavy cases), then the full end-to-end, squashfs and layer suites without it (they
# drive real tools and large streams, where the race detector only adds minutes; the
# end-to-end tests run our binaries, so the detector has nothing to watch in them).
test: deps lint
	$(GO) test -race -short -timeout 15m $$($(GO) list $(PKGS) | grep -v '/tests$$')
	$(GO) test -timeout 30m ./tests/ ./squashfs/ ./layer/

# unit runs the fast package tests only (no real tools, no root).
unit:
	$(GO) test -race -short $$($(GO) list ./... | grep -v /tests)

demo: build
	$(GO) run ./internal/imagetest/mksample $(DEMO)/sample
	@echo "== ocirender ls -l -R $(DEMO)/sample"
	$(BIN)/ocirender ls -l -R $(DEMO)/sample
	@echo "== ocirender stat $(DEMO)/sample /usr/bin/ping"
	$(BIN)/ocirender stat $(DEMO)/sample /usr/bin/ping
	@echo "== ocirender cat $(DEMO)/sample /etc/os-release (from the index cache)"
	$(BIN)/ocirender cat $(DEMO)/sample /etc/os-release
	rm -rf $(DEMO)/sample.tar $(DEMO)/rootfs $(DEMO)/sample.sqfs
	$(BIN)/ocirender export --format tar -o $(DEMO)/sample.tar $(DEMO)/sample
	@echo "== tar -tvf $(DEMO)/sample.tar"
	tar --numeric-owner -tvf $(DEMO)/sample.tar
	$(BIN)/ocirender export --format dir -o $(DEMO)/rootfs $(DEMO)/sample
	@echo "== exported directory $(DEMO)/rootfs"
	ls -lAR $(DEMO)/rootfs
	rm -f $(DEMO)/sample.sqfs
	$(BIN)/ocirender export --format squashfs -o $(DEMO)/sample.sqfs $(DEMO)/sample
	@echo "== unsquashfs -lln $(DEMO)/sample.sqfs"
	@if command -v unsquashfs >/dev/null; then unsquashfs -lln $(DEMO)/sample.sqfs; else echo "(unsquashfs not installed: make deps)"; fi
	@echo "== ocirender verify $(DEMO)/sample.sqfs --image $(DEMO)/sample"
	$(BIN)/ocirender verify $(DEMO)/sample.sqfs --image $(DEMO)/sample
	@echo "== ocirender pull: the sample from a registry on 127.0.0.1, as squashfs (the bytes of the export above)"
	$(GO) build -o $(DEMO)/registry ./internal/registrytest/serve
	rm -f $(DEMO)/pulled.sqfs; $(DEMO)/registry $(DEMO)/sample "" demo/sample:v1 > $(DEMO)/ref & pid=$$!; \
	  for i in $$(seq 50); do [ -s $(DEMO)/ref ] && break; sleep 0.1; done; \
	  $(BIN)/ocirender pull --no-cache --format squashfs -o $(DEMO)/pulled.sqfs $$(cat $(DEMO)/ref); rc=$$?; \
	  kill $$pid; [ $$rc = 0 ] && cmp $(DEMO)/pulled.sqfs $(DEMO)/sample.sqfs && echo "pulled.sqfs: the same bytes as sample.sqfs"
	@echo "== ocimount --daemon $(DEMO)/sample $(DEMO)/mnt; ls -lR; ocimount -u"
	@if [ -e /dev/fuse ] && [ "$$(id -u)" = 0 ]; then \
	  mkdir -p $(DEMO)/mnt && $(BIN)/ocimount --daemon $(DEMO)/sample $(DEMO)/mnt && \
	  ls -lR $(DEMO)/mnt; $(BIN)/ocimount -u $(DEMO)/mnt; \
	else echo "(needs root and /dev/fuse)"; fi

bench: build deps
	$(GO) test -run '^$$' -bench . -benchtime 3x -timeout 60m ./tests/ | tee bench.txt

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzReadChanges -fuzztime $(FUZZTIME) ./overlay
	$(GO) test -run '^$$' -fuzz FuzzMerge -fuzztime $(FUZZTIME) ./overlay
	$(GO) test -run '^$$' -fuzz FuzzDecompress -fuzztime $(FUZZTIME) ./layer
	$(GO) test -run '^$$' -fuzz FuzzOpenLayout -fuzztime $(FUZZTIME) ./image
	$(GO) test -run '^$$' -fuzz FuzzOpenArchive -fuzztime $(FUZZTIME) ./image
	$(GO) test -run '^$$' -fuzz FuzzFromManifest -fuzztime $(FUZZTIME) ./image
	$(GO) test -run '^$$' -fuzz FuzzInflate -fuzztime $(FUZZTIME) ./layer
	$(GO) test -run '^$$' -fuzz FuzzParallel -fuzztime $(FUZZTIME) ./layer
	$(GO) test -run '^$$' -fuzz FuzzGzipResume -fuzztime $(FUZZTIME) ./layer
	$(GO) test -run '^$$' -fuzz FuzzZstdFrames -fuzztime $(FUZZTIME) ./layer
	$(GO) test -run '^$$' -fuzz FuzzUnmarshalMap -fuzztime $(FUZZTIME) ./layer
	$(GO) test -run '^$$' -fuzz FuzzFirstBlockFilters -fuzztime $(FUZZTIME) ./internal/xzheader
	$(GO) test -run '^$$' -fuzz FuzzUnmarshal -fuzztime $(FUZZTIME) ./index
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./internal/cache
	$(GO) test -run '^$$' -fuzz FuzzOpen -fuzztime $(FUZZTIME) -fuzzminimizetime 3s ./squashfs

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf $(BIN) $(DEMO)
