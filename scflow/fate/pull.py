"""Fates pulled back along the field: the labelled timepoint carried back to earlier ones.

A fate probability is a property of a cell's descendants: the share of them that end in
each fate. Pushing one cell forward (:func:`scflow.fate.flow_fate`) follows one path, and
an ODE gives every cell a single end point, so its fate is one neighbourhood's label.
Pulling goes the other way, as Waddington-OT and moscot pull label mass: every cell of the
labelled timepoint gets a soft label (the share of each fate among its nearest labelled
cells), is carried *backward* along the learned field to the timepoint before, and each
real cell there reads the mean soft label of the ``share`` of pulled-back cells nearest to
it (its candidate descendants, in the number the snapshot holds: a branch that expands
pulls back more cells). Chained timepoint by timepoint through the real cells, it gives a
fate to every earlier cell in one backward sweep.

The read is a nearest-neighbour mean (it adapts to the local density: the early
populations are tight, the late ones spread out, so a fixed bandwidth would blur the first
and sharpen the last); its size is a share of the pulled-back population, chosen on
simulations (``benchmarks/fate_dynamics.py``), never on a fate truth of real data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .._checks import integer, number
from ..flow.integrate import integrate
from ..flow.model import FlowModel

__all__ = ["pull_fate", "knn_mean", "DEFAULT_SHARE"]

#: share of the pulled-back cells read around each cell by default (``tl.fate(mode="pull")``):
#: chosen on simulations (``benchmarks/fate_dynamics.py``: the best mean r over its four
#: LARRY-like cases among 0.05 / 0.1 / 0.2 / 0.3 / 0.5, 0.902 against 0.899 for 0.2, and the
#: best at 5,000 cells per timepoint, the ``max_cells`` subsample a large data set is pulled
#: at: 0.936 against 0.883)
DEFAULT_SHARE = 0.1
_CHUNK = 1024


def knn_mean(queries: Tensor, points: Tensor, values: Tensor, k: int) -> Tensor:
    """Mean of ``values`` over the ``k`` nearest ``points`` of each query.

    Parameters
    ----------
    queries
        ``(n, d)``.
    points
        ``(m, d)``.
    values
        ``(m, f)`` the values carried by the points.
    k
        Neighbours (at most ``m``).

    Returns
    -------
    ``(n, f)`` float64, on ``queries``' device.
    """
    k = min(integer(k, "k", lower=1), len(points))
    points = points.to(queries.device, torch.float32)
    values = values.to(queries.device, torch.float64)
    out = [values[torch.cdist(queries[i: i + _CHUNK].to(torch.float32), points).topk(
        k, dim=1, largest=False).indices].mean(1) for i in range(0, len(queries), _CHUNK)]
    return torch.cat(out) if out else values.new_zeros((0, values.shape[1]))


def pull_fate(model: FlowModel, xs: Sequence[Tensor], ts: Sequence[float], fate_last: Tensor,
              *, share: float = DEFAULT_SHARE, n_steps: int = 100, max_cells: int | None = None,
              generator: torch.Generator | None = None,
              progress: Callable[[int], None] | None = None) -> list[Tensor]:
    """Fate probabilities of the cells of every earlier population, pulled back along the
    field from the last one.

    Parameters
    ----------
    model
        The trained field (its velocity is integrated backward in time, an ODE).
    xs
        Populations at the model times ``ts`` (increasing), in model coordinates; the last
        is the labelled timepoint (at least two).
    ts
        Their model times.
    fate_last
        ``(len(xs[-1]), n_fates)`` soft labels of the last population (rows summing to 1).
    share
        Share of the pulled-back cells read around each cell (``k = ceil(share * m)`` of the
        ``m`` pulled back, at least 1), in ``(0, 1]``.
    n_steps
        Euler steps per unit of model time (at least ``n_steps`` per interval).
    max_cells
        Cells pulled back from each population at most (a uniform subsample, drawn with
        ``generator``; every cell still gets its fate); ``None``: all.
    generator
        Random generator of the subsampling (CPU).
    progress
        A callable ``progress(n)`` told of each finished interval, or ``None``.

    Returns
    -------
    Fate probabilities of every cell of ``xs[0]``, ..., ``xs[-2]`` (a list, float64, rows
    summing to 1).
    """
    if len(xs) < 2 or len(ts) != len(xs):
        raise ValueError(f"pull fates need at least two populations and one time each, got "
                         f"{len(xs)} populations and {len(ts)} times")
    if any(float(b) <= float(a) for a, b in zip(ts[:-1], ts[1:], strict=True)):
        raise ValueError(f"ts must increase, got {list(ts)}")
    share = number(share, "share", lower=0, strict=True)
    if share > 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if len(fate_last) != len(xs[-1]):
        raise ValueError(f"fate_last has {len(fate_last)} rows for {len(xs[-1])} cells")
    n_steps = integer(n_steps, "n_steps", lower=1)
    if max_cells is not None:
        max_cells = integer(max_cells, "max_cells", lower=2)
    dev = model.device
    y = xs[-1].to(dev, torch.float32)
    f = fate_last.to(dev, torch.float64)
    y, f = _subsample(y, f, max_cells, generator)
    out: list[Tensor] = [None] * (len(xs) - 1)  # type: ignore[list-item]
    for m in range(len(xs) - 2, -1, -1):
        span = float(ts[m + 1]) - float(ts[m])
        steps = max(n_steps, int(round(n_steps * span)))
        z = integrate(model, y, float(ts[m + 1]), float(ts[m]), n_steps=steps,
                      batch_size=_CHUNK * 16)
        bad = ~torch.isfinite(z).all(1)
        if bool(bad.any()):  # nearest neighbours of NaN points would read as plausible fates
            raise ValueError(f"pull_fate: {int(bad.sum())} of {len(z)} pulled-back points are "
                             f"not finite (NaN or inf): the field diverges between model "
                             f"times {float(ts[m]):g} and {float(ts[m + 1]):g}")
        x = xs[m].to(dev, torch.float32)
        k = max(1, int(-(-share * len(z) // 1)))
        out[m] = knn_mean(x, z, f, k)
        y, f = _subsample(x, out[m], max_cells, generator)
        if progress is not None:
            progress(1)
    return out


def _subsample(x: Tensor, f: Tensor, n: int | None, generator: torch.Generator | None
               ) -> tuple[Tensor, Tensor]:
    if n is None or len(x) <= n:
        return x, f
    keep = torch.randperm(len(x), generator=generator)[:n].to(x.device)
    return x[keep], f[keep]
