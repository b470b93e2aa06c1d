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
# The default dataset's folder: config.yaml's `dataset` (quotes and comments stripped).
DATASET ?= $(shell sed -n 's/^dataset:[[:space:]]*["'"'"']*\([^"'"'"'[:space:]\#]*\).*/\1/p' config.yaml)
RESULTS := results/$(DATASET)

.PHONY: run test slurm-test lint bench report-html readme-picture clean

# The dataset, its report (report.md, PNGs) and the self-contained HTML page, then a summary.
run: $(INSTALLED)
	$(BIN)/snakemake --cores $(CORES) --report $(RESULTS)/report.html --report-after-run
	@echo
	@$(BIN)/cvgen summary $(RESULTS)

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
	$(BIN)/python benchmarks/gaussian.py
	$(BIN)/python benchmarks/gbs.py
	$(BIN)/python benchmarks/noise.py
	$(BIN)/python benchmarks/reading.py

report-html: $(INSTALLED)
	$(BIN)/snakemake --report $(RESULTS)/report.html

# The README's opening picture: the default report's sampled-outcomes figure (deterministic:
# the same config draws the same outcomes), regenerated from a fresh build.
readme-picture: run
	cp $(RESULTS)/report/sampling.png docs/demo-report.png

# Reinstalled whenever pyproject.toml changes.
$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,torch]"
	touch $@

$(SLURM_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e ".[test,slurm]"
	touch $@

$(BENCH_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $@

clean:
	rm -rf results .snakemake report.html
