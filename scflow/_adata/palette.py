"""Colours of categories as scanpy gives them, shared by the tools that store colours and the
plots that read them (so a label has one colour in ``sc.pl.umap`` and in every scflow plot)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_hex

__all__ = ["palette", "category_colors"]


def palette(n: int) -> list[str]:
    """scanpy's default colours: ``tab10`` up to 10 categories, ``tab20`` up to 20, else
    evenly spaced in ``turbo``."""
    if n <= 10:
        return [to_hex(c) for c in colormaps["tab10"].colors[:n]]
    if n <= 20:
        return [to_hex(c) for c in colormaps["tab20"].colors[:n]]
    return [to_hex(colormaps["turbo"](i / max(n - 1, 1))) for i in range(n)]


def category_colors(adata: Any, key: str) -> dict[str, str]:
    """The colour of every category of ``obs[key]``, as scanpy draws it: ``uns[key +
    "_colors"]`` when it holds one colour per category (scanpy writes it on the first plot),
    else scanpy's default palette over the categories (sorted, for strings). The same
    category then has the same colour in ``sc.pl.umap`` and every scflow plot. ``{}`` when
    ``key`` is not a column of ``obs``."""
    if key not in adata.obs:
        return {}
    col = adata.obs[key]
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in col.cat.categories]
    else:
        cats = sorted(str(v) for v in pd.unique(col.dropna()))
    stored = adata.uns.get(f"{key}_colors")
    if stored is not None and len(stored) == len(cats):
        colors = [str(c) for c in stored]
    else:
        colors = palette(len(cats))
    return dict(zip(cats, colors, strict=True))


