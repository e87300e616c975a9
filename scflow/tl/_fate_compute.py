"""The computing half of ``tl.fate``: the checked setup, the probabilities at one or several
``n_neighbors`` (one integration serves every ``k``), and :func:`fate_readouts` for tables
that read the same call at several ``k`` (the LARRY benchmark)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from .._adata.access import check_adata, get_times
from .._adata.fit import check_steps, device, rep_of, steps_for
from .._adata.store import FitRecord, load_model, read_fit
from .._checks import integer, number, seed
from .._progress import Progress
from ..fate.core import DEFAULT_MODE, flow_fate, soft_labels_many, transport_fate
from ..fate.pull import pull_fate
from ..flow.model import FlowModel
from ..methods import names
from ._fate_labels import reference
from ._guards import warn_few_cells

__all__ = ["Setup", "prepare", "probabilities", "fate_readouts", "FATE_MODES",
           "DEFAULT_DRAWS", "DEFAULT_MODE"]

FATE_MODES = ("auto", "pull", "sde", "ode", "transport")
#: SDE draws per cell by default (``mode="sde"``): chosen on simulations
#: (``benchmarks/fate_simulation.py``), never on the LARRY truth
DEFAULT_DRAWS = 30


@dataclass
class Setup:
    """A checked ``tl.fate`` call, before the labels are read."""

    rec: FitRecord
    model: FlowModel
    x: torch.Tensor
    idx: np.ndarray
    src: np.ndarray
    k0: int | None
    k1: int
    groups: pd.Series
    mode: str
    n_draws: int
    n_steps: int
    reg: float
    max_cells: int
    share: float
    random_state: int


def prepare(adata: AnnData, groupby: str, *, key: str, from_time, to_time, mode: str,
            n_draws: int | None, reg: float, max_cells: int, n_steps: int, random_state: int,
            share: float, writing: bool = True) -> Setup:
    """Check the arguments of ``tl.fate`` (but ``n_neighbors``, ``fates``, ``key_added``)
    and load what it reads; nothing is written."""
    check_adata(adata, writing=writing)
    rec = read_fit(adata, key)
    if not isinstance(groupby, str) or groupby not in adata.obs:
        raise KeyError(f"groupby={groupby!r} is not a column of adata.obs")
    if mode not in FATE_MODES:
        raise ValueError(f"mode must be one of {FATE_MODES}, got {mode!r}")
    n_steps = check_steps(n_steps)
    random_state = seed(random_state)
    reg = number(reg, "reg", lower=0, strict=True)
    max_cells = integer(max_cells, "max_cells", lower=2)
    share = number(share, "share", lower=0, strict=True)
    if share > 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    model = load_model(adata, key, device=device())
    mode = DEFAULT_MODE if mode == "auto" else mode
    if mode == "sde" and not model.has_score:
        raise ValueError(f"mode='sde' needs a fit with a score network (a method in "
                         f"{names('neural', has_score=True)}); the fit "
                         f"under {key!r} is {rec.params.get('method')!r}: use mode='pull', "
                         "'ode' or 'transport'")
    if n_draws is None:
        n_draws = DEFAULT_DRAWS if mode == "sde" else 1
    n_draws = integer(n_draws, "n_draws", lower=1)
    if n_draws > 1 and mode != "sde":
        raise ValueError(f"n_draws={n_draws} needs mode='sde' (a pull, an ODE push or a "
                         f"transport plan is deterministic), got mode={mode!r}")
    tl = rec.timeline
    idx = tl.cell_index(get_times(adata, rec.time_key))
    k1 = tl.n - 1 if to_time is None else tl.require_index(to_time, "to_time")
    if from_time is None:
        src, k0 = idx < k1, None
    else:
        k0 = tl.require_index(from_time, "from_time")
        if k0 >= k1:
            raise ValueError(f"from_time={from_time!r} must come before to_time "
                             f"({tl.labels[k1]!r})")
        src = idx == k0
    if not src.any():
        raise ValueError(f"no cells to push before to_time={tl.labels[k1]!r}")
    used = np.unique(np.concatenate([idx[src], [k1]]))
    warn_few_cells({tl.labels[k]: int((idx == k).sum()) for k in used}, "tl.fate")
    if mode != "transport":  # the longest push (or pull), checked before any
        steps_for(float(tl.times[k1] - tl.times[idx[src].min()]), n_steps)
    # the cells read: those pushed, and every cell from the first start to to_time
    read = src | ((idx >= idx[src].min()) & (idx <= k1))
    x = torch.as_tensor(rec.to_model(rep_of(adata, rec, read)), dtype=torch.float32)
    return Setup(rec, model, x, idx, src, k0, k1, adata.obs[groupby], mode, n_draws, n_steps,
                 reg, max_cells, share, random_state)


def probabilities(s: Setup, ref: torch.Tensor, codes: torch.Tensor, n_fates: int,
                  ks: Sequence[int]) -> np.ndarray:
    """``(len(ks), n_src, n_fates)`` fate probabilities of the cells ``s.src`` (each from
    its own timepoint), read among the labelled cells ``ref`` at every ``k`` of ``ks``; one
    integration (or plan, or pull) serves every ``k``."""
    ks = list(ks)
    tl, idx, x, k1 = s.rec.timeline, s.idx, s.x, s.k1
    src_idx = idx[s.src]
    out = np.empty((len(ks), int(s.src.sum()), n_fates))
    starts = np.unique(src_idx)
    g = torch.Generator(device=s.model.device).manual_seed(s.random_state)
    cpu_g = torch.Generator().manual_seed(s.random_state)
    if s.mode == "pull":  # one backward sweep through every timepoint with cells
        chain = [m for m in range(int(starts[0]), k1 + 1) if (idx == m).any()]
        pops = [x[idx == m] for m in chain]
        last = soft_labels_many(pops[-1], ref, codes, n_fates, ks)  # (len(ks), m, F)
        with Progress(total=len(chain) - 1, desc="scflow fate (pull)") as bar:
            fates = pull_fate(s.model, pops, [float(tl.times[m]) for m in chain],
                              last.transpose(0, 1).reshape(len(pops[-1]), -1),
                              share=s.share, n_steps=s.n_steps, max_cells=s.max_cells,
                              generator=cpu_g, progress=bar.update)
        for m, p in zip(chain[:-1], fates, strict=True):
            if m in starts:
                p = p.reshape(len(p), len(ks), n_fates).transpose(0, 1)
                out[:, src_idx == m] = p.detach().cpu().numpy()
        return out
    total = len(starts) * (s.n_draws if s.mode == "sde" else 1)
    with Progress(total=total, desc=f"scflow fate ({s.mode})") as bar:
        for k in starts:
            sel = src_idx == k
            cells = x[np.flatnonzero(s.src)[sel]]
            if s.mode == "transport":
                pops = [cells] + [x[idx == m] for m in range(int(k) + 1, k1 + 1)]
                p = transport_fate(pops, ref, codes, n_fates, reg=s.reg, n_neighbors=ks,
                                   max_cells=s.max_cells, generator=cpu_g)
                bar.update(1)
            else:
                span = float(tl.times[k1] - tl.times[k])
                p = flow_fate(s.model, cells, float(tl.times[k]), float(tl.times[k1]), ref,
                              codes, n_fates, n_neighbors=ks, n_draws=s.n_draws,
                              stochastic=s.mode == "sde", n_steps=steps_for(span, s.n_steps),
                              generator=g, progress=bar.update)
            out[:, sel] = p.detach().cpu().numpy()
    return out


def fate_readouts(adata: AnnData, groupby: str, readouts: Sequence[int | str], *,
                  key: str = "scflow", from_time=None, to_time=None, mode: str = "auto",
                  fates: Sequence[str] | None = None, n_draws: int | None = None,
                  reg: float | None = None, max_cells: int = 5000, n_steps: int = 100,
                  random_state: int = 0, share: float | None = None) -> dict:
    """The probabilities :func:`scflow.tl.fate` gives with the same options at every
    ``n_neighbors`` of ``readouts`` (integers or ``"auto"``), from one integration (or plan,
    or pull); nothing is written. For a sensitivity check of the labelling rule: how the
    fates move with ``k``, at the cost of one ``tl.fate`` call.

    Parameters
    ----------
    adata, groupby, key, from_time, to_time, mode, fates
        As :func:`scflow.tl.fate`.
    n_draws, reg, max_cells, n_steps, random_state, share
        As :func:`scflow.tl.fate` (``reg`` and ``share`` default to its defaults).
    readouts
        The ``n_neighbors`` to read at: positive integers or ``"auto"``.

    Returns
    -------
    ``{readout: (DataFrame cells x fates, NaN rows for cells not read; the k used)}``,
    each table equal to ``tl.fate``'s ``obsm[key_added + "_probabilities"]`` at that
    ``n_neighbors``.
    """
    from ..fate.pull import DEFAULT_SHARE
    from ._fate import DEFAULT_REG

    s = prepare(adata, groupby, key=key, from_time=from_time, to_time=to_time, mode=mode,
                n_draws=n_draws, reg=DEFAULT_REG if reg is None else reg,
                max_cells=max_cells, n_steps=n_steps, random_state=random_state,
                share=DEFAULT_SHARE if share is None else share, writing=False)
    label = s.rec.timeline.labels[s.k1]
    ks, names = {}, None
    for r in readouts:
        nn = "auto" if isinstance(r, str) and r == "auto" else integer(
            r, "readouts", lower=1, expected="positive integers or 'auto'")
        ref, codes, names, ks[r], _ = reference(s.groups, s.idx == s.k1, s.x,
                                                 groupby=groupby, label=label, fates=fates,
                                                 n_neighbors=nn)
    used = sorted(set(ks.values()))
    prob = probabilities(s, s.x[ref], codes, len(names), used)
    out = {}
    for r, k in ks.items():
        full = np.full((adata.n_obs, len(names)), np.nan)
        full[s.src] = prob[used.index(k)]
        out[r] = (pd.DataFrame(full, index=adata.obs_names, columns=names), k)
    return out
