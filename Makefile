# Makefile: the entry points of Herald (see README.md and docs/development.md).
#
#   make run     install what running needs (no test venv), build the daemon (release, quietly),
#                start private Redis and PostgreSQL under .run/services unless HERALD_REDIS_URL and
#                HERALD_DATABASE_URL are both set (one without the other is refused), migrate, and
#                run the daemon in the foreground. The private servers stay up after Ctrl-C;
#                `make stop` stops them. The demo data (herald migrate --demo) are loaded into the
#                private database only, unless DEMO=1 (or DEMO=0 to skip them).
#   make test    install, build, run every test against private servers in a fresh run directory,
#                stop them; the exit code is the verdict. Extra swift test arguments:
#                make test ARGS='--filter HeraldCoreTests'
#   make bench   build the benchmark package (Benchmarks/, its own .build) and run its scenarios against
#                private servers; writes .bench/latest.json
#   make image   the Docker image herald:<version> (and :latest) from topology/docker/Dockerfile: the
#                release binary on a Debian 12 root made with debootstrap and docker import (no
#                registry needed; cached under .run/image), also saved as .run/image/herald-<version>.tar.
#                Uses the running Docker daemon, or starts a private one for the duration
#                (topology/docker/image.sh)
#   make image-test  make image, then run it against private Redis and PostgreSQL: migrate --demo,
#                the daemon, a demo plan due in seconds must fire; PASS or FAIL, the log in
#                .run/image-test.log
#   make install install the built binary (make build first, or HERALD=path), the topology, an example
#                env file and the systemd unit (topology/systemd/install.sh): PREFIX (default
#                /usr/local), DESTDIR, SYSCONFDIR (default /etc), UNITDIR (default
#                PREFIX/lib/systemd/system); an existing topology or env file is never overwritten
#   make fuzz    build the fuzz package (Fuzz/, its own .build, libFuzzer + AddressSanitizer) and run
#                each target for FUZZ_SECONDS (default 600): the event decoder, the cron parser, the
#                topology loader, the RESP reader (Tests/Support/fuzz.sh; seeds in Tests/Fuzz)
#   make lint    swift-format lint --strict (configuration: .swift-format), and a build of both packages
#                that refuses an import of a module the importing target does not declare
#
# The helpers live in Tests/Support: deps.sh (apt packages, Python venv), services.sh (the private
# servers), run-tests.sh (the test run); the image's in topology/docker, the unit in topology/systemd.
# Everything they create is under .run/ (git-ignored).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

SUPPORT      := $(CURDIR)/Tests/Support
SERVICES     := $(SUPPORT)/services.sh
SERVICES_DIR := $(CURDIR)/.run/services
HERALD       := $(CURDIR)/.build/release/herald
BENCH_PKG    := $(CURDIR)/Benchmarks
HERALD_BENCH := $(BENCH_PKG)/.build/release/herald-bench
LINT_PATHS   := Sources Tests Benchmarks Fuzz/Sources Fuzz/Package.swift Package.swift
ARGS         ?=
DEMO         ?=
BENCH_ARGS   ?=
IMAGE_SH     := $(CURDIR)/topology/docker/image.sh
PREFIX       ?= /usr/local
SYSCONFDIR   ?= /etc
UNITDIR      ?= $(PREFIX)/lib/systemd/system
DESTDIR      ?=

.PHONY: help deps build test run stop bench fuzz lint clean image image-test install

help:
	@echo "Herald: make targets"
	echo "  make deps    install missing apt packages and the test Python venv (.run/venv)"
	echo "  make build   swift build -c release --static-swift-stdlib (.build/release/herald)"
	echo "  make test    build and run every test against private Redis/PostgreSQL"
	echo "               (extra swift test arguments: make test ARGS='--filter HeraldCoreTests')"
	echo "  make run     build, start private Redis/PostgreSQL under .run/services (unless"
	echo "               HERALD_REDIS_URL and HERALD_DATABASE_URL are set), migrate, run the daemon"
	echo "  make stop    stop the private servers make run started"
	echo "  make bench   build the benchmark package Benchmarks/ and run every scenario against"
	echo "               private servers; writes .bench/latest.json"
	echo "  make fuzz    libFuzzer targets (event decoder, cron, topology, RESP reader), FUZZ_SECONDS"
	echo "               each (default 600); findings under .run/fuzz/<target>/"
	echo "  make image   Docker image herald:<version> (debootstrap base, no registry needed; a private"
	echo "               dockerd is started when none runs), also saved as .run/image/herald-<version>.tar"
	echo "  make image-test  make image, run it against private Redis/PostgreSQL, check a plan fires"
	echo "               (PASS/FAIL; log in .run/image-test.log)"
	echo "  make install install binary (after make build), topology, example env file, systemd unit"
	echo "               (PREFIX=/usr/local DESTDIR= SYSCONFDIR=/etc UNITDIR=PREFIX/lib/systemd/system)"
	echo "  make lint    swift-format lint --strict (.swift-format) and the build's import check"
	echo "  make clean   stop private servers, remove .build, Benchmarks/.build, Fuzz/.build and .run"

deps:
	@bash "$(SUPPORT)/deps.sh"

build: deps
	@swift build -c release --static-swift-stdlib

test:
	@bash "$(SUPPORT)/run-tests.sh" $(ARGS)

run:
	@bash "$(SUPPORT)/deps.sh" --runtime
	# Only the daemon, quietly: the static standard library's link warnings are not the user's concern.
	set +o pipefail
	swift build -c release --static-swift-stdlib -q --product herald 2>&1 |
	  grep -v -E "use of .mktemp. is dangerous|prohibited flag" || true
	test "$${PIPESTATUS[0]}" -eq 0 || { echo "make run: the build failed" >&2; exit 1; }
	set -o pipefail
	if [[ -n "$${HERALD_REDIS_URL:-}" && -z "$${HERALD_DATABASE_URL:-}" ]] ||
	   [[ -z "$${HERALD_REDIS_URL:-}" && -n "$${HERALD_DATABASE_URL:-}" ]]; then
	  echo "make run: set both HERALD_REDIS_URL and HERALD_DATABASE_URL (your servers), or neither" >&2
	  echo "          (private servers under .run/services); one without the other would pair your" >&2
	  echo "          server with a private one" >&2
	  exit 2
	fi
	private_db=0
	if [[ -z "$${HERALD_REDIS_URL:-}" || -z "$${HERALD_DATABASE_URL:-}" ]]; then
	  [[ -n "$${HERALD_DATABASE_URL:-}" ]] || private_db=1
	  export HERALD_RUN_DIR="$(SERVICES_DIR)"
	  bash "$(SERVICES)" start
	  bash "$(SERVICES)" createdb herald
	  source "$(SERVICES_DIR)/env"
	  export HERALD_REDIS_URL="$${HERALD_REDIS_URL:-$$HERALD_TEST_REDIS_URL}"
	  export CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$$HERALD_REDIS_URL}"
	  export HERALD_DATABASE_URL="$${HERALD_DATABASE_URL:-postgresql://postgres@127.0.0.1:$$HERALD_TEST_PG_PORT/herald}"
	  # the daemon gets HERALD_* settings only, not the test harness variables
	  unset HERALD_RUN_DIR $$(compgen -v HERALD_TEST_)
	  echo "private servers under .run/services (they stay up after Ctrl-C; make stop stops them)" >&2
	fi
	echo "HERALD_REDIS_URL=$$HERALD_REDIS_URL" >&2
	echo "HERALD_DATABASE_URL=$$HERALD_DATABASE_URL" >&2
	# Migrate when the binary has the subcommand; the demo data go only into the private database
	# (or wherever DEMO=1 says), never by default into a database the caller pointed us at.
	help=$$("$(HERALD)" --help 2>&1 || true)
	if grep -qE '^[[:space:]]+migrate([[:space:]]|$$)' <<<"$$help"; then
	  migrate_args=()
	  demo="$(DEMO)"
	  [[ -n "$$demo" ]] || demo=$$private_db
	  migrate_help=$$("$(HERALD)" migrate --help 2>&1 || true)
	  if [[ "$$demo" == 1 && "$$migrate_help" == *--demo* ]]; then
	    migrate_args+=(--demo)
	  fi
	  # Herald's look-alikes of Dify's tables only in the private database (a database you point
	  # Herald at must be Dify's own: migrate refuses one without Dify's tables).
	  if [[ "$$private_db" == 1 && "$$migrate_help" == *--create-dify-tables* ]]; then
	    migrate_args+=(--create-dify-tables)
	  fi
	  "$(HERALD)" migrate "$${migrate_args[@]}" || { echo "make run: herald migrate failed" >&2; exit 1; }
	fi
	exec "$(HERALD)" run

stop:
	@HERALD_RUN_DIR="$(SERVICES_DIR)" bash "$(SERVICES)" stop
	bash "$(SERVICES)" reap

bench: build
	@swift build -c release --static-swift-stdlib --package-path "$(BENCH_PKG)"
	bash "$(SERVICES)" reap
	export HERALD_RUN_DIR="$(CURDIR)/.run/bench-$$$$"
	trap 'trap "" INT TERM; bash "$(SERVICES)" destroy || true' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	bash "$(SERVICES)" start
	source "$$HERALD_RUN_DIR/env"
	export HERALD_REDIS_URL="$$HERALD_TEST_REDIS_URL" HERALD_DATABASE_URL="$$HERALD_TEST_DATABASE_URL"
	export HERALD_BIN="$(HERALD)"
	mkdir -p .bench
	"$(HERALD_BENCH)" all --json .bench/latest.json $(BENCH_ARGS)

fuzz: deps
	@bash "$(SUPPORT)/fuzz.sh"

image:
	@bash "$(SUPPORT)/deps.sh" --runtime
	# The daemon alone, static standard library, quietly (as make run builds it).
	set +o pipefail
	swift build -c release --static-swift-stdlib -q --product herald 2>&1 |
	  grep -v -E "use of .mktemp. is dangerous|prohibited flag" || true
	test "$${PIPESTATUS[0]}" -eq 0 || { echo "make image: the build failed" >&2; exit 1; }
	set -o pipefail
	bash "$(IMAGE_SH)" build

# The whole output (the build too) also goes to .run/image-test.log.
image-test:
	@mkdir -p .run
	{ $(MAKE) image && bash "$(IMAGE_SH)" test; } 2>&1 | tee .run/image-test.log

install:
	@bash "$(CURDIR)/topology/systemd/install.sh" "$(HERALD)" "$(DESTDIR)" "$(PREFIX)" "$(SYSCONFDIR)" "$(UNITDIR)"

lint: deps
	@# swift-format ships with the toolchain (Swift 6 and later) as `swift format`
	if swift format --version >/dev/null 2>&1; then
	  swift_format=(swift format)
	elif command -v swift-format >/dev/null 2>&1; then
	  swift_format=(swift-format)
	else
	  echo "make lint: swift-format is missing: it ships with the Swift toolchain (6.0 and later) as" >&2
	  echo "           'swift format'; put that toolchain's usr/bin on PATH" >&2
	  exit 1
	fi
	status=0
	echo "lint: swift-format lint --strict ($$("$${swift_format[@]}" --version))" >&2
	"$${swift_format[@]}" lint --strict --configuration .swift-format --recursive --parallel $(LINT_PATHS) || status=1
	echo "lint: imports declared by their targets (Package.swift, Benchmarks/, Fuzz/)" >&2
	python3 "$(SUPPORT)/check_imports.py" . Benchmarks Fuzz || status=1
	echo "lint: swift build --build-tests --explicit-target-dependency-import-check error" >&2
	swift build --build-tests --explicit-target-dependency-import-check error || status=1
	echo "lint: the same for the benchmark package (--package-path Benchmarks)" >&2
	swift build --package-path "$(BENCH_PKG)" --explicit-target-dependency-import-check error || status=1
	if ((status)); then echo "make lint: FAILED (see above)" >&2; else echo "make lint: ok" >&2; fi
	exit $$status

clean:
	@HERALD_RUN_DIR="$(SERVICES_DIR)" bash "$(SERVICES)" destroy
	bash "$(SERVICES)" reap
	rm -rf .build Benchmarks/.build Fuzz/.build
	# keep the directories of test/bench runs still in progress; everything else under .run goes
	if [[ -d .run ]]; then
	  find .run -mindepth 1 -maxdepth 1 ! -name 'test-*' ! -name 'bench-*' -exec rm -rf {} +
	  rmdir .run 2>/dev/null || true
	fi
