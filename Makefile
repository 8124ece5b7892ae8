# make run · make test · make load · make fuzz · make lint · make docs · make dist · make bench —
# each sets up what it needs.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3.10 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null && echo $$p && break; done)
# The published extras (pyproject.toml [project.optional-dependencies]) ...
EXTRAS ?= redis,postgres,cookie,flask,django,pyramid
# ... and the project's own dependency groups (PEP 735, [dependency-groups], never published).
GROUPS ?= test dev

.PHONY: run test test-multihost load lint docs dist bench bench-callgrind bench-scale fuzz clean venv

venv: $(STAMP)

$(STAMP): setup.py pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.10 or newer is needed (python3.10 … python3.13 on PATH)"; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade 'pip>=25.1'  # 25.1 installs dependency groups (--group)
	@# Until 0.1.0 the distribution was called wsgisession: drop that install from an older .venv.
	@$(PY) -m pip uninstall -q -y wsgisession 2>/dev/null || true
	$(PY) -m pip install -q -e '.[$(EXTRAS)]' $(addprefix --group ,$(GROUPS))
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

# Three hosts in network namespaces behind nginx, on Redis then PostgreSQL (root; see docs/deploying.md).
test-multihost: $(STAMP)
	$(PY) -m pytest -m multihost -s tests/live/multihost

lint: $(STAMP)
	$(VENV)/bin/ruff check wsgisession tests examples benchmarks docs
	$(VENV)/bin/ruff format --check wsgisession tests examples benchmarks docs README.md
	$(VENV)/bin/mypy

DOCS_STAMP := $(VENV)/.docs-stamp

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q --group docs
	@touch $(DOCS_STAMP)

# The documentation site (Sphinx + MyST): warnings are errors, every cross-reference must resolve.
docs: $(DOCS_STAMP)
	$(VENV)/bin/sphinx-build -q -W --keep-going -n -E -b html docs docs/_build/html
	@echo "The docs are in docs/_build/html/index.html"

DIST_STAMP := $(VENV)/.dist-stamp

$(DIST_STAMP): $(STAMP)
	$(PY) -m pip install -q --group dist
	@touch $(DIST_STAMP)

# The sdist and the wheel, built in isolation as a user's pip would, then checked by twine.
dist: $(DIST_STAMP)
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/*

BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q --group bench
	@touch $(BENCH_STAMP)

# In-process, store floors, HTTP (gunicorn + wrk: sync and keep-alive), instruction counts
# (valgrind), the ratio chart (docs/_static/bench-ratios.png) and the targets: about ten minutes.
# wrk and valgrind are Debian packages: when one is missing, this says so before installing it
# system-wide.
bench: $(BENCH_STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
		echo "make bench: the HTTP part needs wrk, which is not installed;" \
			"installing Debian's wrk system-wide now (apt-get install wrk, as root)"; \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk; } \
			|| echo "make bench: wrk could not be installed (install it yourself:" \
				"apt-get install wrk): the HTTP part will be skipped"; }
	@command -v valgrind >/dev/null 2>&1 || { \
		echo "make bench: the instruction counts need valgrind, which is not installed;" \
			"installing Debian's valgrind system-wide now (apt-get install valgrind, as root)"; \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq valgrind; } \
			|| echo "make bench: valgrind could not be installed (install it yourself:" \
				"apt-get install valgrind): the instruction counts will be skipped"; }
	$(PY) -m benchmarks $(BENCH_ARGS)

# Instructions per request of every contender and scenario under callgrind (slow: minutes).
bench-callgrind: $(BENCH_STAMP)
	$(PY) -m benchmarks --callgrind $(BENCH_ARGS)

# Load/save with 1k, 100k and 1M stored sessions, a bounded MemoryStore flood, a 1M-row purge.
bench-scale: $(BENCH_STAMP)
	$(PY) -m benchmarks --scale $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist docs/_build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
