"""No leakage: the held-out timepoint's cells never reach a prediction.

Each protocol runs twice on the same time course, once as it is and once with the held-out
timepoint's cells replaced by noise far from every other cell; every prediction of every
method (neural and static), captured where the protocol scores it, must be the same for a
fixed seed, bit for bit. Unscaled time courses (``whiten=False``) compare the predictions
as they are scored; whitened ones (``whiten=True``) are built again from the noised cells,
so their scaler (fitted on all cells) and the units scores are given in change: there the
predictions are compared in the representation's units, where a fit that never read the
held-out cells (its scaler fitted on the kept ones) gives the same cells up to the rounding
of the two unit changes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import scflow.protocols.leave_one_out as loo
import scflow.protocols.rollout as rollout
from scflow.flow.timecourse import TimeCourse
from scflow.methods import get, names
from scflow.protocols.selection import nested_leave_one_out, select_method

NEURAL_METHODS = names("neural")
#: deterministic static predictions from the neighbours of the held-out timepoint
PAIR_METHODS = [m for m in names("static", shape="pair") if get(m).deterministic]

FAST = {"n_steps": 15, "batch_size": 16, "hidden": (16, 16), "progress": False}
METHODS = names()  # every registered method, static_chain included


def _cells(seed: int = 0, centres=((0.0, 0.0), (1.5, 1.0), (3.0, 1.2), (4.0, 0.0)),
           sizes=(30, 24, 28, 26)) -> tuple[np.ndarray, np.ndarray]:
    """Small 2-D blobs on a bend, unequal sizes (so chained plans split mass), and their
    timepoints; the second dimension spread less than the first (whitening is not a
    rotation or one scale)."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(c, 0.3, size=(n, 2)) for c, n in zip(centres, sizes,
                                                                       strict=True)])
    return x * [1.0, 0.5] + [3.0, -1.0], np.repeat(np.arange(len(sizes)), sizes)


def _course(seed: int = 0) -> TimeCourse:
    """Four small 2-D blobs on a bend, unscaled."""
    return TimeCourse.from_arrays(*_cells(seed), whiten=False)


def _noised_cells(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """``x`` with the cells of timepoint ``k`` replaced by far-away noise (same count)."""
    rng = np.random.default_rng(123)
    out = x.copy()
    out[labels == k] = rng.normal(40.0, 10.0, size=((labels == k).sum(), x.shape[1]))
    return out


def _rep(seen: list, tc: TimeCourse) -> list:
    """The captured predictions in the representation's units (``tc``'s scaler undone)."""
    return [(torch.as_tensor(tc.inverse_transform(p.double().numpy())), w) for p, w in seen]


def _assert_close(a: list, b: list) -> None:
    """Same cells up to the rounding of float32 unit changes, weights bit for bit."""
    assert len(a) == len(b) > 0
    for (pa, wa), (pb, wb) in zip(a, b, strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-5)
        if wa is None:
            assert wb is None
        else:
            assert torch.equal(wa, wb)


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


@pytest.mark.parametrize("k", [1, 2])
def test_whitened_leave_one_out_never_reads_the_held_out_cells(monkeypatch, k):
    """The scaler is fitted on the kept cells: far-away noise in place of ``k``'s cells
    changes no prediction of any method (in the representation's units)."""
    x, labels = _cells(2)
    runs = []
    for cells in (x, _noised_cells(x, labels, k)):
        tc = TimeCourse.from_arrays(cells, labels, whiten=True)
        seen = _capture(monkeypatch, loo, "scores")
        loo.leave_one_out_tc(tc, METHODS, seeds=[0], holdouts=[k], n_euler=10,
                             device="cpu", **FAST)
        runs.append(_rep(seen, tc))
    assert len(runs[0]) == len(METHODS)
    _assert_close(*runs)


@pytest.mark.parametrize("k", [1, 3])
def test_whitened_rollout_holdout_never_reads_the_held_out_cells(monkeypatch, k):
    x, labels = _cells(3)
    runs = []
    for cells in (x, _noised_cells(x, labels, k)):
        tc = TimeCourse.from_arrays(cells, labels, whiten=True)
        seen = _capture(monkeypatch, rollout, "_score")
        rollout.rollout_tc(tc, METHODS, seeds=[0], holdouts=[k], n_euler=10, device="cpu",
                           **FAST)
        runs.append(_rep(seen, tc))
    _assert_close(*runs)


def test_whitened_nested_selection_never_reads_the_held_out_cells(monkeypatch):
    """Inner scores (in the units of a scaler fitted on the kept cells) are the same bit for
    bit; the outer predictions of the chosen candidate too, in the representation's units."""
    x, labels = _cells(4, centres=[(0, 0), (1.5, 1.0), (3.0, 1.2), (4.0, 0.0), (4.5, -1.5)],
                       sizes=(30, 24, 28, 26, 22))
    k = 2
    cands = ["static_ot", "static_mean_spline", {"method": "otcfm", "n_steps": 15,
                                                 "batch_size": 16, "hidden": (16, 16)}]
    courses = [TimeCourse.from_arrays(cells, labels, whiten=True)
               for cells in (x, _noised_cells(x, labels, k))]
    inner = [select_method(tc, cands, holdout=k, device="cpu", progress=False).scores
             for tc in courses]
    outer = []
    for tc in courses:
        seen = _capture(monkeypatch, loo, "scores")
        nested_leave_one_out(tc, cands, seeds=[0], holdouts=[k], device="cpu",
                             progress=False)
        outer.append(_rep(seen[-1:], tc))  # the last: the outer score of the choice
    for col in ("w1", "w2", "mmd", "floor"):
        np.testing.assert_array_equal(inner[0][col].to_numpy(), inner[1][col].to_numpy())
    _assert_close(*outer)
