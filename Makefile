# The project's interface. `make test` is what CI runs.
PREFIX     ?= /usr
DESTDIR    ?=
LIBEXECDIR ?= $(PREFIX)/libexec/archipelago
# systemd looks for user generators and units below /usr/lib or /usr/local/lib
SYSTEMDDIR ?= $(PREFIX)/lib/systemd
# installed uncompressed: the distribution's tooling compresses them (dh_compress, brp-compress)
MANDIR     ?= $(PREFIX)/share/man
# The manifest, template and settings paths are a contract (archy-app.toml(5)), not PREFIX-relative.
DATADIR    := /usr/share/archipelago
SYSCONFDIR := /etc/archipelago
CARGO      ?= cargo
export ARCHY_LIBEXECDIR := $(LIBEXECDIR)

.PHONY: all build test deps unit-test stage e2e e2e-next e2e-vm e2e-smoke e2e-shell bench demo install \
  deb clean

all: build

build:
	$(CARGO) build --release --locked

## the whole suite: unit and fixture tests, then the end-to-end scenarios on real systemd + podman
test: deps unit-test e2e

## the system tools the suite needs (debootstrap, debhelper, man-db, ...), installed if missing
deps:
	tests/deps.sh

unit-test:
	$(CARGO) test --locked

## archy installed into a fresh tree, as a package would put it: what the test bed copies into its
## root before the user manager starts
STAGE := $(CURDIR)/target/e2e-stage
stage: build
	rm -rf $(STAGE)
	$(MAKE) --no-print-directory install DESTDIR=$(STAGE) PREFIX=/usr

## end-to-end scenarios in a Debian 13 root with systemd --user and rootless podman (needs root)
e2e: build deb stage
	ARCHY_E2E_SUITE=trixie ARCHY_STAGE=$(STAGE) tests/e2e/run.sh

## the same scenarios on the next Debian: a sid root (its own, built on first use), with newer
## podman, crun, netavark and systemd
e2e-next: build deb stage
	ARCHY_E2E_SUITE=sid ARCHY_STAGE=$(STAGE) tests/e2e/run.sh

## the boot-chain scenario alone, in a booted VM, under software emulation (TCG) where KVM does
## not boot the kernel (make e2e skips it there): slow, a few apps, up to 2 hours
e2e-vm: build deb stage
	ARCHY_E2E_VM_TCG=1 ARCHY_E2E_TIMEOUT=$${ARCHY_E2E_TIMEOUT:-7200} \
	  ARCHY_STAGE=$(STAGE) tests/e2e/run.sh boot-chain

## the README's demo: boots the test bed, brings up bitcoin-core, bitcoin-ui and lnd, heals a kill
demo: build stage
	ARCHY_STAGE=$(STAGE) tests/e2e/demo.sh

## the test bed's own check, with hand-written Quadlet files (no archy): networking, health, DNS
e2e-smoke:
	tests/e2e/sandbox.sh run tests/e2e/smoke.sh

## an interactive shell in the test bed with archy installed (debugging)
e2e-shell: build stage
	ARCHY_STAGE=$(STAGE) tests/e2e/sandbox.sh shell

bench: build
	$(CARGO) bench --locked --bench generator

install: build
	install -Dm755 target/release/archy-generator $(DESTDIR)$(SYSTEMDDIR)/user-generators/archy-generator
	install -Dm755 target/release/archy-hook $(DESTDIR)$(LIBEXECDIR)/archy-hook
	install -d $(DESTDIR)$(PREFIX)/bin
	ln -sf $(LIBEXECDIR)/archy-hook $(DESTDIR)$(PREFIX)/bin/archy-hook
	install -d $(DESTDIR)$(SYSTEMDDIR)/user
	for u in units/*.path units/*.service units/*.target; do \
	  [ -e "$$u" ] || continue; \
	  sed 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' "$$u" >$(DESTDIR)$(SYSTEMDDIR)/user/$${u##*/}; \
	  chmod 644 $(DESTDIR)$(SYSTEMDDIR)/user/$${u##*/}; done
	install -d $(DESTDIR)$(DATADIR)/apps $(DESTDIR)$(SYSCONFDIR)/apps $(DESTDIR)$(SYSCONFDIR)/grants.d
	install -m644 catalog/apps/*.toml $(DESTDIR)$(DATADIR)/apps/
	install -Dm644 catalog/grants.toml $(DESTDIR)$(DATADIR)/grants.d/archy-catalog.toml
	for d in catalog/templates/*/; do \
	  install -d $(DESTDIR)$(DATADIR)/templates/$$(basename $$d) && \
	  install -m644 $$d* $(DESTDIR)$(DATADIR)/templates/$$(basename $$d)/; done
	install -Dm644 packaging/system/user@.service.d/archy-network-online.conf \
	  $(DESTDIR)$(SYSTEMDDIR)/system/user@.service.d/archy-network-online.conf
	install -Dm644 packaging/sysusers.d/archy.conf $(DESTDIR)$(PREFIX)/lib/sysusers.d/archy.conf
	install -Dm644 packaging/tmpfiles.d/archy.conf $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/archy.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/node.toml ] || install -Dm644 packaging/node.toml $(DESTDIR)$(SYSCONFDIR)/node.toml
	install -d $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m644 man/*.5 $(DESTDIR)$(MANDIR)/man5/
	install -m644 man/*.8 $(DESTDIR)$(MANDIR)/man8/

## Debian packages into target/deb/: archy, archy-catalog, and the sample app archy-app-demo.
## Each is built with dpkg-buildpackage in a copy of its source (the tracked files, as a clean
## clone has them, with packaging/debian as debian/); the copy's target/ is this checkout's, so
## cargo reuses what is built.
DEBDIR := target/deb
deb:
	@command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || { \
	  echo "make deb needs dpkg-dev and debhelper: apt-get install build-essential debhelper" >&2; exit 1; }
	rm -rf $(DEBDIR)/archy $(DEBDIR)/archy-app-demo
	rm -f $(DEBDIR)/*.deb $(DEBDIR)/*.ddeb $(DEBDIR)/*.changes $(DEBDIR)/*.buildinfo
	mkdir -p $(DEBDIR)/archy
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then git ls-files -z; \
	  else find . \( -name target -o -name .git \) -prune -o -type f -print0; fi | \
	  tar --null --ignore-failed-read -T - -cf - | tar -xf - -C $(DEBDIR)/archy
	rm -rf $(DEBDIR)/archy/debian && cp -R packaging/debian $(DEBDIR)/archy/debian
	ln -s $(CURDIR)/target $(DEBDIR)/archy/target
	cd $(DEBDIR)/archy && dpkg-buildpackage -us -uc -b
	cp -R packaging/sample-app $(DEBDIR)/archy-app-demo
	cd $(DEBDIR)/archy-app-demo && dpkg-buildpackage -us -uc -b
	@ls -1 $(DEBDIR)/*.deb

clean:
	$(CARGO) clean
