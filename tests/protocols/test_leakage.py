"""No leakage: the held-out timepoint's cells never reach a prediction.

Each protocol runs twice on the same time course, once as it is and once with the held-out
timepoint's cells replaced by noise far from every other cell; every prediction of every
method (neural and static), captured where the protocol scores it, must be the same for a
fixed seed, bit for bit. The time courses are built unscaled (``whiten=False``): the scaler of the
published protocol is fitted on all cells, held-out ones included, which is a separate,
documented choice.
"""

from __future__ import annotations

import pytest
import torch
from factories import blobs

import scflow.protocols.leave_one_out as loo
import scflow.protocols.rollout as rollout
from scflow.flow.timecourse import TimeCourse
from scflow.methods import get, names

NEURAL_METHODS = names("neural")
#: deterministic static predictions from the neighbours of the held-out timepoint
PAIR_METHODS = [m for m in names("static", shape="pair") if get(m).deterministic]

FAST = {"n_steps": 15, "batch_size": 16, "hidden": (16, 16), "progress": False}
METHODS = names()  # every registered method, static_chain included


def _course(seed: int = 0) -> TimeCourse:
    """Four small 2-D blobs on a bend, unequal sizes (so chained plans split mass)."""
    return blobs([[0.0, 0.0], [1.5, 1.0], [3.0, 1.2], [4.0, 0.0]], [30, 24, 28, 26],
                 scale=0.3, seed=seed)


def _noised(tc: TimeCourse, k: int) -> TimeCourse:
    """``tc`` with the cells of timepoint ``k`` replaced by far-away noise (same count)."""
    g = torch.Generator().manual_seed(123)
    noise = 40.0 + 10.0 * torch.randn(tc.xs[k].shape, generator=g, dtype=tc.xs[k].dtype)
    xs = [noise if r == k else x for r, x in enumerate(tc.xs)]
    return TimeCourse(xs, tc.times, tc.labels, tc.values, tc.mean, tc.scale)


def _capture(monkeypatch, module, name: str) -> list:
    """Record every prediction (points and weights) the protocol scores."""
    seen: list = []

    def scores(pred, real, weights=None, *, with_mmd=True, n_boot=0):
        seen.append((pred.detach().cpu().clone(),
                     None if weights is None else weights.detach().cpu().clone()))
        return {"w1": 0.0, "w2": 0.0, **({"mmd": 0.0} if with_mmd else {})}

    monkeypatch.setattr(module, name, scores)
    return seen


def _assert_same(a: list, b: list) -> None:
    assert len(a) == len(b) > 0
    for (pa, wa), (pb, wb) in zip(a, b, strict=True):
        assert torch.equal(pa, pb)
        if wa is None:
            assert wb is None
        else:
            assert torch.equal(wa, wb)


@pytest.mark.parametrize("k", [1, 2])
def test_leave_one_out_never_reads_the_held_out_cells(monkeypatch, k):
    tc = _course()
    seen = _capture(monkeypatch, loo, "scores")
    loo.leave_one_out_tc(tc, METHODS, seeds=[0], holdouts=[k], n_euler=10, device="cpu",
                         **FAST)
    clean = list(seen)
    seen.clear()
    loo.leave_one_out_tc(_noised(tc, k), METHODS, seeds=[0], holdouts=[k], n_euler=10,
                         device="cpu", **FAST)
    assert len(clean) == len(METHODS)  # one prediction per method
    _assert_same(clean, seen)


@pytest.mark.parametrize("k", [1, 3])  # interior, and the last one (extrapolation)
def test_rollout_holdout_never_reads_the_held_out_cells(monkeypatch, k):
    tc = _course(1)
    seen = _capture(monkeypatch, rollout, "_score")
    methods = METHODS
    rollout.rollout_tc(tc, methods, seeds=[0], holdouts=[k], n_euler=10, device="cpu",
                       **FAST)
    clean = list(seen)
    seen.clear()
    rollout.rollout_tc(_noised(tc, k), methods, seeds=[0], holdouts=[k], n_euler=10,
                       device="cpu", **FAST)
    # the pair methods and the chain need a right neighbour: none at the last timepoint
    n_pair = 0 if k == tc.n_timepoints - 1 else len(PAIR_METHODS) + 1  # and static_chain
    assert len(clean) == len(NEURAL_METHODS) + 1 + n_pair
    _assert_same(clean, seen)


def test_the_check_catches_a_leak(monkeypatch):
    """The same comparison fails when a prediction does read the held-out cells."""
    tc = _course()
    seen = _capture(monkeypatch, loo, "scores")
    real_predict = loo.static_predict

    def leaky(method, tc_, t, **kwargs):
        pts, w = real_predict(method, tc_, t, **kwargs)
        return pts + 1e-3 * tc_.xs[kwargs["holdout"]].mean(), w

    monkeypatch.setattr(loo, "static_predict", leaky)
    loo.leave_one_out_tc(tc, ["static_ot"], seeds=[0], holdouts=[1])
    clean = list(seen)
    seen.clear()
    loo.leave_one_out_tc(_noised(tc, 1), ["static_ot"], seeds=[0], holdouts=[1])
    with pytest.raises(AssertionError):
        _assert_same(clean, seen)
