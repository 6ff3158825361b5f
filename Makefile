# CloudLogin — build, test, demo, install.
#
#   make            build the release module and CLI into build/
#   make test       unit tests, trap lint, integration tests against a real IdP and libpam
#   make demo       end to end: local IdP over HTTPS, a real PAM stack, the built module
#   make install    DESTDIR/PREFIX honoured
#   make bench      CloudLogin against pam_unix, pam_exec+curl and bare curl -> BENCHMARKS.md
#   make fuzz       libFuzzer + ASan on the parsers, FUZZ_SECONDS each (seed corpus: Fuzz/Corpus)

PREFIX      ?= /usr
DESTDIR     ?=
SYSCONFDIR  ?= /etc
MULTIARCH   := $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
PAMDIR      ?= /lib/$(MULTIARCH)/security
SWIFT       ?= swift
PYTHON      ?= python3
TMPDIR      := $(CURDIR)/.tmp
export TMPDIR

# The release module: Swift runtime linked in, nothing exported but pam_sm_*, every symbol
# resolved at link time, never unloaded (libpam dlcloses at pam_end; FACTS.md).
# release_flags(SOURCE): with SOURCE's own export list (scripts/build-previous builds an older tree).
release_flags = -c release -Xswiftc -static-stdlib \
	-Xlinker --version-script=$(1)/CShim/exports.map \
	-Xlinker -z -Xlinker nodelete -Xlinker -z -Xlinker defs
RELEASE_FLAGS := $(call release_flags,$(CURDIR))

BUILD := build

.PHONY: deps all build test unit-test integration-test lint demo install uninstall clean fuzz bench previous print-release-flags

all: build

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

lint:
	$(PYTHON) -m pytest -q -p no:cacheprovider scripts/test_check_traps.py
	$(PYTHON) scripts/check-traps Sources/CloudLogin Sources/CloudLoginPAM

unit-test: | $(TMPDIR)
	$(SWIFT) test

# Inside a private mount namespace with an overlay over /etc: the module creates accounts.
# `previous`: the upgrade test (accounts/test_upgrade.py) signs in with records of the release.
integration-test: build previous
	Tests/Integration/accounts/run-in-sandbox $(PYTHON) -m pytest -q -p no:cacheprovider Tests/Integration

test: lint unit-test integration-test

# libFuzzer targets for the config parser, JSON, ID tokens, JWKS and token-endpoint answers, built
# with -sanitize=fuzzer,address in .build-fuzz (a separate scratch path; the release module is
# never built with sanitizers). CI runs a short pass (.ci/run).
# The benchmark (DESIGN.md §6): real sudo in the sandbox, in a private network namespace.
# Not part of `make test` or CI. BENCH_RUNS (default 25) runs per variant.
bench: build
	Tests/Integration/accounts/run-in-sandbox unshare --net -- $(PYTHON) bench/bench.py

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= fuzz-config fuzz-json fuzz-jwt fuzz-jwks fuzz-token-response fuzz-okta
fuzz: | $(TMPDIR)
	scripts/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

demo: deps build
	scripts/demo

# The stacks for login, sudo and su go to $(PREFIX)/share/cloudlogin/pam.d (copy them to
# /etc/pam.d deliberately); the pam-auth-update profile to $(PREFIX)/share/pam-configs
# (enable it with `pam-auth-update --enable cloudlogin`).
install: build
	install -d $(DESTDIR)$(PAMDIR) $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONFDIR)/cloudlogin \
		$(DESTDIR)$(PREFIX)/share/cloudlogin/pam.d $(DESTDIR)$(PREFIX)/share/pam-configs
	install -d -m 0755 $(DESTDIR)/var/lib/cloudlogin
	install -d -m 0700 $(DESTDIR)/var/cache/cloudlogin
	install -m 0644 $(BUILD)/pam_cloudlogin.so $(DESTDIR)$(PAMDIR)/pam_cloudlogin.so
	install -m 0755 $(BUILD)/cloudlogin $(DESTDIR)$(PREFIX)/bin/cloudlogin
	install -m 0644 pam.d/cloudlogin.conf.example $(DESTDIR)$(SYSCONFDIR)/cloudlogin/cloudlogin.conf.example
	install -m 0644 pam.d/login pam.d/sudo pam.d/su pam.d/passwd pam.d/cloudlogin-auth pam.d/cloudlogin-service \
		$(DESTDIR)$(PREFIX)/share/cloudlogin/pam.d/
	install -m 0644 pam.d/pam-configs-cloudlogin $(DESTDIR)$(PREFIX)/share/pam-configs/cloudlogin

uninstall:
	rm -f $(DESTDIR)$(PAMDIR)/pam_cloudlogin.so $(DESTDIR)$(PREFIX)/bin/cloudlogin \
		$(DESTDIR)$(SYSCONFDIR)/cloudlogin/cloudlogin.conf.example $(DESTDIR)$(PREFIX)/share/pam-configs/cloudlogin
	rm -rf $(DESTDIR)$(PREFIX)/share/cloudlogin

clean:
	rm -rf $(BUILD) .build .build-previous .tmp

deps:
	scripts/install-deps

# ---- Admin experience (issue 5): man pages, Debian package ---------------------------------
#   make install      also installs the man pages cloudlogin(1), cloudlogin.conf(5), pam_cloudlogin(8)
#   make deb          build/cloudlogin_VERSION_ARCH.deb (dpkg-deb; see scripts/build-deb)
MANDIR   ?= $(PREFIX)/share/man
MANPAGES := man/cloudlogin.1 man/cloudlogin.conf.5 man/pam_cloudlogin.8

.PHONY: install-man uninstall-man deb

install: install-man
uninstall: uninstall-man

install-man:
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 man/cloudlogin.1 $(DESTDIR)$(MANDIR)/man1/cloudlogin.1
	install -m 0644 man/cloudlogin.conf.5 $(DESTDIR)$(MANDIR)/man5/cloudlogin.conf.5
	install -m 0644 man/pam_cloudlogin.8 $(DESTDIR)$(MANDIR)/man8/pam_cloudlogin.8

uninstall-man:
	rm -f $(DESTDIR)$(MANDIR)/man1/cloudlogin.1 $(DESTDIR)$(MANDIR)/man5/cloudlogin.conf.5 \
		$(DESTDIR)$(MANDIR)/man8/pam_cloudlogin.8

deb: build | $(TMPDIR)
	scripts/build-deb $(BUILD)

# The integration tests install the .deb (dpkg -i) inside the sandbox: with this, the sandbox
# also puts a private overlay on /usr (Tests/Integration/accounts/run-in-sandbox).
integration-test: export CLOUDLOGIN_SANDBOX_USR = 1

# ---- Upgrades (trust issue item 9) ----------------------------------------------------------
#   make previous     build/previous/{pam_cloudlogin.so,cloudlogin}: the release module and CLI of
#                     PREVIOUS_RELEASE (scripts/build-previous; own scratch path .build-previous),
#                     for Tests/Integration/accounts/test_upgrade.py. Part of integration-test.
# PREVIOUS_RELEASE: the current release, whose records and accounts an upgrade must keep working.
PREVIOUS_RELEASE ?= 2379c49d5afd57a6c2fe06b3bf51243bd7c01101

previous: | $(TMPDIR)
	SWIFT="$(SWIFT)" scripts/build-previous $(PREVIOUS_RELEASE)

# The release flags for the tree at RELEASE_SOURCE (used by scripts/build-previous).
print-release-flags:
	@echo '$(call release_flags,$(RELEASE_SOURCE))'
