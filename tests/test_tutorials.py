"""Every tutorial notebook runs top to bottom on the real data and draws at least one figure.

The notebooks are stored executed (``make tutorials``) so the docs site and GitHub show the
figures; the run here starts from cleared outputs and does not compare them with the stored
ones (training on shared cores is not bit-for-bit across machines)."""

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


def _images(nb) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]


def test_there_are_tutorials():
    names = [p.name for p in NOTEBOOKS]
    assert {"01_quickstart_emt.ipynb", "02_gene_space_schiebinger.ipynb",
            "03_benchmark.ipynb"} <= set(names)
    for path in NOTEBOOKS:  # valid nbformat 4.5 (cell ids)
        raw = json.loads(path.read_text())
        assert all("id" in c for c in raw["cells"]), f"{path.name}: a cell has no id"
        nbformat.validate(nbformat.read(path, as_version=4))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_is_stored_executed(path):
    """Stored as ``make tutorials`` writes it: every code cell run once, in order, without
    error, figures kept, and no volatile metadata (timings, kernel versions)."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
        f"{path.name} is not stored executed top to bottom: run `make tutorials`")
    assert _images(nb), f"{path.name} is stored without a figure"
    assert not [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert set(nb.metadata) == {"kernelspec", "language_info", "scflow"}, nb.metadata.keys()
    assert nb.metadata["language_info"] == {"name": "python"}
    assert not [c.metadata for c in code if "execution" in c.metadata]
    # the outputs came from this code: a code cell edited since needs `make tutorials`
    assert nb.metadata["scflow"]["code_sha256"] == _executor().code_sha256(nb), (
        f"{path.name}: code changed since its outputs were stored: run `make tutorials "
        f"NOTEBOOKS={path.stem[:2]}`")


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
    for cell in nb.cells:  # the stored outputs play no part: every check is on this run's
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    assert not _images(nb)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on any error
    assert _images(nb), f"{path.name} drew no figure"
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def _executor():
    import importlib.util

    spec = importlib.util.spec_from_file_location("tutorials_execute", TUTORIALS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_executor_drops_what_changes_between_runs():
    ex = _executor()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3",
                                                           "display_name": "Python 3"},
                                            "language_info": {"name": "python",
                                                              "version": "3.11.7"},
                                            "widgets": {"state": {}}})
    cell = nbformat.v4.new_code_cell("fit()", execution_count=1)
    cell.metadata["execution"] = {"iopub.execute_input": "2026-12-01T18:00:00Z"}
    bar = "\rscflow fate (ode):   0%|          | 0/2 [00:00<?, ?it/s]"
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=bar),
        nbformat.v4.new_output("stream", name="stderr", text="\r" + " " * 56 + "\r"),
        nbformat.v4.new_output("stream", name="stderr", text="    added\n    'fate' (obs)\n"),
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "ab12"},
            "text/plain": "HBox()"}),
        nbformat.v4.new_output("stream", name="stdout", text="W1 0.311\n"),
        nbformat.v4.new_output("stream", name="stderr", text=(
            f"/tmp/ipykernel_2278/552234640.py:1: UserWarning: zero loadings\n"
            f"{sys.prefix}/lib/python3.11/site-packages/x.py:3: FutureWarning: y\n")),
    ]
    nb.cells = [cell]
    out = ex.clean(nb)
    assert set(out.metadata) == {"kernelspec", "language_info", "scflow"}
    assert out.metadata["language_info"] == {"name": "python"}
    assert out.metadata["scflow"]["code_sha256"] == ex.code_sha256(out)
    edited = nbformat.from_dict(out)
    edited.cells[0].source = "fit(n_steps=10)"
    assert ex.code_sha256(edited) != ex.code_sha256(out)
    assert "execution" not in out.cells[0].metadata
    assert [(o.output_type, o.get("text")) for o in out.cells[0].outputs] == [
        ("stream", "    added\n    'fate' (obs)\n"), ("stream", "W1 0.311\n"),
        ("stream", "<cell>:1: UserWarning: zero loadings\n"
                   "<venv>/lib/python3.11/site-packages/x.py:3: FutureWarning: y\n")]
    assert out.cells[0].execution_count == 1


def test_executor_names_notebooks():
    ex = _executor()
    assert [p.name for p in ex.notebooks(["01", "03_benchmark.ipynb"])] == [
        "01_quickstart_emt.ipynb", "03_benchmark.ipynb"]
    assert ex.notebooks(None) == NOTEBOOKS
    with pytest.raises(ValueError, match="99"):
        ex.notebooks(["99"])
    with pytest.raises(ValueError, match="several"):
        ex.notebooks(["0"])


def test_executor_refuses_an_unknown_name_in_one_line(capsys):
    ex = _executor()
    with pytest.raises(SystemExit) as exit_info:
        ex.main(["01", "no_such_notebook"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert ": error: notebook 'no_such_notebook' names none or several of " \
        "['01_quickstart_emt'" in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_executor_writes_a_notebook_atomically(tmp_path, monkeypatch):
    ex = _executor()
    path = tmp_path / "nb.ipynb"
    old = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(old, path)
    before = path.read_bytes()
    new = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 2" * 1000)])
    real_write = nbformat.write

    def failing(nb, fh, *args, **kwargs):  # half the text, then the disk is full
        fh.write(nbformat.writes(nb)[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ex.nbformat, "write", failing)
    with pytest.raises(OSError, match="No space left"):
        ex.write_atomic(new, path)
    assert path.read_bytes() == before  # intact, not truncated
    assert [p.name for p in tmp_path.iterdir()] == ["nb.ipynb"]  # no temporary file left
    monkeypatch.setattr(ex.nbformat, "write", real_write)
    ex.write_atomic(new, path)
    assert nbformat.read(path, as_version=4).cells[0].source == "x = 2" * 1000
