# The README's two commands: `make demo` and `make test`. Both start from a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SOURCES := pyproject.toml setup.py $(wildcard native_tracker/src/*.c native_tracker/src/*.h)

.PHONY: setup demo test test-slow test-versions accuracy torture lint bench system-deps clean

$(STAMP): $(SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# System programs, installed when missing and we are root: Graphviz's `dot` draws the reference graphs;
# valgrind checks the native tracker's C code in the test suite; gdb starts the agent in a running
# process (`leakbench attach` on Python 3.11 to 3.13).
system-deps:
	@missing=""; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	command -v valgrind >/dev/null 2>&1 || missing="$$missing valgrind"; \
	command -v gdb >/dev/null 2>&1 || missing="$$missing gdb"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "leakbench: missing system packages:$$missing (e.g. 'sudo apt-get install$$missing')" >&2; \
	  fi; \
	fi

setup: $(STAMP) system-deps

demo: setup
	$(VENV)/bin/leakbench investigate --yes --out leakbench-runs/demo-$$(date +%Y%m%d-%H%M%S) \
	  examples/buffer_leak/app.py

test: setup
	$(VENV)/bin/pytest -m "not slow"

# the long end-to-end checks make test leaves out (their ground is covered there by another test)
test-slow: setup
	$(VENV)/bin/pytest -m slow

# tests/versions' long tests on every CPython found (make test runs them on the newest one only)
test-versions: setup
	LEAKBENCH_ALL_VERSIONS=1 $(VENV)/bin/pytest tests/versions

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The accuracy corpus (accuracy/): every program 3 times through `leakbench investigate`, scored against its
# declared verdict, line and root. Long (2–3 hours on 2 cores: ~50 s per investigation); a fast subset runs in
# `make test`.
# e.g. make accuracy ACCURACY_ARGS="--runs 1 --results accuracy/RESULTS.md lru_cache"
ACCURACY_ARGS ?=
accuracy: setup
	$(PY) -m accuracy.runner $(ACCURACY_ARGS)

# Programs that stress the agent, each run plainly and under every built-in playbook RUNS times: exit code,
# stdout and written files must not change (tests/harmless/; a fast subset runs in `make test`).
RUNS ?= 5
torture: setup
	$(PY) -m tests.harmless.harness --runs $(RUNS)

bench: setup
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/investigate_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info leakbench-runs
