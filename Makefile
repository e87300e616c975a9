# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch (on this machine's disk); an unpinned torch can pull a 5 GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
export SCFLOW_DATA_DIR ?= $(abspath ../shared/data)
export MPLBACKEND ?= Agg
# Small MLPs train fastest on one thread per process (measured: 20x faster than two threads
# on a busy 2-core machine); numba (loaded by scanpy) would otherwise raise torch's count.
export OMP_NUM_THREADS ?= 1
export NUMBA_NUM_THREADS ?= 1

.PHONY: install demo test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/scflow benchmark --out results

test: install
	$(PY) -m pytest -q -p no:cacheprovider

# The inner loop: no real data, no subprocesses, no slow tests (markers in pyproject.toml).
test-fast: install
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow and not data and not subprocess"

lint: install
	$(VENV)/bin/ruff check scflow tests benchmarks tutorials

clean:
	rm -rf $(VENV) results .pytest_cache
