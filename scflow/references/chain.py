"""The no-network roll-out reference: the first timepoint carried by chained exact OT plans.

The cells of the first timepoint are carried forward one timepoint at a time: the exact
OT plan (squared Euclidean cost, uniform weights) from the current cloud to the real cells
of the next timepoint, and each point moved to its barycentric projection (the mean of the
cells the plan sends it to). No network is trained. On the train-on-all roll-out protocol
this reference is scored on the cells its plans were solved on, as every method there is:
it shows how low a score a fit to the training cells reaches without predicting anything
(the measured figures are in BENCHMARKS.md's roll-out tables).

In the hold-one-out variant the held-out timepoint ``k`` is left out of the chain (the
cloud at ``k - 1`` is carried straight to ``k + 1``) and the prediction is the straight line
from each point at ``k - 1`` to its image at ``k + 1``, evaluated at ``k``'s time.

:func:`carry_first_cells` draws instead of averaging: one cell per timepoint from each
plan's conditional, so that the cloud carried to a timepoint is a sample of its cells and
a static method can start from it (``t_0`` carried, not the observed cells restarted).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..couplings import ExactOT, TimeCourseCoupling, sample_trajectories
from ..flow.timecourse import TimeCourse

__all__ = ["chain_images", "static_chain_predict", "carry_first_cells"]


def _step(x: Tensor, target: Tensor) -> Tensor:
    """Barycentric projection of the exact OT plan from ``x`` to ``target`` (float64)."""
    plan = ExactOT().plan(x, target)
    return (plan @ target) / plan.sum(1, keepdim=True)


def chain_images(x0: Tensor, targets: Sequence[Tensor]) -> list[Tensor]:
    """Carry ``x0`` through ``targets`` by chained exact OT plans and barycentric projection.

    Step ``r`` solves the exact OT plan (squared Euclidean cost, uniform weights) from the
    current points to the cells of ``targets[r]`` and moves each point to the plan-weighted
    mean of the cells it is sent to.

    Parameters
    ----------
    x0
        ``(n, d)`` starting cells.
    targets
        Cells of each later timepoint, ``(n_r, d)`` tensors in time order (at least one).

    Returns
    -------
    ``len(targets)`` tensors ``(n, d)``: the points after each step (dtype and device of
    ``x0``).
    """
    if len(targets) < 1:
        raise ValueError("targets must hold at least one timepoint")
    images, x = [], x0.double()
    for target in targets:
        x = _step(x, target.to(x0.device).double())
        images.append(x.to(x0.dtype))
    return images


def static_chain_predict(tc: TimeCourse, k: int, *, holdout: int | None = None,
                         start: int = 0) -> Tensor:
    """The chained-plan reference at timepoint ``k``, from the cells of timepoint ``start``.

    Parameters
    ----------
    tc
        The time course.
    k
        Timepoint index to predict (after ``start``).
    holdout
        A timepoint index left out of the chain. ``None``: every timepoint is kept and the
        prediction is the image at ``k`` (train-on-all roll-out). ``holdout == k``: ``k``
        must be interior; each point's positions at ``k - 1`` and ``k + 1``, carried through
        the chain without ``k``, are joined by a straight line, evaluated at ``k``'s model
        time. Another ``holdout``: the image at ``k`` through the chain without it.
    start
        The timepoint whose cells are carried (default the first: the roll-out protocol;
        ``k - 1`` with ``holdout=k`` is the leave-one-out form, the barycentric counterpart
        of ``static_ot``).

    Returns
    -------
    ``(n_start, d)`` predicted cells at ``k``, one per cell of timepoint ``start`` (dtype and
    device of those cells).
    """
    n = tc.n_timepoints
    if isinstance(k, bool) or not 0 <= int(start) < int(k) < n:
        raise ValueError(f"k must be a timepoint index in {int(start) + 1}..{n - 1} (after "
                         f"start={start}), got {k!r}")
    k, start = int(k), int(start)
    if holdout is not None:
        holdout = int(holdout)
        if not start < holdout < n:
            raise ValueError(f"holdout must be a timepoint index in {start + 1}..{n - 1} or "
                             f"None, got {holdout!r}")
    keep = [r for r in range(start, n) if r != holdout]
    if holdout is None or holdout != k:
        return chain_images(tc.xs[start], [tc.xs[r] for r in keep[1:keep.index(k) + 1]])[-1]
    if k == n - 1:
        raise ValueError(f"holdout={k} is the last timepoint: the chained-plan reference "
                         "interpolates between neighbours and has none on the right")
    steps = chain_images(tc.xs[start], [tc.xs[r] for r in keep[1:keep.index(k + 1) + 1]])
    before = tc.xs[start] if k - 1 == start else steps[-2]
    after = steps[-1]
    t0, t, t1 = (float(tc.times[r]) for r in (k - 1, k, k + 1))
    s = (t - t0) / (t1 - t0)
    return (1 - s) * before + s * after


def carry_first_cells(tc: TimeCourse, to: int, *, holdout: int | None = None,
                      random_state: int = 0) -> Tensor:
    """The cells of the first timepoint carried to timepoint ``to`` by chained plan draws.

    Each first-timepoint cell draws one cell at every kept timepoint up to ``to`` from the
    conditional of the exact plan of each step (the draws of ``static_spline``); the cells
    drawn at ``to`` are returned. Since every plan has the timepoints' uniform marginals,
    the result is a sample of ``len(tc.xs[0])`` cells of timepoint ``to``, reached from
    ``t_0``.

    Parameters
    ----------
    tc
        The time course.
    to
        A kept timepoint index.
    holdout
        A timepoint index left out of the chain (it may not be ``to``).
    random_state
        Seed of the draws.

    Returns
    -------
    ``(n_0, d)`` cells of timepoint ``to``.
    """
    keep = [r for r in range(tc.n_timepoints) if r != holdout]
    if to not in keep:
        raise ValueError(f"to must be a kept timepoint index {keep}, got {to!r}")
    if to == 0:
        return tc.xs[0]
    xs = [tc.xs[r] for r in keep[: keep.index(to) + 1]]
    plans = TimeCourseCoupling(ExactOT()).plans(xs)
    g = torch.Generator(device=plans[0].device).manual_seed(int(random_state))
    idx = sample_trajectories(plans, start=torch.arange(len(xs[0]), device=plans[0].device),
                              generator=g)
    return xs[-1][idx[:, -1].to(xs[-1].device)]
