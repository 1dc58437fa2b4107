# The front door. `make run` and `make test` install what is missing
# (scripts/deps.sh, idempotent), build, and run. Build trees:
#   build/        release-with-debug-info
#   build-asan/   ASan + UBSan (make test runs the suite there too)
#   build-fuzz/   clang + libFuzzer (make fuzz)
#   build-tsan/   ThreadSanitizer (make test-tsan: workers and the RTMP e2e subset)
#   build-clang/  clang, Release (make test builds it and runs its unit tests:
#                 a packager's -O3 build with the other compiler must pass too)
CONFIG ?= sluice.yml
JOBS ?= 2
PYTEST ?= /usr/bin/python3 -m pytest
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=

.PHONY: all build build-asan build-clang build-tsan test-tsan deps deps-test run install install-build deb test-deb web-players test test-unit test-sdk test-e2e test-browser test-asan test-fuzz-replay fuzz bench clean

all: build

deps:
	@bash scripts/deps.sh build

deps-test:
	@bash scripts/deps.sh test

build: web-players
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j$(JOBS)

# hls.js and mpegts.js for web/test/*.html, pinned by clients/web/players/package-lock.json,
# copied into web/test/lib/ (a no-op once they are there).
web-players:
	@bash scripts/web-players.sh

build-asan:
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSL_SANITIZE=ON -DSL_FAULT_INJECTION=ON >/dev/null
	@cmake --build build-asan -j$(JOBS)

build-clang:
	@CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-clang -j$(JOBS)

run: deps build
	./build/sluice --config $(CONFIG)

# Install (docs/install.md): the binary, the client tools, libsluice-client
# with sluice/client.h and sluice-client.pc, the plugin headers with
# sluice-plugin.pc, the web root (console, SDK, test pages) in
# $(PREFIX)/share/sluice/web, man pages, and a default configuration
# ($(DESTDIR)/etc/sluice/sluice.yml when PREFIX is /usr, else
# $(PREFIX)/etc/sluice/sluice.yml; an existing one is kept). Its own build tree
# (INSTALL_BUILD), configured for PREFIX: the binary's compiled-in web root is
# $(PREFIX)/share/sluice/web. Builds only what it installs (no tests).
# INSTALL_DATA_DIR sets server.data_dir in the installed sluice.yml (the
# Debian package: /var/lib/sluice); empty keeps ./data.
PREFIX ?= /usr/local
INSTALL_BUILD ?= build-install
INSTALL_DATA_DIR ?=
INSTALL_TARGETS = sluice sluice-publish sluice-play sluice-bench sluice-so sluice_client_shared
install-build:
	@bash scripts/web-players.sh
	@cmake -S . -B $(INSTALL_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSL_TESTS=OFF \
	    -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DSL_INSTALL_DATA_DIR=$(INSTALL_DATA_DIR) >/dev/null
	@cmake --build $(INSTALL_BUILD) -j$(JOBS) --target $(INSTALL_TARGETS)

install: install-build
	DESTDIR=$(DESTDIR) cmake --install $(INSTALL_BUILD)

# The Debian package (debian/; docs/install.md): built from a copy of the
# tree in $(DEB_OUT)/src, so that dpkg-buildpackage neither writes beside
# this checkout nor reuses its build trees; the .deb files land in $(DEB_OUT).
DEB_OUT ?= $(CURDIR)/build-deb
deb:
	@bash scripts/build-deb.sh $(DEB_OUT)

# The packaging test that builds the .deb (marker `deb`, tests/e2e/test_packaging.py):
# a full build from a copy of the tree, opt-in in the e2e suite and run once by
# `make test` after the other e2e tests. Measured here (two shared cores, other
# builds running): 3m27s, 4m28s and 8m37s wall for the whole test, 1.5-1.8 min of
# CPU each; on an idle two-core CI machine about 2 min.
test-deb:
	$(PYTEST) tests/e2e/test_packaging.py -q -m deb --durations=5 $(PYTEST_ARGS)

# The release e2e pass runs every server with two event loops (server.workers: 2: RTMP
# players' fan-out and WHEP viewers' SRTP on a worker; the default, 0, is one per core, and 2
# is said so the pass is the same on any machine), the ASan pass with one, so both the
# sharded and the single-loop server go through the suite on every run; browser and package
# tests run the default. Each stage prints its wall time ("make test: <stage> N s"), so a CI
# log shows where the time goes (CI must stay under 45 minutes on two cores).
stage = @t0=$$(date +%s); $(MAKE) --no-print-directory $(2) && \
    echo "make test: $(1) $$(( $$(date +%s) - t0 )) s (load $$(cut -d' ' -f1-3 /proc/loadavg))"
test: deps-test
	@/usr/bin/python3 scripts/check-layers.py
	$(call stage,builds,build build-asan install-build)
	$(call stage,unit,test-unit BUILD=build)
	$(call stage,fuzz-replay,test-fuzz-replay BUILD=build-asan)
	$(call stage,release-e2e,test-e2e BUILD=build E2E_WORKERS=2)
	$(call stage,browser,test-browser BUILD=build)
	$(call stage,test-deb,test-deb)
	$(call stage,asan-unit,test-unit BUILD=build-asan)
	$(call stage,asan-e2e,test-e2e BUILD=build-asan E2E_WORKERS=1 E2E_MARK="not slow and not examples and not exclusive" E2E_JOBS=2)
	$(call stage,clang,build-clang test-unit BUILD=build-clang)

BUILD ?= build
test-unit:
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-fuzz-replay:
	@bash scripts/fuzz-replay.sh $(BUILD)

# tests/s3: s3rver (package-lock.json), the S3-compatible store of test_s3_upload.py.
# tests/openapi: Redocly CLI (package-lock.json), the linter test_openapi.py runs on
# docs/openapi.yaml (one bundled package, ~2 s to install, lint well under a second).
# Two at a time (pytest-xdist, a test file per worker), then the tests marked `exclusive`
# (they measure rates and delays a neighbour would disturb) alone. E2E_JOBS=0 runs all in one
# process; E2E_MARK narrows the selection (the ASan pass skips `slow`). pytest exits 5 when
# a selection is empty, which is not a failure here.
E2E_JOBS ?= 2
E2E_MARK ?=
# Every e2e pass ends with its slowest tests (setup, call and teardown apart), so a
# CI log shows where the time goes.
E2E_DURATIONS ?= 25
e2e_and = $(if $(E2E_MARK), and ($(E2E_MARK)))
test-e2e:
	cd tests/s3 && npm ci --no-audit --no-fund --silent
	cd tests/openapi && npm ci --no-audit --no-fund --silent
	SLUICE_BIN=$(CURDIR)/$(BUILD)/sluice $(PYTEST) tests/e2e -q -n $(E2E_JOBS) --dist loadfile \
	    --durations=$(E2E_DURATIONS) -m "not exclusive$(e2e_and)" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	SLUICE_BIN=$(CURDIR)/$(BUILD)/sluice $(PYTEST) tests/e2e -q --durations=$(E2E_DURATIONS) \
	    -m "exclusive$(e2e_and)" $(PYTEST_ARGS) || [ $$? -eq 5 ]

# The browser SDK's unit tests (clients/web/test, node's test runner; no
# dependencies, no npm step). test-browser runs them first.
test-sdk:
	cd clients/web && node --test test/

# playwright-core (tests/browser/package-lock.json) driving Debian's Chromium. Two
# test files at a time (each its own sluice, Chromium and free ports, like the e2e
# files under xdist); node's default on two cores is one (availableParallelism - 1).
BROWSER_JOBS ?= 2
test-browser: test-sdk
	cd tests/browser && npm ci --no-audit --no-fund && \
	    SLUICE_BIN=$(CURDIR)/$(BUILD)/sluice node --test --test-concurrency=$(BROWSER_JOBS)

test-asan: deps-test build-asan
	@$(MAKE) --no-print-directory test-unit BUILD=build-asan
	@$(MAKE) --no-print-directory test-e2e BUILD=build-asan

# ThreadSanitizer (server.workers: frames, buffers and messages cross event loops):
# build-tsan/, the unit tests of what crosses threads (workers_test: the inboxes and
# loops; frame_threads_test: shared frames, buffers and the encoding cache;
# srtp_split_test: an SRTP session's halves on two threads), then the RTMP and WHEP
# e2e subset (TSAN_E2E) with two event loops. Any ThreadSanitizer report fails
# a unit test (halt_on_error) or an e2e test (conftest's sanitizer check).
TSAN_UNIT ?= workers_test frame_threads_test srtp_split_test media_relay_test
TSAN_E2E ?= tests/e2e/test_workers.py tests/e2e/test_rtmp_basic.py tests/e2e/test_rtmp_players.py \
    tests/e2e/test_rtmp_audio_hold.py tests/e2e/test_whep_workers.py tests/e2e/test_httpflv_workers.py \
    tests/e2e/test_httpflv.py
build-tsan:
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSL_SANITIZE=thread >/dev/null
	@cmake --build build-tsan -j$(JOBS) --target sluice $(TSAN_UNIT)

test-tsan: deps-test build-tsan
	@for t in $(TSAN_UNIT); do TSAN_OPTIONS="halt_on_error=1" ./build-tsan/$$t || exit 1; done
	E2E_WORKERS=2 TSAN_OPTIONS="halt_on_error=0" SLUICE_BIN=$(CURDIR)/build-tsan/sluice \
	    $(PYTEST) $(TSAN_E2E) -q -n $(E2E_JOBS) --dist loadfile --durations=$(E2E_DURATIONS) -m "not slow" $(PYTEST_ARGS)

fuzz: deps-test
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSL_FUZZ=ON -DSL_SANITIZE=ON -DSL_TESTS=OFF >/dev/null
	@cmake --build build-fuzz -j$(JOBS)
	@bash scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf build build-asan build-fuzz build-clang build-tsan
