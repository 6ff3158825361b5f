# CloudLogin — build, test, demo, install. The sections below follow this list.
#
# Build
#   make, make build   the release module and CLI into build/ (and build/pamdriver, the tests' PAM driver)
#   make print-release-flags   the release build flags (scripts/build-previous uses them)
# Test (docs/testing.md)
#   make test          lint, unit tests, integration tests (what CI runs, then a short fuzz pass)
#   make lint          the trap lint, scripts/check-traps, and its tests (docs/traps.md)
#   make unit-test     swift test
#   make integration-test   real libpam, login, sudo, su and IdPs, as root in the sandbox
#   make previous      build/previous/: the previous release's module and CLI, for the upgrade test
# Fuzz
#   make fuzz          libFuzzer + ASan on the parsers, FUZZ_SECONDS each (seed corpus: Fuzz/Corpus)
# Bench
#   make bench         CloudLogin against pam_unix, pam_exec+curl and bare curl -> BENCHMARKS.md
# Demo
#   make demo          end to end: local IdP over HTTPS, a real PAM stack, the built module
# Install
#   make install       the module, the CLI, the stacks, the example config and the man pages;
#   make uninstall     DESTDIR/PREFIX honoured
# Debian package
#   make deb           build/cloudlogin_VERSION_ARCH.deb (dpkg-deb; see scripts/build-deb)
# Housekeeping
#   make deps          the Debian packages needed to build and test (scripts/install-deps)
#   make clean

PREFIX      ?= /usr
DESTDIR     ?=
SYSCONFDIR  ?= /etc
MANDIR      ?= $(PREFIX)/share/man
MULTIARCH   := $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
PAMDIR      ?= /lib/$(MULTIARCH)/security
SWIFT       ?= swift
PYTHON      ?= python3
TMPDIR      := $(CURDIR)/.tmp
export TMPDIR

BUILD := build

.PHONY: all build print-release-flags test lint unit-test integration-test previous fuzz bench demo \
	install install-man uninstall uninstall-man deb deps clean

# ---- Build ----------------------------------------------------------------------------------

all: build

# The release module: Swift runtime linked in, nothing exported but pam_sm_*, every symbol
# resolved at link time, never unloaded (libpam dlcloses at pam_end; docs/facts.md, "Building
# the module").
# release_flags(SOURCE): with SOURCE's own export list (scripts/build-previous builds an older tree).
release_flags = -c release -Xswiftc -static-stdlib \
	-Xlinker --version-script=$(1)/CShim/exports.map \
	-Xlinker -z -Xlinker nodelete -Xlinker -z -Xlinker defs
RELEASE_FLAGS := $(call release_flags,$(CURDIR))

build: $(BUILD)/pam_cloudlogin.so $(BUILD)/cloudlogin $(BUILD)/pamdriver

$(BUILD)/pam_cloudlogin.so $(BUILD)/cloudlogin &: FORCE | $(TMPDIR)
	$(SWIFT) build $(RELEASE_FLAGS)
	@mkdir -p $(BUILD)
	install -m 0644 "$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/libpam_cloudlogin.so" $(BUILD)/pam_cloudlogin.so
	install -m 0755 "$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/cloudlogin" $(BUILD)/cloudlogin

$(BUILD)/pamdriver: Tests/Integration/pamdriver.c
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Wextra -o $@ $< -lpam

$(TMPDIR):
	@mkdir -p $@

FORCE:

# The release flags for the tree at RELEASE_SOURCE (used by scripts/build-previous).
print-release-flags:
	@echo '$(call release_flags,$(RELEASE_SOURCE))'

# ---- Test -----------------------------------------------------------------------------------

test: lint unit-test integration-test

lint:
	$(PYTHON) -m pytest -q -p no:cacheprovider scripts/test_check_traps.py
	$(PYTHON) scripts/check-traps Sources/CloudLogin Sources/CloudLoginPAM

unit-test: | $(TMPDIR)
	$(SWIFT) test

# Inside a private mount namespace with an overlay over /etc: the module creates accounts.
# `previous`: the upgrade test (accounts/test_upgrade.py) signs in with records of the release.
# CLOUDLOGIN_SANDBOX_USR=1: the sandbox also puts a private overlay on /usr, because the
# package test installs the .deb (dpkg -i) in it (Tests/Integration/accounts/run-in-sandbox).
integration-test: export CLOUDLOGIN_SANDBOX_USR = 1
integration-test: build previous
	Tests/Integration/accounts/run-in-sandbox $(PYTHON) -m pytest -q -p no:cacheprovider Tests/Integration

# build/previous/{pam_cloudlogin.so,cloudlogin}: the release module and CLI of PREVIOUS_RELEASE
# (scripts/build-previous; own scratch path .build-previous), for
# Tests/Integration/accounts/test_upgrade.py.
# PREVIOUS_RELEASE: the current release, whose records and accounts an upgrade must keep working.
PREVIOUS_RELEASE ?= 2379c49d5afd57a6c2fe06b3bf51243bd7c01101

previous: | $(TMPDIR)
	SWIFT="$(SWIFT)" scripts/build-previous $(PREVIOUS_RELEASE)

# ---- Fuzz -----------------------------------------------------------------------------------

# libFuzzer targets for the config parser, JSON, ID tokens, JWKS, token-endpoint answers and the
# Okta flow, built with -sanitize=fuzzer,address in .build-fuzz (a separate scratch path; the
# release module is never built with sanitizers). CI runs a short pass (.ci/run).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= fuzz-config fuzz-json fuzz-jwt fuzz-jwks fuzz-token-response fuzz-okta fuzz-mfa
fuzz: | $(TMPDIR)
	scripts/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# ---- Bench ----------------------------------------------------------------------------------

# The benchmark (docs/design.md, "Performance targets"): real sudo in the sandbox, in a private
# network namespace. Not part of `make test` or CI. BENCH_RUNS (default 25) runs per variant.
bench: build
	Tests/Integration/accounts/run-in-sandbox unshare --net -- $(PYTHON) bench/bench.py

# ---- Demo -----------------------------------------------------------------------------------

demo: deps build
	scripts/demo

# ---- Install --------------------------------------------------------------------------------

# The stacks for login, sudo, su, sshd and passwd go to $(PREFIX)/share/cloudlogin/pam.d (copy them to
# /etc/pam.d deliberately); the pam-auth-update profile to $(PREFIX)/share/pam-configs
# (enable it with `pam-auth-update --enable cloudlogin`); the man pages cloudlogin(1),
# cloudlogin.conf(5) and pam_cloudlogin(8) to $(MANDIR).
install: build install-man
	install -d $(DESTDIR)$(PAMDIR) $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONFDIR)/cloudlogin \
		$(DESTDIR)$(PREFIX)/share/cloudlogin/pam.d $(DESTDIR)$(PREFIX)/share/pam-configs
	install -d -m 0755 $(DESTDIR)/var/lib/cloudlogin
	install -d -m 0700 $(DESTDIR)/var/cache/cloudlogin
	install -m 0644 $(BUILD)/pam_cloudlogin.so $(DESTDIR)$(PAMDIR)/pam_cloudlogin.so
	install -m 0755 $(BUILD)/cloudlogin $(DESTDIR)$(PREFIX)/bin/cloudlogin
	install -m 0644 pam.d/cloudlogin.conf.example $(DESTDIR)$(SYSCONFDIR)/cloudlogin/cloudlogin.conf.example
	install -m 0644 pam.d/login pam.d/sudo pam.d/su pam.d/sshd pam.d/passwd pam.d/cloudlogin-auth pam.d/cloudlogin-service \
		$(DESTDIR)$(PREFIX)/share/cloudlogin/pam.d/
	install -m 0644 pam.d/pam-configs-cloudlogin $(DESTDIR)$(PREFIX)/share/pam-configs/cloudlogin

install-man:
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 man/cloudlogin.1 $(DESTDIR)$(MANDIR)/man1/cloudlogin.1
	install -m 0644 man/cloudlogin.conf.5 $(DESTDIR)$(MANDIR)/man5/cloudlogin.conf.5
	install -m 0644 man/pam_cloudlogin.8 $(DESTDIR)$(MANDIR)/man8/pam_cloudlogin.8

uninstall: uninstall-man
	rm -f $(DESTDIR)$(PAMDIR)/pam_cloudlogin.so $(DESTDIR)$(PREFIX)/bin/cloudlogin \
		$(DESTDIR)$(SYSCONFDIR)/cloudlogin/cloudlogin.conf.example $(DESTDIR)$(PREFIX)/share/pam-configs/cloudlogin
	rm -rf $(DESTDIR)$(PREFIX)/share/cloudlogin

uninstall-man:
	rm -f $(DESTDIR)$(MANDIR)/man1/cloudlogin.1 $(DESTDIR)$(MANDIR)/man5/cloudlogin.conf.5 \
		$(DESTDIR)$(MANDIR)/man8/pam_cloudlogin.8

# ---- Debian package -------------------------------------------------------------------------

deb: build | $(TMPDIR)
	scripts/build-deb $(BUILD)

# ---- Housekeeping ---------------------------------------------------------------------------

deps:
	scripts/install-deps

clean:
	rm -rf $(BUILD) .build .build-previous .tmp
