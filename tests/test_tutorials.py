"""Every tutorial notebook runs top to bottom on the real data and draws at least one figure."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("jupyter_client.kernelspec")

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))


def _kernel_runs_this_python() -> None:
    """The ``python3`` kernel must start this interpreter (the venv's), where scflow is."""
    try:
        spec = kernelspec.KernelSpecManager().get_kernel_spec("python3")
    except kernelspec.NoSuchKernel:
        pytest.fail("no 'python3' Jupyter kernel; install one into the venv with "
                    f"`{sys.executable} -m ipykernel install --sys-prefix`")
    exe = spec.argv[0]
    # jupyter_client replaces a bare "python"/"python3" by sys.executable at launch
    if exe not in {"python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"}:
        if Path(exe).resolve() != Path(sys.executable).resolve():
            pytest.fail(f"the 'python3' kernel runs {exe}, not {sys.executable}; run "
                        f"`{sys.executable} -m ipykernel install --sys-prefix`")


def test_there_are_tutorials():
    names = [p.name for p in NOTEBOOKS]
    assert {"01_quickstart_emt.ipynb", "02_gene_space_schiebinger.ipynb",
            "03_benchmark.ipynb"} <= set(names)
    for path in NOTEBOOKS:  # committed without outputs, valid nbformat 4.5 (cell ids)
        raw = json.loads(path.read_text())
        assert all("id" in c for c in raw["cells"]), f"{path.name}: a cell has no id"
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.subprocess  # a Jupyter kernel
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_runs(path, data_dir, tmp_path, monkeypatch):
    _kernel_runs_this_python()
    monkeypatch.setenv("SCFLOW_DATA_DIR", str(data_dir))
    # one thread for torch in the kernel (on shared cores more run ~20x slower); numba, which
    # scanpy loads, would otherwise reset torch's OpenMP pool to all cores
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    work = tmp_path / path.name
    shutil.copy(path, work)
    nb = nbformat.read(work, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on any error
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, f"{path.name} drew no figure"
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
