# The README's two commands: `make demo` and `make test`. Each target creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS := $(VENV)/.deps-installed

.PHONY: demo test test-fast bench lint package system-deps install clean

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
# without shadowing the standard library's queue, see DESIGN.md).
package: $(DEPS)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --force-reinstall .

# Debian tools the tests run for real: chronyd and chronyc (clock tests), faketime (a shifted NTP server),
# a CJK font (the listing prints Chinese names; the device installs the same package), chromium and its
# chromedriver (the foreman's page in a real browser; Selenium is pointed at them and never downloads one).
CJK_FONT := /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf
system-deps:
	@if ! command -v chronyd >/dev/null || ! command -v chronyc >/dev/null || ! command -v faketime >/dev/null \
	    || [ ! -f $(CJK_FONT) ] || [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chrony faketime \
	      fonts-droid-fallback chromium chromium-driver >/dev/null; \
	  else \
	    echo "the tests need Debian's chrony, faketime, fonts-droid-fallback, chromium and chromium-driver:"; \
	    echo "  sudo apt-get install chrony faketime fonts-droid-fallback chromium chromium-driver"; exit 1; \
	  fi; \
	fi

test: package system-deps
	$(BIN)/python -m pytest -q tests

# The same suite without the tests marked slow (crash, soak, real-time patterns): for the edit-test loop.
test-fast: package system-deps
	$(BIN)/python -m pytest -q -m "not slow" tests

demo: package
	$(BIN)/sitegate demo

bench: package
	$(BIN)/python tests/bench/run.py

lint: $(DEPS)
	$(BIN)/ruff check firmware reader queue paper_fallback tests
	$(BIN)/ruff format --check firmware reader queue paper_fallback tests

clean:
	rm -rf $(VENV) build *.egg-info .bench .pytest_cache

# `sudo make install` on a Raspberry Pi (Raspberry Pi OS Bookworm): user, directories, virtualenv, unit.
PREFIX_VENV := /opt/sitegate/venv
install:
	@test "$$(id -u)" = 0 || { echo "run it as root: sudo make install"; exit 1; }
	getent group gpio >/dev/null || groupadd --system gpio
	getent group spi >/dev/null || groupadd --system spi
	id sitegate >/dev/null 2>&1 || useradd --system --home-dir /var/lib/sitegate --shell /usr/sbin/nologin \
	  --groups gpio,spi sitegate
	$(PYTHON) -m venv $(PREFIX_VENV)
	$(PREFIX_VENV)/bin/pip install --quiet --upgrade pip
	$(PREFIX_VENV)/bin/pip install --quiet '.[device]'
	# mfrc522 without its dependencies: it would install RPi.GPIO over rpi-lgpio (which a Pi 5 needs).
	$(PREFIX_VENV)/bin/pip install --quiet --no-deps 'mfrc522>=0.0.7'
	install -d -m 0750 -o root -g sitegate /etc/sitegate
	test -f /etc/sitegate/sitegate.toml || $(PREFIX_VENV)/bin/sitegate config example > /etc/sitegate/sitegate.toml
	chgrp sitegate /etc/sitegate/sitegate.toml && chmod 0640 /etc/sitegate/sitegate.toml
	install -m 0644 systemd/sitegate.service /etc/systemd/system/sitegate.service
	# The foreman's page: installed, not enabled (it is off unless [web] enabled = true).
	install -m 0644 systemd/sitegate-web.service /etc/systemd/system/sitegate-web.service
	systemctl daemon-reload
	systemctl enable sitegate.service
	@echo
	@echo "Installed. Before 'systemctl start sitegate':"
	@echo " 1. SPI on:   sudo raspi-config nonint do_spi 0   (or dtparam=spi=on in /boot/firmware/config.txt)"
	@echo " 2. Time:     sudo apt-get install chrony   (sitegate reads 'chronyc tracking'; remark 32 depends on it)"
	@echo " 3. Edit /etc/sitegate/sitegate.toml, then: sitegate config check"
	@echo " 4. Credentials: the company key and certificate where service.key_file / cert_file say (mode 0640, group sitegate)"
	@echo " 5. Roster:   sudo -u sitegate SITEGATE_CONFIG=/etc/sitegate/sitegate.toml $(PREFIX_VENV)/bin/sitegate roster import FILE.csv"
	@echo " 6. Foreman's page (optional): a PIN hash per foreman with 'sitegate web pin-hash', [web] in the"
	@echo "    configuration, then: sudo systemctl enable --now sitegate-web"
	@echo "Pi 5: GPIO goes through rpi-lgpio (installed); never 'pip install mfrc522' without --no-deps."
