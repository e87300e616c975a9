"""Execute the tutorial notebooks and store them with their outputs (``make tutorials``).

Each notebook runs top to bottom in a fresh ``python3`` kernel (the venv's, with scflow),
in a scratch folder, with one thread for torch and numba; the seeds are set in the
notebooks. What would change from run to run without a change of result is left out:
execution timings, the kernel's version details, widget state, progress bars, and paths of
this machine in warnings (the kernel's cell file, the checkout, the venv). The docs site renders
these stored outputs (it executes nothing); the test suite re-executes every notebook
from scratch and does not compare outputs.

Usage::

    python tutorials/execute.py                    # every notebook
    python tutorials/execute.py 01 03_benchmark   # some (by name or unique prefix)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
#: the environment of the kernel: one thread (on shared cores more run many times slower)
ENV = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONHASHSEED": "0",
       # tqdm's notice that ipywidgets is absent (it names this machine's venv path)
       "PYTHONWARNINGS": "ignore:IProgress not found"}


#: machine-specific paths in warnings: a kernel's cell file (its pid), this checkout, the venv
_PATHS = [(re.compile(r"\S*ipykernel_\d+[/\\]\d+\.py"), "<cell>"),
          (re.compile(re.escape(sys.prefix)), "<venv>"),  # first: the venv may be in the repo
          (re.compile(re.escape(str(HERE.parent))), "<repo>")]


def _scrub(text: str) -> str:
    """Machine-specific paths replaced by placeholders."""
    for pattern, repl in _PATHS:
        text = pattern.sub(repl, text)
    return text


def _settle(text: str) -> str:
    """A stream as a terminal leaves it: each line's text after its last carriage return
    (progress-bar frames carry timings), blank lines left by erased bars dropped."""
    if "\r" not in text:
        return text
    lines = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    kept = [line for line in lines[:-1] if line.strip()] + [lines[-1].rstrip()]
    return "\n".join(kept)


def notebooks(names: list[str] | None = None) -> list[Path]:
    """The tutorial notebooks, all or the ones named; ``ValueError`` for an unknown name."""
    paths = sorted(HERE.glob("*.ipynb"))
    if not names:
        return paths
    by_name = {p.stem: p for p in paths}
    out = []
    for name in names:
        stem = Path(name).name.removesuffix(".ipynb")
        found = [p for s, p in by_name.items() if s == stem] or [
            p for s, p in by_name.items() if s.startswith(stem)]
        if len(found) != 1:
            raise ValueError(f"notebook {name!r} names none or several of {sorted(by_name)}")
        out.append(found[0])
    return out


def _volatile(out: nbformat.NotebookNode) -> bool:
    """An empty stream, or a widget (a progress bar's; its model id changes every run)."""
    if out.output_type == "stream":
        return not out.text.strip()
    return "application/vnd.jupyter.widget-view+json" in out.get("data", {})


def code_sha256(nb: nbformat.NotebookNode) -> str:
    """Digest of the notebook's code cells: stored outputs belong to the code they came from."""
    code = "\0".join(c.source for c in nb.cells if c.cell_type == "code")
    return hashlib.sha256(code.encode()).hexdigest()


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop volatile metadata (timings, kernel version details, widget state), progress
    bars (text frames, widgets) and machine-specific paths in streams; record the digest
    of the code that was run (``metadata["scflow"]["code_sha256"]``)."""
    nb.metadata = nbformat.from_dict({"kernelspec": dict(KERNELSPEC),
                                      "language_info": {"name": "python"},
                                      "scflow": {"code_sha256": code_sha256(nb)}})
    for cell in nb.cells:
        for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            merged: list = []  # consecutive writes to one stream, as a front end shows them
            for out in cell.outputs:
                if (out.output_type == "stream" and merged
                        and merged[-1].output_type == "stream" and merged[-1].name == out.name):
                    merged[-1].text += out.text
                else:
                    merged.append(out)
            for out in merged:
                if out.output_type == "stream":
                    out.text = _scrub(_settle(out.text))
            cell.outputs = [o for o in merged if not _volatile(o)]
    return nb


def execute(path: Path, *, timeout: int = 1800) -> float:
    """Run one notebook in place (outputs stored, volatile metadata dropped); seconds."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                record_timing=False, resources={"metadata": {"path": work}})
        client.execute(env={**os.environ, **ENV})
    nbformat.validate(nb)
    write_atomic(clean(nb), path)
    return time.perf_counter() - start


def write_atomic(nb: nbformat.NotebookNode, path: Path) -> None:
    """Write ``nb`` to ``path`` through a temporary file beside it, moved into place once
    complete: a failed write (a full disk, an interruption) leaves the stored notebook as it
    was, never truncated."""
    from scflow._io import atomic_path

    with atomic_path(path, suffix=".ipynb.tmp") as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            nbformat.write(nb, fh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)
    try:
        paths = notebooks(args.names)  # every name checked before any notebook runs
    except ValueError as err:
        parser.error(str(err))  # one line and status 2, as for a bad option
    os.environ.pop("MPLBACKEND", None)  # the kernel draws inline
    for path in paths:
        print(f"{path.name}: executing ...", flush=True)
        print(f"{path.name}: stored with outputs ({execute(path, timeout=args.timeout):.0f} s)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
