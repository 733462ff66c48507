# Two commands: `make run` and `make test`. Each creates .venv on a fresh machine,
# installs torch first (so nothing can swap in a CUDA build), then the pins, then the package
# (which compiles its one C file, crystalrep/graphs/_cells.c, where a C compiler is found).
# Tests run single-threaded (OMP/MKL): many small tensors and pytest's own parallelism gain
# nothing from a thread pool per process, and oversubscribed cores slow every test down.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
# Where torch comes from. Default: PyPI plus any local wheel folder pip is configured with.
# On a machine without a local CPU wheel, `make TORCH_INDEX=https://download.pytorch.org/whl/cpu`.
TORCH_INDEX ?=
TORCH_ARGS := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

.PHONY: setup run test test-fast lint bench default-data clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools

$(VENV)/.torch: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0 $(TORCH_ARGS)
	touch $@

$(VENV)/.deps: $(VENV)/.torch requirements.txt pyproject.toml setup.py crystalrep/graphs/_cells.c
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	@$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

setup: $(VENV)/.deps

run: setup
	$(BIN)/streamlit run app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: setup lint
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q

test-fast: setup
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not slow and not e2e"

lint: setup
	$(BIN)/ruff check crystalrep ui views app.py tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m benchmarks.run

default-data: setup
	$(BIN)/crystalrep data build-default

clean:
	rm -rf $(VENV) .pytest_cache
