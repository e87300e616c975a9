"""Progress wherever it runs: lines in a log, a bar on a terminal, none when asked."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
import torch

import scflow
from scflow._progress import Progress, progress_mode
from scflow.flow.timecourse import TimeCourse


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_every_tenth():
    out = io.StringIO()
    bar = Progress(range(50), desc="work", enabled=True, file=out)
    assert bar.mode == "log"
    for i in bar:
        if i == 20:
            bar.set_postfix(loss="0.5")
    lines = out.getvalue().splitlines()
    assert [line.split(": ")[1].split("%")[0].strip() for line in lines] == [
        str(p) for p in range(10, 101, 10)]
    assert lines[-1].startswith("work: 100% (50/50)") and "loss=0.5" in lines[-1]


def test_modes():
    assert progress_mode(False) == "off"
    assert progress_mode(True, io.StringIO()) == "log"
    assert progress_mode(True, _Tty()) == "bar"
    with pytest.raises(ValueError, match="progress"):
        progress_mode("yes")
    tty = _Tty()
    with Progress(total=4, desc="b", enabled=True, file=tty) as bar:
        bar.update(4)
    assert "b:   0%" in tty.getvalue() and "0/4" in tty.getvalue()  # tqdm's bar
    quiet = io.StringIO()
    for _ in Progress(range(5), enabled=False, file=quiet):
        pass
    assert quiet.getvalue() == ""


def test_verbosity_zero_hides_progress():
    old = scflow.settings.verbosity
    try:
        scflow.settings.verbosity = 0
        assert progress_mode(None, io.StringIO()) == "off"
        scflow.settings.verbosity = 1
        assert progress_mode(None, io.StringIO()) == "log"
    finally:
        scflow.settings.verbosity = old


def test_fit_flow_reports_progress_in_a_log(capsys):
    g = torch.Generator().manual_seed(0)
    tc = TimeCourse.from_arrays(torch.randn(40, 2, generator=g).numpy(),
                                [0] * 20 + [1] * 20, whiten=True)
    scflow.fit_flow(tc, "icfm", n_steps=20, hidden=(8,), progress=True)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("scflow icfm:  10% (2/20)") and err[-1].startswith(
        "scflow icfm: 100% (20/20)")
    scflow.fit_flow(tc, "icfm", n_steps=20, hidden=(8,), progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.subprocess
def test_import_does_not_load_tqdm_auto():
    # tqdm.auto warns (TqdmWarning) at import in a Jupyter kernel without ipywidgets
    code = "import sys, scflow; print('tqdm.auto' in sys.modules, 'tqdm.autonotebook' in " \
           "sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]


def test_tl_fit_takes_progress(capsys):
    import anndata as ad
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    adata = ad.AnnData(rng.normal(size=(40, 3)).astype(np.float32),
                       obs=pd.DataFrame({"day": [0.0] * 20 + [1.0] * 20},
                                        index=[f"c{i}" for i in range(40)]))
    adata.obsm["X_pca"] = adata.X.copy()
    scflow.tl.fit(adata, n_steps=10, hidden=(8,), progress=True)
    assert "scflow otcfm: 100% (10/10)" in capsys.readouterr().err
    scflow.tl.fit(adata, n_steps=10, hidden=(8,), progress=False)
    assert "%" not in capsys.readouterr().err


def test_in_a_kernel_a_bar_with_or_without_widgets(monkeypatch):
    from scflow import _progress

    monkeypatch.setattr(_progress, "_in_kernel", lambda: True)
    monkeypatch.setattr(_progress, "_has_widgets", lambda: False)
    # no ipywidgets: tqdm's text bar, shown although the kernel's stderr is no terminal
    assert progress_mode(True, io.StringIO()) == "bar"
    monkeypatch.setattr(_progress, "_has_widgets", lambda: True)
    assert progress_mode(True, io.StringIO()) == "notebook"
