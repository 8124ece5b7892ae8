# make run · make test · make load · make fuzz · make lint · make bench — each sets up what it needs.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3.10 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null && echo $$p && break; done)
EXTRAS ?= test,dev,redis,postgres,cookie,frameworks

.PHONY: run test test-multihost load lint bench bench-callgrind bench-scale fuzz clean venv

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

# A long Hypothesis campaign: every fuzz test with WSGISESSION_FUZZ_EXAMPLES inputs (15,000 each
# by default, over 100,000 in all); prints how many inputs were tried and how long it took.
fuzz: $(STAMP)
	WSGISESSION_FUZZ_EXAMPLES=$${WSGISESSION_FUZZ_EXAMPLES:-15000} $(PY) -m pytest tests/test_fuzz.py -q -s

load: $(STAMP)
	$(PY) -m pytest -m load -q

# Three hosts in network namespaces behind nginx, on Redis then PostgreSQL (root; see README).
test-multihost: $(STAMP)
	$(PY) -m pytest -m multihost -s tests/multihost

lint: $(STAMP)
	$(VENV)/bin/ruff check wsgisession tests examples benchmarks
	$(VENV)/bin/ruff format --check wsgisession tests examples benchmarks
	$(VENV)/bin/mypy

BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[$(EXTRAS),bench]'
	@touch $(BENCH_STAMP)

# In-process, store floors, HTTP (gunicorn + wrk: sync and keep-alive), instruction counts
# (valgrind), the ratio chart (docs/_static/bench-ratios.png) and the targets: a few minutes.
bench: $(BENCH_STAMP)
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; } \
		|| echo "wrk could not be installed: the HTTP part will be skipped"
	@command -v valgrind >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq valgrind; } \
		|| echo "valgrind could not be installed: the instruction counts will be skipped"
	$(PY) -m benchmarks $(BENCH_ARGS)

# Instructions per request of every contender and scenario under callgrind (slow: minutes).
bench-callgrind: $(BENCH_STAMP)
	$(PY) -m benchmarks --callgrind $(BENCH_ARGS)

# Load/save with 1k, 100k and 1M stored sessions, a bounded MemoryStore flood, a 1M-row purge.
bench-scale: $(BENCH_STAMP)
	$(PY) -m benchmarks --scale $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
