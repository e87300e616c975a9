"""Fate probabilities on tensors: soft labels, pushes and chained entropic plans."""

from __future__ import annotations

import warnings

import pytest
import torch

from scflow import couplings
from scflow.couplings import ConvergenceWarning
from scflow.fate import core as F


def test_soft_labels_are_neighbour_shares():
    ref = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    codes = torch.tensor([0, 0, 1, 1])
    p = F.soft_labels(torch.tensor([[0.4], [1.6], [9.0]]), ref, codes, 2, k=2)
    torch.testing.assert_close(p, torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]))
    p3 = F.soft_labels(torch.tensor([[0.4]]), ref, codes, 3, k=10)  # k capped at the refs
    torch.testing.assert_close(p3, torch.tensor([[0.5, 0.5, 0.0]]))


def _two_wells(n: int = 200, seed: int = 0):
    """Start cloud at x < 0 (upper half goes up, lower half goes down) and a labelled end."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 2, generator=g, dtype=torch.float64) * 0.3
    x1 = x0 + torch.tensor([3.0, 0.0], dtype=torch.float64)
    x1[:, 1] = torch.where(x0[:, 1] > 0, 2.0, -2.0) + 0.1 * torch.randn(n, generator=g,
                                                                       dtype=torch.float64)
    codes = (x1[:, 1] > 0).long()
    return x0, x1, codes


def test_transport_fate_follows_the_plan():
    x0, x1, codes = _two_wells()
    p = F.transport_fate([x0, x1], x1, codes, 2, reg=0.05, n_neighbors=5)
    torch.testing.assert_close(p.sum(1), torch.ones(len(x0), dtype=p.dtype))
    up = x0[:, 1] > 0.2
    down = x0[:, 1] < -0.2
    assert p[up, 1].mean() > 0.9 and p[down, 0].mean() > 0.9


def test_pull_back_rows_are_the_plan_conditionals():
    """For the anchor cells themselves, pi(y | x) from the potential equals the solved
    plan's normalised row (closed form of the entropic plan: u_i K_ij v_j)."""
    import ot

    x0, x1, _ = _two_wells(80)
    fate_y = torch.eye(80, dtype=torch.float64)  # one fate per target cell: the whole row
    rows = F._pull_back(x0, x1, fate_y, 0.5, 5000)
    plan = ot.sinkhorn(torch.full((80,), 1 / 80, dtype=torch.float64),
                       torch.full((80,), 1 / 80, dtype=torch.float64), ot.dist(x0, x1), 0.5,
                       method="sinkhorn_log", numItermax=5000, stopThr=1e-10)
    torch.testing.assert_close(rows, plan / plan.sum(1, keepdim=True), atol=1e-6, rtol=1e-5)


def test_log_domain_and_scaling_iterations_agree(monkeypatch):
    x0, x1, codes = _two_wells(120)
    fast = F.transport_fate([x0, x1], x1, codes, 2, reg=0.05)
    monkeypatch.setattr(couplings, "SCALING_SINKHORN_MAX", 0.0)  # force the log domain
    slow = F.transport_fate([x0, x1], x1, codes, 2, reg=0.05)
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)


def test_transport_fate_says_when_sinkhorn_stops_early():
    x0, x1, codes = _two_wells(100)
    with pytest.warns(ConvergenceWarning, match="num_iter_max"):
        F.transport_fate([x0, x1], x1, codes, 2, reg=0.01, num_iter_max=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        F.transport_fate([x0, x1], x1, codes, 2, reg=0.5)


def test_flow_fate_draws_need_a_diffusion():
    from scflow.flow.model import FlowModel

    model = FlowModel(2, (8,))
    with pytest.raises(ValueError, match="n_draws=3 needs stochastic=True"):
        F.flow_fate(model, torch.zeros(3, 2), 0.0, 1.0, torch.zeros(2, 2),
                    torch.tensor([0, 1]), 2, n_draws=3)
    with pytest.raises(ValueError, match="at least two populations"):
        F.transport_fate([torch.zeros(3, 2)], torch.zeros(2, 2), torch.tensor([0, 1]), 2)


def test_fate_bias():
    p = torch.tensor([[0.6, 0.2, 0.2], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(F.fate_bias(p, 0, 1), torch.tensor([0.75, 0.5]))


def test_loo_brier_leaves_the_cell_out():
    """Two clusters of three on a line: the two other cells of a cluster predict a cell's
    label exactly (Brier 0); a third neighbour comes from the other cluster (2/9)."""
    ref = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    codes = torch.tensor([0, 0, 0, 1, 1, 1])
    b = F.loo_brier(ref, codes, 2, [1, 2, 3])
    torch.testing.assert_close(b, torch.tensor([0.0, 0.0, 2 / 9], dtype=torch.float64))
    with pytest.raises(ValueError, match="n_neighbors"):
        F.loo_brier(ref, codes, 2, [6])  # only 5 other cells


def _clusters(n: int, flip: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ref = torch.cat([torch.randn(n, 2, generator=g) * 0.5,
                     torch.randn(n, 2, generator=g) * 0.5 + torch.tensor([6.0, 0.0])])
    codes = torch.cat([torch.zeros(n), torch.ones(n)]).long()
    swap = torch.rand(2 * n, generator=g) < flip
    return ref, torch.where(swap, 1 - codes, codes)


def test_select_neighbors_known_answers():
    # clean, separated clusters: every k up to the cluster size is perfect; the smallest wins
    ref, codes = _clusters(100, 0.0)
    k, sel = F.select_neighbors(ref, codes, 2)
    assert k == 3 and sel["brier"][0] == 0.0
    # 20% of labels flipped at random: the best soft label is the cluster's share (0.8), read
    # from as many cells of the cluster as possible, never across clusters
    ref, codes = _clusters(100, 0.2)
    k, sel = F.select_neighbors(ref, codes, 2)
    assert 45 <= k <= 90
    assert sel["brier"][sel["candidates"].index(k)] == min(sel["brier"])
    assert sel["brier"][sel["candidates"].index(180)] > sel["brier"][sel["candidates"].index(k)]
    # labels independent of place: the more cells read, the better, up to the cap
    g = torch.Generator().manual_seed(1)
    noise = (torch.rand(200, generator=g) < 0.5).long()
    k, sel = F.select_neighbors(ref, noise, 2, max_k=50)
    assert k == 45 and max(sel["candidates"]) == 45


def test_select_neighbors_refuses_bad_input():
    ref, codes = _clusters(10, 0.0)
    with pytest.raises(ValueError, match="at least 3 labelled cells"):
        F.select_neighbors(ref[:2], codes[:2], 2)
    with pytest.raises(ValueError, match="no candidate n_neighbors within 1..2"):
        F.select_neighbors(ref, codes, 2, max_k=2)
    with pytest.raises(ValueError, match="candidates must be a positive integer"):
        F.select_neighbors(ref, codes, 2, candidates=[0, 5])
    with pytest.raises(ValueError, match="max_k"):
        F.select_neighbors(ref, codes, 2, max_k=0)


def test_loo_brier_and_soft_labels_match_the_one_hot_reference_with_many_fates():
    """Without a (cells x k x fates) one-hot (a barcode column made it gigabytes), the scores
    and soft labels are those of the one-hot formula, here with 40 fates."""
    g = torch.Generator().manual_seed(3)
    ref = torch.randn(300, 3, generator=g)
    codes = torch.randint(0, 40, (300,), generator=g)
    ks = [1, 3, 7, 20]
    got = F.loo_brier(ref, codes, 40, ks)
    d = torch.cdist(ref.double(), ref.double())
    d.fill_diagonal_(float("inf"))
    nn = d.topk(max(ks), dim=1, largest=False).indices
    onehot = torch.nn.functional.one_hot(codes, 40).double()
    want = torch.stack([((onehot[nn[:, :k]].mean(1) - onehot) ** 2).sum(1).mean() for k in ks])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    points = torch.randn(50, 3, generator=g)
    near = torch.cdist(points, ref).topk(7, dim=1, largest=False).indices
    torch.testing.assert_close(F.soft_labels(points, ref, codes, 40, 7),
                               onehot[near].mean(1).float(), rtol=0, atol=1e-6)
    # with the Dirichlet pseudo-count a: p_f = (count_f + a) / (k + 40 a)
    a = 0.5
    got = F.loo_brier(ref, codes, 40, ks, prior=a)
    want = torch.stack([(((onehot[nn[:, :k]].sum(1) + a) / (k + 40 * a) - onehot) ** 2)
                        .sum(1).mean() for k in ks])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    many = F.soft_labels_many(points, ref, codes, 40, [1, 7, 20])
    for row, k in zip(many, [1, 7, 20], strict=True):
        torch.testing.assert_close(row, F.soft_labels(points, ref, codes, 40, k), rtol=0,
                                   atol=0)
