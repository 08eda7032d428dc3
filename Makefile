# The README's two commands: `make demo` and `make test`. Each target creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS := $(VENV)/.deps-installed

.PHONY: demo test test-fast test-vm vm-deps bench lint package system-deps install uninstall clean unit

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

# Dependencies (and the test tools) are installed once per change of pyproject.toml.
$(DEPS): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet '.[test]'
	# The reader driver, without its RPi.GPIO/spidev dependencies: the tests run it against a fake chip.
	$(BIN)/pip install --quiet --no-deps 'mfrc522>=0.0.7'
	touch $@

# The package itself is re-installed every time (a plain, non-editable install: queue/ maps to sitegate.queue
# without shadowing the standard library's queue, see the README's Layout).
# build/ is removed first: setuptools copies into it and never deletes, so a module moved or removed would stay in the
# wheel (and the tests would import the stale copy).
package: $(DEPS)
	rm -rf build
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --force-reinstall .

# Debian tools the tests run for real: chronyd and chronyc (clock tests), faketime (a shifted NTP server, a stepped
# clock), gcc and libc6-dev (build tests/helpers/system_clock.c, the clock a real chronyd steps),
# a CJK font (the listing prints Chinese names; the device installs the same package), sudo (the technicians' rule
# that tests/test_install.py installs and uses), chromium and its chromedriver (the foreman's page in a real
# browser; Selenium is pointed at them and never downloads one).
CJK_FONT := /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf
# mosquitto (the site bus tests' broker, mosquitto_passwd) and prometheus (promtool tests the alerting rules);
# iproute2 (`ip netns`: a network namespace with a DNS server of the test's own, tests/network_namespace.py);
# nodejs and npm (axe-core and Lighthouse measure the page, below), strace (sees that Lighthouse connects only to
# loopback).
system-deps:
	@if ! command -v chronyd >/dev/null || ! command -v chronyc >/dev/null || ! command -v faketime >/dev/null \
	    || ! command -v cc >/dev/null || [ ! -f /usr/include/stdlib.h ] \
	    || ! command -v visudo >/dev/null || [ ! -f $(CJK_FONT) ] || ! command -v mosquitto >/dev/null \
	    || ! command -v promtool >/dev/null || [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] \
	    || ! command -v ip >/dev/null || ! command -v npm >/dev/null || ! command -v strace >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      chrony faketime gcc libc6-dev fonts-droid-fallback sudo mosquitto prometheus chromium chromium-driver iproute2 nodejs npm strace >/dev/null; \
	  else \
	    echo "the tests need Debian's chrony, faketime, gcc, libc6-dev, fonts-droid-fallback, sudo, mosquitto, prometheus, chromium, chromium-driver, iproute2, nodejs, npm and strace:"; \
	    echo "  sudo apt-get install chrony faketime gcc libc6-dev fonts-droid-fallback sudo mosquitto prometheus chromium chromium-driver iproute2 nodejs npm strace"; exit 1; \
	  fi; \
	fi

# The wheels `make install` needs, gathered while `make test` may still use the package registry: the install test
# (tests/test_install.py) then installs from them inside a network namespace of its own, as tests never leave loopback.
WHEELHOUSE := .wheelhouse
$(WHEELHOUSE)/.complete: pyproject.toml | $(BIN)/python
	$(BIN)/pip wheel --quiet --quiet --wheel-dir $(WHEELHOUSE) pip 'setuptools>=77' wheel .
	$(BIN)/pip wheel --quiet --quiet --no-deps --wheel-dir $(WHEELHOUSE) 'mfrc522>=0.0.7'
	rm -f $(WHEELHOUSE)/sitegate-*.whl
	touch $@

# Tools nobody here wrote, measuring the foreman's page in tests/test_web.py: axe-core and Lighthouse, from the npm
# registry at the versions of tests/web_tools/package-lock.json (Lighthouse 12.2: 13 needs Node 22), installed
# into .node/ (ignored) with no install script run; Lighthouse drives Debian's Chromium, never a download.
NODE_TOOLS := .node
$(NODE_TOOLS)/.complete: tests/web_tools/package.json tests/web_tools/package-lock.json
	rm -rf $(NODE_TOOLS) && mkdir -p $(NODE_TOOLS)
	cp tests/web_tools/package.json tests/web_tools/package-lock.json $(NODE_TOOLS)/
	cd $(NODE_TOOLS) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

# The suite, then the VM's checks (`make test-vm` below) with TEST_VM_ROUNDS power cuts: 1 by default, so that CI (90
# min on 2 cores) has time for both; `make test-vm` alone runs 20.
TEST_VM_ROUNDS ?= 1
test: package system-deps $(WHEELHOUSE)/.complete $(NODE_TOOLS)/.complete
	$(BIN)/python -m pytest -q tests
	$(MAKE) --no-print-directory test-vm ROUNDS=$(TEST_VM_ROUNDS)

# The same suite without the tests marked slow (crash, soak, real-time patterns): for the edit-test loop.
test-fast: package system-deps $(NODE_TOOLS)/.complete
	$(BIN)/python -m pytest -q -m "not slow" tests

# The README's promises on a real Debian Bookworm with real systemd, in qemu (tests/vm/run.py): the image is built
# once into .vm/ (ignored), the guest installs offline from the wheelhouse plus the Pi's drivers (spidev and evdev
# come as sources: the guest builds them with its gcc and python3-dev, as a bare Bookworm must). Results: .vm/results.json.
ARCH ?= x86_64
ROUNDS ?= 20
VM_WHEELHOUSE := .vm/device-wheelhouse
$(VM_WHEELHOUSE)/.complete: pyproject.toml | $(BIN)/python
	$(BIN)/pip download --quiet --no-deps --dest $(VM_WHEELHOUSE) 'spidev>=3.6' 'rpi-lgpio>=0.6' lgpio 'evdev>=1.6' \
	  pyusb pyserial
	touch $@

vm-deps:
	@if ! command -v qemu-system-x86_64 >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v mkfs.ext4 >/dev/null \
	    || ! command -v ssh >/dev/null || ! command -v ssh-keygen >/dev/null || ! command -v sqlite3 >/dev/null \
	    || ! command -v qemu-system-aarch64 >/dev/null || ! command -v cpio >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      qemu-system-x86 qemu-system-arm cpio mmdebstrap e2fsprogs openssh-client sqlite3 >/dev/null; \
	  else echo "make test-vm needs: sudo apt-get install qemu-system-x86 qemu-system-arm cpio mmdebstrap e2fsprogs openssh-client sqlite3"; exit 1; fi; \
	fi

# ARCH=arm64: the guest installs from aarch64 wheels (tests/vm/wheels.py downloads them beside the pure-Python wheels
# and the driver sources, and fails when a dependency has none).
ARM64_WHEELHOUSE := .vm/arm64-wheelhouse
$(ARM64_WHEELHOUSE)/.complete: pyproject.toml $(WHEELHOUSE)/.complete $(VM_WHEELHOUSE)/.complete
	rm -rf $(ARM64_WHEELHOUSE) && mkdir -p $(ARM64_WHEELHOUSE)
	cp $(WHEELHOUSE)/*-none-any.whl $(VM_WHEELHOUSE)/*-none-any.whl $(VM_WHEELHOUSE)/*.tar.gz $(ARM64_WHEELHOUSE)/
	$(BIN)/python tests/vm/wheels.py aarch64 $(ARM64_WHEELHOUSE) > $(ARM64_WHEELHOUSE)/report.json
	touch $@

test-vm: package vm-deps $(WHEELHOUSE)/.complete $(VM_WHEELHOUSE)/.complete $(if $(filter arm64,$(ARCH)),$(ARM64_WHEELHOUSE)/.complete)
	$(BIN)/python tests/vm/run.py --arch $(ARCH) --rounds $(ROUNDS)

demo: package
	$(BIN)/sitegate demo

bench: package
	$(BIN)/python tests/bench/run.py

lint: $(DEPS)
	$(BIN)/ruff check firmware reader queue paper_fallback tests
	$(BIN)/ruff format --check firmware reader queue paper_fallback tests

clean:
	rm -rf $(VENV) build *.egg-info .bench .pytest_cache $(WHEELHOUSE) $(NODE_TOOLS)

# `sudo make install` on a Raspberry Pi (Raspberry Pi OS Bookworm): users, directories, virtualenv, the command on
# every user's PATH, the technicians' sudoers rule, the unit. Every path and name can be changed for a throw-away
# install (tests/test_install.py installs into a temporary folder under its own user and group names).
INSTALL_DIR ?= /opt/sitegate
BINDIR ?= /usr/local/bin
CONFDIR ?= /etc/sitegate
STATEDIR ?= /var/lib/sitegate
UNITDIR ?= /etc/systemd/system
SUDOERS ?= /etc/sudoers.d/sitegate
SITEGATE_USER ?= sitegate
ADMIN_GROUP ?= sitegate-admin
HW_GROUPS ?= gpio spi
EXTRAS ?= device
PREFIX_VENV = $(INSTALL_DIR)/venv
# Substituted into the command wrapper and the sudoers rule.
SUBSTITUTE = sed -e 's|@VENV@|$(PREFIX_VENV)|g' -e 's|@CONFDIR@|$(CONFDIR)|g' -e 's|@USER@|$(SITEGATE_USER)|g' \
	-e 's|@GROUP@|$(ADMIN_GROUP)|g' \
	-e 's|@STATEDIR@|$(STATEDIR)|g'
SYSTEMD_RUNNING = test -d /run/systemd/system
# The unit with this install's paths and names. StateDirectory= and ConfigurationDirectory= take a name under
# /var/lib and /etc: a state folder elsewhere is made writable with ReadWritePaths= instead (ProtectSystem=strict
# makes the rest read-only), a configuration folder elsewhere is only read and needs no line.
STATE_NAME = $(patsubst /var/lib/%,%,$(filter /var/lib/%,$(patsubst %/,%,$(STATEDIR))))
CONF_NAME = $(patsubst /etc/%,%,$(filter /etc/%,$(patsubst %/,%,$(CONFDIR))))
UNIT_SUBSTITUTE = sed -e 's|/opt/sitegate/venv|$(PREFIX_VENV)|' -e 's|/etc/sitegate/sitegate.toml|$(CONFDIR)/sitegate.toml|' \
	-e 's|^User=sitegate$$|User=$(SITEGATE_USER)|' -e 's|^Group=sitegate$$|Group=$(SITEGATE_USER)|' \
	-e 's|^WorkingDirectory=/var/lib/sitegate$$|WorkingDirectory=$(patsubst %/,%,$(STATEDIR))|' \
	-e 's|^SupplementaryGroups=gpio spi$$|SupplementaryGroups=$(strip $(HW_GROUPS))|' \
	$(if $(STATE_NAME),-e 's|^StateDirectory=sitegate$$|StateDirectory=$(STATE_NAME)|', \
	  -e 's|^StateDirectory=sitegate$$|ReadWritePaths=$(STATEDIR)|' -e '/^StateDirectoryMode=/d') \
	$(if $(CONF_NAME),-e 's|^ConfigurationDirectory=sitegate$$|ConfigurationDirectory=$(CONF_NAME)|', \
	  -e '/^ConfigurationDirectory/d')

# The unit `make install` writes, on stdout (tests/test_systemd.py checks it under other names).
unit:
	@$(UNIT_SUBSTITUTE) systemd/sitegate.service

install:
	@test "$$(id -u)" = 0 || { echo "run it as root: sudo make install"; exit 1; }
	@command -v sudo >/dev/null && command -v visudo >/dev/null || { echo "install sudo first: apt-get install sudo"; exit 1; }
	for group in $(HW_GROUPS); do getent group $$group >/dev/null || groupadd --system $$group; done
	id $(SITEGATE_USER) >/dev/null 2>&1 || useradd --system --user-group --home-dir $(STATEDIR) \
	  --shell /usr/sbin/nologin $(if $(strip $(HW_GROUPS)),--groups $(shell echo $(HW_GROUPS) | tr ' ' ,)) $(SITEGATE_USER)
	getent group $(ADMIN_GROUP) >/dev/null || groupadd --system $(ADMIN_GROUP)
	# --clear: a rerun (after a failure, or with another PYTHON) starts the virtualenv afresh, never over a half-made one.
	$(PYTHON) -m venv --clear $(PREFIX_VENV) || { echo "$(PYTHON) cannot make a virtualenv: \
	  sudo apt-get install python3-venv (or give another interpreter: make install PYTHON=/usr/bin/python3)"; exit 1; }
	runuser -u $(SITEGATE_USER) -- $(PREFIX_VENV)/bin/python -c '' || { echo "the daemon's user cannot run \
	  $$(readlink -f $(PREFIX_VENV)/bin/python) (in a private home?): make install PYTHON=/usr/bin/python3"; exit 1; }
	$(PREFIX_VENV)/bin/pip install --quiet --upgrade pip
	$(PREFIX_VENV)/bin/pip install --quiet '.$(if $(EXTRAS),[$(EXTRAS)])'
	# mfrc522 without its dependencies: it would install RPi.GPIO over rpi-lgpio (which a Pi 5 needs).
	$(PREFIX_VENV)/bin/pip install --quiet --no-deps 'mfrc522>=0.0.7'
	install -d -m 0750 -o root -g $(SITEGATE_USER) $(CONFDIR)
	test -f $(CONFDIR)/sitegate.toml || $(PREFIX_VENV)/bin/sitegate config example --data-dir $(STATEDIR) \
	  > $(CONFDIR)/sitegate.toml
	chgrp $(SITEGATE_USER) $(CONFDIR)/sitegate.toml && chmod 0640 $(CONFDIR)/sitegate.toml
	install -d -m 0700 -o $(SITEGATE_USER) -g $(SITEGATE_USER) $(STATEDIR)
	install -d -m 0755 $(BINDIR) $(dir $(SUDOERS)) $(UNITDIR)
	$(SUBSTITUTE) systemd/sitegate-command.sh > $(BINDIR)/sitegate && chmod 0755 $(BINDIR)/sitegate
	$(SUBSTITUTE) systemd/sitegate.sudoers > $(SUDOERS).new && chmod 0440 $(SUDOERS).new
	visudo -cqf $(SUDOERS).new && mv $(SUDOERS).new $(SUDOERS)
	$(UNIT_SUBSTITUTE) systemd/sitegate.service > $(UNITDIR)/sitegate.service && chmod 0644 $(UNITDIR)/sitegate.service
	# The foreman's page: installed, not enabled (it is off unless [web] enabled = true).
	$(UNIT_SUBSTITUTE) -e 's|/var/lib/sitegate/device.key|$(STATEDIR)/device.key|' systemd/sitegate-web.service \
	  > $(UNITDIR)/sitegate-web.service && chmod 0644 $(UNITDIR)/sitegate-web.service
	@case "$(STATEDIR)/" in /tmp/*|/var/tmp/*|/home/*|/root/*|/run/user/*) \
	  echo "note: the unit's PrivateTmp=/ProtectHome= hide $(STATEDIR) from the daemon: choose a STATEDIR under /var/lib";; esac
	@if $(SYSTEMD_RUNNING); then systemctl daemon-reload && systemctl enable sitegate.service; \
	else echo "systemd is not running here (a container or build machine): skipped 'systemctl daemon-reload' and"; \
	  echo "'systemctl enable sitegate.service'; run them on the gate."; fi
	@echo
	@echo "Installed. Technicians: sudo usermod -aG $(ADMIN_GROUP) USER (then log in again), and run 'sitegate status'."
	@echo "Before 'systemctl start sitegate':"
	@echo " 1. SPI on:   sudo raspi-config nonint do_spi 0   (or dtparam=spi=on in /boot/firmware/config.txt)"
	@echo " 2. Time:     sudo apt-get install chrony   (sitegate reads 'chronyc tracking'; remark 32 depends on it)"
	@echo " 3. Credentials: the company key and certificate where service.key_file / cert_file say (mode 0640, group $(SITEGATE_USER))"
	@echo " 4. Edit $(CONFDIR)/sitegate.toml until 'sitegate config check --online' says OK"
	@echo " 5. Roster:   sitegate roster import FILE.csv   (the file readable by $(SITEGATE_USER), e.g. in /tmp)"
	@echo " 6. Then:     sitegate doctor"
	@echo " 7. Foreman's page (optional): a PIN hash per foreman ('sitegate web pin-hash'), [web] in the"
	@echo "    configuration, then: sudo systemctl enable --now sitegate-web"
	@echo "Pi 5: GPIO goes through rpi-lgpio (installed); never 'pip install mfrc522' without --no-deps."

# Removes what install added; keeps the data ($(STATEDIR)), the configuration and the $(SITEGATE_USER) user that owns
# them unless PURGE=1. The gpio and spi groups belong to the system and stay.
uninstall:
	@test "$$(id -u)" = 0 || { echo "run it as root: sudo make uninstall"; exit 1; }
	@if $(SYSTEMD_RUNNING); then systemctl disable --now sitegate-web.service sitegate.service || true; \
	else echo "systemd is not running here: skipped 'systemctl disable --now sitegate.service'"; fi
	rm -f $(UNITDIR)/sitegate.service $(UNITDIR)/sitegate-web.service $(SUDOERS) $(BINDIR)/sitegate
	@if $(SYSTEMD_RUNNING); then systemctl daemon-reload; fi
	rm -rf $(INSTALL_DIR)
	! getent group $(ADMIN_GROUP) >/dev/null || groupdel $(ADMIN_GROUP)
	@if [ "$(PURGE)" = 1 ]; then \
	  echo "PURGE=1: removing $(STATEDIR) (the signed log), $(CONFDIR) and the user $(SITEGATE_USER)"; \
	  rm -rf $(STATEDIR) $(CONFDIR); ! id $(SITEGATE_USER) >/dev/null 2>&1 || userdel $(SITEGATE_USER); \
	else echo "kept $(STATEDIR) (the signed log), $(CONFDIR) and the user $(SITEGATE_USER): PURGE=1 removes them"; fi
