# aksdiag — every target sets itself up on a fresh machine (Python 3.11+ and make).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: setup demo test lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "Creating $(VENV) and installing aksdiag with its tools (first run only)..."; $(PYTHON) -m venv $(VENV); }
	@$(PY) -m pip install --disable-pip-version-check --upgrade pip > $(VENV)/install.log 2>&1 \
	  && $(PY) -m pip install --disable-pip-version-check -e '.[dev]' >> $(VENV)/install.log 2>&1 \
	  || { cat $(VENV)/install.log; echo "make: installing dependencies failed (log above, also in $(VENV)/install.log)"; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: setup
	@$(PY) -m bot.demo

test: setup
	@$(PY) -m pytest -n 2 --dist loadfile

lint: setup
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports

format: setup
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

bench: setup
	@$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
