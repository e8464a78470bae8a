# One environment for everything: `make demo` and `make test` create it on first use.
# CPU installs pin torch through constraints/cpu.txt (a small CPU wheel); on a GPU machine
# run `make CONSTRAINTS= demo` to let pip choose a CUDA build of torch.
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS ?= constraints/cpu.txt
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-presets lint check bench docs clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[test,dev]'
	touch $@

demo: $(STAMP)  ## the main job: the smoke sweep on an embedded local Ray (CPU), then its table
	$(VENV)/bin/adx sweep run sweeps/specs/smoke.yaml --overwrite

test: $(STAMP)  ## the default test suite (fast, CPU only)
	$(PY) -m pytest -q

test-slow: $(STAMP)  ## long runs: fault injection, training to convergence
	$(PY) -m pytest -q -m "slow and not preset" --timeout 2400

test-presets: $(STAMP)  ## whole presets against their science targets (mini, mini-block), not in CI
	$(PY) -m pytest -q -m preset --timeout 3600

lint: $(STAMP)  ## ruff (lint and format) and mypy, zero findings
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

check: lint test

docs: $(STAMP)  ## regenerate every generated table of README.md and docs/RESULTS.md from results/published
	$(VENV)/bin/cog -r -p "from analysis.pages import map_progress, preset_table, published, show, show_figure, show_text" README.md docs/RESULTS.md

bench: $(STAMP)
	$(PY) benchmarks/run.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
