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

.PHONY: install demo test test-fast lint bench clean docs tutorials cellrank peers

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

# A first table in a minute or two (one seed, 500 steps, otcfm beside static_ot); the full
# tables (every default method, 3 seeds of 3000 steps: minutes more) with `make demo FULL=1`.
demo: install
	$(VENV)/bin/scflow benchmark $(if $(FULL),,--quick) --out results

test: install
	$(PY) -m pytest -q -p no:cacheprovider

# The inner loop: no real data, no subprocesses, no slow tests (markers in pyproject.toml).
test-fast: install
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow and not data and not subprocess"

# The tutorials, executed and stored with their outputs (volatile metadata dropped); the
# test suite re-runs them from scratch. One notebook: make tutorials NOTEBOOKS=01
tutorials: install
	$(PY) tutorials/execute.py $(NOTEBOOKS)

# The docs site (Sphinx: autodoc + the stored notebooks, nothing executed), warnings as errors.
DOCS_OUT ?= build/docs
$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q -e ".[docs]"
	touch $@

docs: $(VENV)/.docs-installed
	$(PY) -m sphinx -W --keep-going -E -q -b html tutorials $(DOCS_OUT)
	@echo "docs: $(DOCS_OUT)/index.html"

# The README's CellRank call, in a separate venv with the versions CellRank 2.0.7 needs
# (numpy < 2.3): writes benchmarks/results/cellrank.json, then runs the optional CellRank test.
CELLRANK_VENV ?= .venv-cellrank
CR_PY := $(CELLRANK_VENV)/bin/python
$(CELLRANK_VENV)/.installed: pyproject.toml benchmarks/cellrank-requirements.txt
	test -x $(CR_PY) || $(PYTHON) -m venv $(CELLRANK_VENV)
	$(CR_PY) -m pip install -q --upgrade pip
	$(CR_PY) -c "import torch" 2>/dev/null || $(CR_PY) -m pip install -q "$(TORCH_SPEC)"
	$(CR_PY) -m pip install -q -e . pytest -r benchmarks/cellrank-requirements.txt
	touch $@

cellrank: $(CELLRANK_VENV)/.installed
	$(CR_PY) benchmarks/cellrank_check.py
	$(CR_PY) -m pytest -q -p no:cacheprovider tests/tl/test_tl_cellrank.py tests/tl/test_tl_transitions.py

# The peers a user would run instead (moscot 0.5.2 on JAX / ott-jax, CPU; CellRank; TorchCFM),
# in a venv of their own (.venv-peers), none a dependency of scflow: benchmarks/peers.py runs
# them beside scflow on the same cells (JAX on one CPU thread), then their optional test runs.
# Stages one at a time: make peers PEER_STAGES="loo growth"; the full list is below.
PEERS_VENV ?= .venv-peers
PEERS_PY := $(PEERS_VENV)/bin/python
PEER_STAGES ?= dev loo growth larry cost
$(PEERS_VENV)/.installed: pyproject.toml benchmarks/peers-requirements.txt
	test -x $(PEERS_PY) || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_PY) -m pip install -q --upgrade pip
	$(PEERS_PY) -c "import torch" 2>/dev/null || $(PEERS_PY) -m pip install -q "$(TORCH_SPEC)"
	$(PEERS_PY) -m pip install -q "$(TORCH_SPEC)" -e . pytest -r benchmarks/peers-requirements.txt
	touch $@

peers: $(PEERS_VENV)/.installed
	for stage in $(PEER_STAGES); do \
		JAX_PLATFORMS=cpu XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
		nice -n 10 $(PEERS_PY) benchmarks/peers.py $$stage || exit 1; done
	$(PEERS_PY) -m pytest -q -p no:cacheprovider tests/benchmark/test_peers.py tests/benchmark/test_peers_moscot.py

lint: install
	$(VENV)/bin/ruff check scflow tests benchmarks tutorials

clean:
	rm -rf $(VENV) $(CELLRANK_VENV) $(PEERS_VENV) results build .pytest_cache
