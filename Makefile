# make run · make test · make lint · make bench — each sets up what it needs.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3.10 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 10))' && echo $$p && break; done)
EXTRAS ?= test,dev,redis,postgres,cookie

.PHONY: run test test-multihost lint bench fuzz clean venv

venv: $(STAMP)

$(STAMP): setup.py pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.10 or newer is needed (python3.10 … python3.13 on PATH)"; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	@touch $(STAMP)

run: $(STAMP)
	@echo "Serving the page counter on http://127.0.0.1:8000 (store: $${WSGISESSION_STORE:-sqlite:///counter-sessions.db})"
	$(VENV)/bin/gunicorn --chdir examples --workers 2 --bind 127.0.0.1:8000 counter:app

test: $(STAMP)
	$(PY) -m pytest

# Three hosts in network namespaces behind nginx, on Redis then PostgreSQL (root; see README).
test-multihost: $(STAMP)
	$(PY) -m pytest -m multihost -s tests/multihost

lint: $(STAMP)
	$(VENV)/bin/ruff check wsgisession tests examples
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
