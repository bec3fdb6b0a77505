# asyncloop, for people. The real build is CMake (see CMakeLists.txt).
#
#   make demo    install what is missing, build, run the echo demo
#   make test    install what is missing, build, run every test suite, with
#                the checks: ASan+UBSan and race-detector trees, 60 s fuzz
#                (CHECKS=OFF: the plain suites only)
#   make build   configure and build into build/
#   make install PREFIX=/usr/local   build, then install the library, header,
#                CMake package and pkg-config file under PREFIX (DESTDIR works)
#   make deps    install only the missing tools (apt-get / pip)
#   make fuzz    the C ABI fuzz harness under ASan+UBSan (FUZZ_SECONDS=600)
#   make soak    mixed load with leak trend checks (SOAK_MINUTES=5)
#   make bench   benchmarks side by side with the peers (bench/README.md)
#   make bench-seam  seam costs per host (docs/architecture.md)
#   make clean   remove build/ (the check trees live in it)

SHELL := /bin/bash
BUILD_DIR ?= build
CTEST_JOBS ?= 2
PREFIX ?= /usr/local
# CPython versions the Python binding is tested on (CTest python-3.X entries).
PYTHON_VERSIONS ?= 3.11 3.12 3.13
empty :=
space := $(empty) $(empty)
# make test builds and runs the check trees (docs/architecture.md, Checks).
CHECKS ?= ON
# make build alone does not.
ASYNCLOOP_CHECKS ?= OFF
FUZZ_SECONDS ?= 600
FUZZ_SEED ?= $(shell date +%s)
SOAK_MINUTES ?= 5

.PHONY: all build test demo deps clean help bench bench-seam install fuzz soak

all: build

help:
	@sed -n '3,17p' Makefile

build:
	cmake -S . -B $(BUILD_DIR) -G Ninja "-DALOOP_PYTHON_VERSIONS=$(subst $(space),;,$(strip $(PYTHON_VERSIONS)))" \
	  -DASYNCLOOP_CHECKS=$(ASYNCLOOP_CHECKS)
	cmake --build $(BUILD_DIR)

install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX)

test: deps
	@$(MAKE) --no-print-directory build ASYNCLOOP_CHECKS=$(CHECKS)
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(CTEST_JOBS)

# The fuzz harness over the C ABI, sanitized (the ASan tree), for
# FUZZ_SECONDS: the corpus first, then random and mutated inputs from seed
# FUZZ_SEED (default: the time) on. A failure prints the input's seed, saves
# the input next to the binary and prints the command that reproduces it.
# FUZZ_ARGS adds options (e.g. --save-new DIR to keep inputs that reach new
# results). The sanitizer options are those of the asan-* tests
# (CMakeLists.txt).
FUZZ_ASAN_OPTIONS ?= detect_leaks=1:handle_segv=1:abort_on_error=0:print_summary=1
fuzz: deps
	cmake -S . -B $(BUILD_DIR)/asan -G Ninja -DASYNCLOOP_SANITIZE=ON
	cmake --build $(BUILD_DIR)/asan --target fuzz-abi
	cd $(BUILD_DIR)/asan && ASAN_OPTIONS=$(FUZZ_ASAN_OPTIONS) \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ./tests/fuzz/fuzz-abi --seconds $(FUZZ_SECONDS) --seed $(FUZZ_SEED) \
	  --corpus $(CURDIR)/tests/fuzz/corpus --crash-dir . $(FUZZ_ARGS)

# SOAK_MINUTES of mixed TCP/UDP/TLS/subprocess/timer load over loopback;
# fails when RSS, open fds or live handles keep rising (tests/soak/soak.c).
soak: deps
	@$(MAKE) --no-print-directory build
	$(BUILD_DIR)/tests/soak/soak --minutes $(SOAK_MINUTES)

demo: deps build
	BUILD_DIR=$(abspath $(BUILD_DIR)) bash examples/demo.sh

# Checks each tool and installs only what is missing (Debian package names).
# A fresh CI machine already has Go, Python 3 with pytest, Node, gcc, cmake
# and ninja, so normally this only runs `go mod download`, and gives pytest
# (a venv under $(BUILD_DIR)/python-venvs, from PyPI) to each CPython of
# PYTHON_VERSIONS that lacks it; CPython 3.12 and 3.13 come from pyenv (no
# registry serves interpreters): one that is missing is reported here, and
# its CTest entries as not run. The asyncio libraries that python-libraries
# runs on asyncloop get a venv $(BUILD_DIR)/libs-venv (pinned versions of
# tests/python/libraries/requirements.txt, from PyPI); without it that entry
# is reported as not run.
deps:
	@set -e; \
	missing=""; \
	need() { command -v "$$1" >/dev/null 2>&1 || missing="$$missing $$2"; }; \
	need go golang-go; \
	need cmake cmake; \
	need ninja ninja-build; \
	need gcc "gcc libc6-dev"; \
	need nm binutils; \
	need node nodejs; \
	need python3 python3; \
	if command -v node >/dev/null 2>&1 && \
	   [ ! -f /usr/include/node/node_api.h ] && [ ! -f /usr/local/include/node/node_api.h ] && \
	   [ -z "$${NODE_API_INCLUDE_DIR:-}" ]; then missing="$$missing libnode-dev"; fi; \
	sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing:$$missing"; \
	  $$sudo apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi; \
	if ! python3 -m pytest --version >/dev/null 2>&1; then \
	  echo "deps: installing pytest"; \
	  python3 -m pip install -q pytest || { \
	    $$sudo apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq python3-pytest; }; \
	fi; \
	if ! python3 -m auditwheel --version >/dev/null 2>&1; then \
	  echo "deps: installing auditwheel (checks the wheel's manylinux tag)"; \
	  python3 -m pip install -q auditwheel; \
	fi; \
	for v in $(PYTHON_VERSIONS); do \
	  bash tests/python/with_python.sh $$v $(abspath $(BUILD_DIR))/python-venvs --setup | sed 's/^/deps: /'; \
	  rc=$${PIPESTATUS[0]}; [ $$rc = 0 ] || [ $$rc = 77 ] || exit 1; \
	done; \
	bash tests/python/libraries/run.sh $(abspath $(BUILD_DIR))/libs-venv --setup | sed 's/^/deps: /'; \
	rc=$${PIPESTATUS[0]}; [ $$rc = 0 ] || [ $$rc = 77 ] || exit 1; \
	go mod download; \
	echo "deps: ok ($$(go version | cut -d' ' -f3), cmake $$(cmake --version | head -1 | cut -d' ' -f3), node $$(node --version), $$(python3 --version))"

bench: deps build
	BUILD_DIR=$(abspath $(BUILD_DIR)) python3 bench/run.py

bench-seam: deps build
	BUILD_DIR=$(BUILD_DIR) bash bench/seam.sh

clean:
	rm -rf $(BUILD_DIR)
