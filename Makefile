# The two README commands: `make run` builds the default dataset and report, `make test` runs
# the test suite. Both create .venv and install the pinned stack on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CORES ?= all

.PHONY: run test lint bench report-html clean

run: $(INSTALLED)
	$(BIN)/snakemake --cores $(CORES)

test: $(INSTALLED)
	$(BIN)/pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint

bench: $(INSTALLED)
	$(BIN)/python benchmarks/engines.py

report-html: $(INSTALLED)
	$(BIN)/snakemake --report report.html

# Reinstalled whenever pyproject.toml changes.
$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

clean:
	rm -rf results .snakemake report.html
