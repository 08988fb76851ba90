# Nimbus: `make up` installs what is needed and starts the all-in-one cloud; `make test` runs
# every test. Both work on a fresh Debian 12 / Ubuntu machine.

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
APT_PACKAGES := $(shell cat deploy/apt-packages.txt 2>/dev/null)

.PHONY: up down status install test lint bench clean

up: install
	@# The bootable test guest (Debian kernel + busybox); `nimbus up` registers it in the image
	@# service. Skipped with a warning when it cannot be built here: the cloud starts anyway.
	@$(VENV)/bin/nimbus image build-test || echo "warning: no test guest image was built"
	$(VENV)/bin/nimbus up

down:
	$(VENV)/bin/nimbus down

status:
	$(VENV)/bin/nimbus status

install: $(STAMP)

$(STAMP): pyproject.toml deploy/apt-packages.txt
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "apt: installing $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  fi; \
	fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check nimbus tests bench
	$(VENV)/bin/mypy nimbus

test: install lint
	$(VENV)/bin/pytest -q -p no:cacheprovider

bench: install
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) build *.egg-info
