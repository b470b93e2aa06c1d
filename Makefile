# The two README commands: `make run` builds the default dataset and report, `make test` runs
# the test suite. Both create .venv and install the pinned stack on first use. `make slurm-test`
# runs the workflow on a real, private one-node Slurm (tests/slurm/run.sh; root and apt-get).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SLURM_INSTALLED := $(VENV)/.installed-slurm
BENCH_INSTALLED := $(VENV)/.installed-bench
CORES ?= all

.PHONY: run test slurm-test lint bench report-html clean

run: $(INSTALLED)
	$(BIN)/snakemake --cores $(CORES)

test: $(INSTALLED)
	$(BIN)/pytest

# Bounded: the test stops the daemons it started on any exit, TERM from timeout included.
slurm-test: $(SLURM_INSTALLED)
	timeout -k 90 570 tests/slurm/run.sh

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint

bench: $(BENCH_INSTALLED)
	$(BIN)/python benchmarks/engines.py
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/jobs.py

report-html: $(INSTALLED)
	$(BIN)/snakemake --report report.html

# Reinstalled whenever pyproject.toml changes.
$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

$(SLURM_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e ".[test,slurm]"
	touch $@

$(BENCH_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $@

clean:
	rm -rf results .snakemake report.html
