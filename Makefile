# The two set-up commands of the README: `make study` and `make test`. Both install into .venv
# first when needed; a second `make setup` is a no-op (the stamp is newer than what it installs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cyclelab-installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup study test lint bench

setup: $(STAMP)

# torch/torchvision go first and pinned, so no other requirement can pull a different build.
$(STAMP): pyproject.toml requirements-fid.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-fid.txt
	@# rembg's import compiles pymatting's numba kernels into the venv (about 50 s of CPU, once):
	@# here, not in the first prepare with data.background: rembg nor in every test worker.
	$(BIN)/python -c "import rembg"
	touch $(STAMP)

# STUDY=<preset> runs studies/<preset>.yaml as `dvc exp run -n <preset>` (python -m cyclelab study).
study: setup
	$(if $(STUDY),$(BIN)/python -m cyclelab study $(STUDY),$(BIN)/dvc repro)
	@$(BIN)/python -m cyclelab.report.headline
	@echo "Done. Results: reports/index.html (report), reports/metrics/*.json (metrics);"
	@echo "runs: $(BIN)/mlflow ui (in this folder); experiments: $(BIN)/dvc exp show"

test: setup
	$(BIN)/python -m pytest -q -n auto --dist loadgroup --no-loadscope-reorder --durations=15

lint: setup
	$(BIN)/ruff check src pipeline tests bench

# Benchmarks (bench/RESULTS.md): quick by default (about a minute); FULL=1 runs every config,
# FID at 32 and 256 px and the pipeline numbers; STUDY=1 adds the default study by stage.
bench: setup
	$(BIN)/python bench/run.py $(if $(FULL),--full) $(if $(STUDY),--study)
