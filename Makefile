# Two commands set everything up on a fresh clone: `make demo` and `make test`.
# Both create .venv when it is missing and install into it once (stamp file .venv/.mfe-installed).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mfe-installed
DEMO   ?= demo

.PHONY: demo test bench install clean-demo help

help:
	@echo "make demo   - synthetic cohort -> ... -> the furthest pipeline stage, on CPU"
	@echo "make test   - run the test suite (CPU, tiny synthetic data)"
	@echo "make bench  - run the benchmarks in bench/ (prints numbers)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch is pinned in the same pip command so that no other package can upgrade it.
	$(PY) -m pip install --disable-pip-version-check -q torch==2.13.0 -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mfe demo $(DEMO)

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-demo:
	rm -rf $(DEMO)
