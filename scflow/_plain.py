"""Plain values: the one converter from tensors and NumPy scalars to what files hold.

:func:`plain` gives dicts, lists, Python scalars and NumPy arrays (a model's ``meta``, saved
as JSON + arrays); with ``json=True`` arrays become lists and any other object its ``str``
(the checkpoint's configuration, hashed as canonical JSON). ``adata.uns`` has its own, stricter
form (``scflow._adata.store.h5ad_safe``: no ``None``, arrays of strings as objects).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import Tensor

__all__ = ["plain", "json_default"]


def plain(obj: Any, *, json: bool = False) -> Any:
    """``obj`` with tensors as arrays, NumPy scalars as Python ones, mappings as ``dict``
    (string keys) and tuples as lists; ``json``: arrays as lists and unknown objects as
    strings too."""
    if isinstance(obj, Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, Mapping):
        return {str(k): plain(v, json=json) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) or (json and isinstance(obj, np.ndarray)):
        return [plain(v, json=json) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if json and not (obj is None or isinstance(obj, (bool, int, float, str))):
        return str(obj)
    return obj


def json_default(obj: Any) -> Any:
    """``json.dumps``'s ``default``: arrays and NumPy scalars; anything else is refused."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__} in a model file")
