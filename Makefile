# aksdiag — every target sets itself up on a fresh machine (Python 3.11+ and make).
# Versions come from constraints.txt (the lock); `make lock` refreshes it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
PIP    := $(PY) -m pip install --disable-pip-version-check

.PHONY: setup demo check lint test docs lock format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || { echo "Creating $(VENV) and installing aksdiag with its tools (first run only)..."; $(PYTHON) -m venv $(VENV); }
	@$(PIP) --upgrade pip > $(VENV)/install.log 2>&1 \
	  && $(PIP) -c constraints.txt -e '.[dev]' >> $(VENV)/install.log 2>&1 \
	  || { cat $(VENV)/install.log; echo "make: installing dependencies failed (log above, also in $(VENV)/install.log)"; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: setup
	@$(PY) -m bot.demo

# What CI runs (.ci/run): the conventions first (seconds), then the whole suite, including
# every printed command parsed by the real azure-cli (a cached venv, ~/.cache/aksdiag/azcli,
# created on the first run) and kubectl: tests/test_command_parse.py.
check: export AKSDIAG_COMMAND_CHECK := 1
check: lint test

lint: setup
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports

# pytest exits 5 when it collected nothing: that is a failure too.
test: setup
	@$(PY) -m pytest -n 2 --dist loadfile

# docs/findings.md is generated from the check registry; a test fails when it is stale.
docs: setup
	@$(PY) -m diagnostics.findings_doc > docs/findings.md

# Refresh constraints.txt: the newest versions pyproject.toml allows, in a throwaway venv.
lock:
	@rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	@.lock-venv/bin/pip install --disable-pip-version-check -q -e '.[dev]'
	@{ sed -n '/^#/p' constraints.txt; .lock-venv/bin/pip freeze --exclude-editable; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt && rm -rf .lock-venv
	@echo "constraints.txt refreshed; run make check and commit it with any fixes."

format: setup
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

bench: setup
	@$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
