"""Sphinx configuration of the scflow docs site (``make docs``; output in ``build/docs``).

The API pages are autodoc from the docstrings (numpydoc style, read by napoleon); the
tutorial notebooks are rendered by myst-nb from their stored outputs, never executed here
(``make tutorials`` executes and stores them).
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version as _version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's scflow
os.environ.setdefault("MPLBACKEND", "Agg")

project = "scflow"
author = "the scflow authors"
copyright = "the scflow authors, BSD-3-Clause"  # noqa: A001 (Sphinx's name)
release = _version("scflow")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",
]
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]
root_doc = "index"

# the notebooks are rendered as stored (with outputs); the docs build executes nothing
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath"]

autodoc_default_options = {"members": True, "member-order": "bysource",
                           "show-inheritance": True}
autodoc_typehints = "signature"
autosummary_generate = False
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

html_theme = "sphinx_book_theme"
html_title = "scflow"
html_theme_options = {"show_toc_level": 2}



def _summary(app, what, name, obj, options, lines):
    """After each module's docstring, an autosummary table of its ``__all__`` (functions
    and classes, linking to their entries below), so new public names are listed without
    editing the API page."""
    import inspect

    if what != "module" or not hasattr(obj, "__all__"):
        return
    members = [m for m in obj.__all__
               if inspect.isfunction(getattr(obj, m)) or inspect.isclass(getattr(obj, m))]
    lines += ["", ".. autosummary::", ""] + [f"   {m}" for m in members] + [""]


def setup(app):
    app.connect("autodoc-process-docstring", _summary)
