"""Couplings: exact recovery of permutations, marginals, convergence reports, sampling."""

from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest
import torch

from scflow import couplings as C


def _cloud(n, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("n,seed", [(7, 0), (50, 1), (300, 2)])
def test_exact_plan_of_permuted_copy_recovers_permutation(n, seed):
    x = _cloud(n, seed=seed)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    plan = C.ExactOT().plan(x, x[perm])
    # y = x[perm]: point i of x goes to the j with perm[j] = i
    assert torch.equal(plan.argmax(1), torch.argsort(perm))
    torch.testing.assert_close(plan.sum(1), torch.full((n,), 1 / n, dtype=x.dtype))
    assert int((plan > 0).sum()) == n


@pytest.mark.parametrize("n,m", [(40, 60), (60, 40)])
def test_exact_plan_marginals_and_optimality(n, m):
    x, y = _cloud(n, seed=3), _cloud(m, seed=4) + 1
    plan = C.ExactOT().plan(x, y)
    torch.testing.assert_close(plan.sum(1), torch.full((n,), 1 / n, dtype=x.dtype))
    torch.testing.assert_close(plan.sum(0), torch.full((m,), 1 / m, dtype=x.dtype))
    cost = C.squared_distances(x, y)
    ref = ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), cost.numpy())
    assert float((plan * cost).sum()) == pytest.approx(ref, rel=1e-9)
    indep = C.Independent().plan(x, y)
    assert float((plan * cost).sum()) < float((indep * cost).sum())


def test_entropic_plan_marginals_and_limits():
    x, y = _cloud(80, seed=5), _cloud(100, seed=6)
    plan = C.EntropicOT(reg=0.5).plan(x, y)
    torch.testing.assert_close(plan.sum(1), torch.full((80,), 1 / 80, dtype=x.dtype),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(plan.sum(0), torch.full((100,), 1 / 100, dtype=x.dtype),
                               atol=1e-6, rtol=0)
    # large reg -> independent coupling; small reg -> exact permutation
    big = C.EntropicOT(reg=1e4).plan(x, y)
    torch.testing.assert_close(big, torch.full_like(big, 1 / 8000), atol=1e-6, rtol=1e-2)
    perm = torch.randperm(80, generator=torch.Generator().manual_seed(0))
    small = C.EntropicOT(reg=1e-3, num_iter_max=20000).plan(x, x[perm])
    assert torch.equal(small.argmax(1), torch.argsort(perm))


def test_entropic_non_convergence_is_reported():
    x, y = _cloud(60, seed=7), _cloud(60, seed=8) + 2
    with pytest.warns(C.ConvergenceWarning, match="marginal error"):
        C.EntropicOT(reg=1e-3, num_iter_max=3).plan(x, y)


def test_exact_non_convergence_is_reported():
    x, y = _cloud(200, seed=9), _cloud(200, seed=10)
    with pytest.warns(C.ConvergenceWarning, match="optimality"):
        C.ExactOT(num_iter_max=5).plan(x, y)


def test_unusable_plan_raises_not_uniform():
    with pytest.raises(C.ConvergenceError):
        C.check_plan(torch.tensor([[float("nan"), 0.5]]), "test")
    with pytest.raises(C.ConvergenceError):
        C.check_plan(torch.zeros(2, 2), "test")


def test_unbalanced_plan_discounts_outlier():
    x = _cloud(50, seed=11)
    y = x.clone()
    x_out = torch.cat([x, torch.full((1, 4), 30.0, dtype=x.dtype)])
    bal = C.EntropicOT(reg=0.1).plan(x_out, y)
    unb = C.UnbalancedOT(reg=0.1, reg_m=0.5).plan(x_out, y)
    # the far outlier must ship its whole mass in the balanced plan, almost none unbalanced
    assert float(bal[-1].sum()) == pytest.approx(1 / 51, rel=1e-3)
    assert float(unb[-1].sum()) < 0.05 * float(unb[:-1].sum(1).mean())
    with pytest.raises(ValueError, match="reg_m"):
        C.UnbalancedOT(reg=0.1, reg_m=-1)


def test_discrete_plan_draws_follow_the_plan():
    g = torch.Generator().manual_seed(0)
    plan = torch.rand(4, 5, generator=g, dtype=torch.float64)
    plan[1, 2] = 0.0
    dp = C.DiscretePlan(plan)
    i, j = dp.sample_pairs(200_000, torch.Generator().manual_seed(1))
    freq = torch.zeros(4, 5, dtype=torch.float64).index_put_((i, j), torch.ones(len(i),
                                                             dtype=torch.float64), accumulate=True)
    freq /= len(i)
    torch.testing.assert_close(freq, plan / plan.sum(), atol=4e-3, rtol=0)
    assert freq[1, 2] == 0
    # conditionals given rows
    rows = torch.full((100_000,), 3)
    cols = dp.sample_given_rows(rows, torch.Generator().manual_seed(2))
    cond = torch.bincount(cols, minlength=5).double() / len(cols)
    torch.testing.assert_close(cond, plan[3] / plan[3].sum(), atol=5e-3, rtol=0)
    torch.testing.assert_close(dp.row_marginal(), plan.sum(1) / plan.sum())
    torch.testing.assert_close(dp.col_marginal(), plan.sum(0) / plan.sum())


def test_discrete_plan_rejects_empty_rows_and_bad_plans():
    plan = torch.tensor([[0.5, 0.5], [0.0, 0.0]])
    with pytest.raises(ValueError, match="no mass"):
        C.DiscretePlan(plan).sample_given_rows(torch.tensor([1]))
    with pytest.raises(ValueError, match="non-negative"):
        C.DiscretePlan(torch.tensor([[-1.0, 2.0]]))


def test_chained_coupling_recovers_composed_permutations():
    n = 60
    x0 = _cloud(n, seed=12)
    g = torch.Generator().manual_seed(3)
    p1, p2 = torch.randperm(n, generator=g), torch.randperm(n, generator=g)
    x1 = x0[p1]  # x1[j] = x0[p1[j]]
    x2 = x1[p2]
    plans = [C.ExactOT().discrete_plan(x0, x1), C.ExactOT().discrete_plan(x1, x2)]
    traj = C.sample_trajectories(plans, start=torch.arange(n))
    assert traj.shape == (n, 3)
    torch.testing.assert_close(x1[traj[:, 1]], x0)
    torch.testing.assert_close(x2[traj[:, 2]], x0)
    drawn = C.sample_trajectories(plans, 500, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(x2[drawn[:, 2]], x0[drawn[:, 0]])
    with pytest.raises(ValueError, match="chain"):
        C.sample_trajectories([plans[0], C.ExactOT().discrete_plan(x0[:5], x1)], 3)


def test_sample_is_repeatable_with_generator_and_independent_is_uniform():
    x, y = _cloud(30, seed=13), _cloud(40, seed=14)
    a = C.ExactOT().sample(x, y, 100, torch.Generator().manual_seed(5))
    b = C.ExactOT().sample(x, y, 100, torch.Generator().manual_seed(5))
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    i, j = C.Independent().sample(x, y, 40_000, torch.Generator().manual_seed(6))
    assert torch.bincount(j, minlength=40).double().div(40_000).sub(1 / 40).abs().max() < 0.01


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="same number of dims"):
        C.ExactOT().plan(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="reg"):
        C.EntropicOT(reg=0)
    with pytest.raises(ValueError, match="2-D"):
        C.Independent().plan(torch.zeros(3), torch.zeros(3, 1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_plans_stay_on_device():
    x, y = _cloud(50).cuda(), _cloud(60, seed=1).cuda()
    for c in (C.ExactOT(), C.EntropicOT(0.5), C.UnbalancedOT(0.5, 1.0), C.Independent()):
        assert c.plan(x, y).device.type == "cuda"
        i, j = c.sample(x, y, 10, torch.Generator(device="cuda").manual_seed(0))
        assert i.device.type == "cuda" and j.device.type == "cuda"


def test_no_warnings_on_easy_problems():
    x, y = _cloud(50, seed=15), _cloud(50, seed=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        C.ExactOT().plan(x, y)
        C.EntropicOT(0.5).plan(x, y)


def test_time_course_coupling_through_a_middle_timepoint_recovers_permutations():
    n = 40
    x0 = _cloud(n, seed=21)
    g = torch.Generator().manual_seed(5)
    perms = [torch.randperm(n, generator=g) for _ in range(3)]
    xs = [x0]
    for p in perms:
        xs.append(xs[-1][p])  # every timepoint a permuted copy of the first
    coupling = C.TimeCourseCoupling(C.ExactOT())
    start = torch.arange(n)
    traj = coupling.sample(xs, at=2, start=start, generator=torch.Generator().manual_seed(0))
    assert traj.shape == (n, 4)
    torch.testing.assert_close(traj[:, 2], start)  # passes through the given cells
    for k, x in enumerate(xs):  # backward and forward, every knot is the same cell
        torch.testing.assert_close(x[traj[:, k]], xs[2])
    drawn = coupling.sample(xs, 200, generator=torch.Generator().manual_seed(1))
    for k, x in enumerate(xs):
        torch.testing.assert_close(x[drawn[:, k]], x0[drawn[:, 0]])
    # the two-timepoint case is the pair coupling itself
    pair = coupling.sample(xs[:2], at=0, start=start)
    i, j = C.ExactOT().discrete_plan(xs[0], xs[1]).sample_pairs(5)
    torch.testing.assert_close(xs[1][pair[:, 1]], xs[0])
    assert i.shape == j.shape == (5,)
    with pytest.raises(ValueError, match="start"):
        coupling.sample(xs, 5, at=1)
    with pytest.raises(ValueError, match="coupling"):
        C.TimeCourseCoupling("exact")
    with pytest.raises(ValueError, match="at must"):
        C.sample_trajectories_through(coupling.plans(xs), 7, start)


def test_transposed_plan_draws_backwards():
    x0, x1 = _cloud(30, seed=2), _cloud(45, seed=3)
    plan = C.ExactOT().plan(x0, x1)
    back = C.transpose_plan(C.DiscretePlan(plan))
    assert back.shape == (45, 30)
    torch.testing.assert_close(back.row_marginal(), plan.sum(0).double() / plan.sum())
    torch.testing.assert_close(back.col_marginal(), plan.sum(1).double() / plan.sum())


def test_partial_plan_of_equal_masses_is_the_exact_plan():
    x, y = _cloud(30, seed=5), _cloud(30, seed=6) + 1
    partial = C.PartialOT().plan(x, y)
    exact = C.ExactOT().plan(x, y)
    cost = C.squared_distances(x, y)
    assert float((partial * cost).sum()) == pytest.approx(float((exact * cost).sum()),
                                                          rel=1e-9)
    torch.testing.assert_close(partial.sum(1), torch.full((30,), 1 / 30, dtype=x.dtype))


@pytest.mark.parametrize("flip", [False, True])
def test_partial_plan_matches_the_smaller_population_to_its_nearest_cells(flip):
    # 3 cells near the origin; 6 cells: 3 copies of them shifted by 0.01, 3 far away
    x = _cloud(3, d=2, seed=7)
    far = _cloud(3, d=2, seed=8) + 50.0
    y = torch.cat([x + 0.01, far])
    a, b = (y, x) if flip else (x, y)
    plan = C.PartialOT().plan(a, b)
    masses = C.PartialOT().masses(a, b)
    # mass per cell: the larger population (6 cells) weighs one
    torch.testing.assert_close(masses[1 if not flip else 0], torch.full((6,), 1 / 6,
                                                                        dtype=x.dtype))
    torch.testing.assert_close(masses[0 if not flip else 1], torch.full((3,), 1 / 6,
                                                                        dtype=x.dtype))
    near = plan[:3, :3] if not flip else plan[:3, :3].T
    torch.testing.assert_close(near, torch.eye(3, dtype=x.dtype) / 6)  # each to its copy
    assert float(plan.sum()) == pytest.approx(0.5)
    far_block = plan[:, 3:] if not flip else plan[3:, :]
    assert float(far_block.sum()) == 0.0  # the far cells are born (or die), not moved
    # given masses override the counts: equal sizes move everything
    full = C.PartialOT(mass=(1.0, 1.0)).plan(a, b)
    assert float(full.sum()) == pytest.approx(1.0)


def test_partial_ot_rejects_bad_masses():
    with pytest.raises(ValueError, match="mass must be two finite numbers"):
        C.PartialOT(mass=(1.0, -2.0))
    with pytest.raises(ValueError, match="mass must be two finite numbers"):
        C.PartialOT(mass=(1.0,))
    with pytest.raises(ValueError, match="mass must be two finite numbers"):
        C.PartialOT(mass=(True, 1.0))
    with pytest.raises(ValueError, match="mass must be two finite numbers"):
        C.PartialOT(mass=np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="n_dummies"):
        C.PartialOT(n_dummies=0)


def test_partial_ot_takes_numpy_masses():
    """Masses from NumPy (e.g. cell counts of ``obs.value_counts()``) give the same plan
    as the same numbers in Python."""
    x, y = _cloud(4, d=2, seed=1), _cloud(6, d=2, seed=2)
    expected = C.PartialOT(mass=(2.0, 3.0)).plan(x, y)
    for mass in (np.array([2, 3]), (np.int64(2), np.float32(3.0))):
        torch.testing.assert_close(C.PartialOT(mass=mass).plan(x, y), expected)


def test_entropic_scaling_and_log_domain_iterations_give_one_plan(monkeypatch):
    """The fast scaling iterations (used where exp(-cost/reg) cannot underflow) solve the
    same problem as the log-domain ones: the same plan to the solver's tolerance."""
    from scflow import couplings

    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(60, 3, generator=g), torch.randn(70, 3, generator=g) + 0.5
    fast = couplings.EntropicOT(reg=0.2, tol=1e-9).plan(x0, x1)
    monkeypatch.setattr(couplings, "SCALING_SINKHORN_MAX", 0.0)
    slow = couplings.EntropicOT(reg=0.2, tol=1e-9).plan(x0, x1)
    torch.testing.assert_close(fast, slow, atol=1e-7, rtol=1e-4)
    # far beyond the threshold the log domain runs (the kernel would underflow)
    monkeypatch.setattr(couplings, "SCALING_SINKHORN_MAX", 600.0)
    tiny = couplings.EntropicOT(reg=0.02).plan(x0, x1)
    assert torch.isfinite(tiny).all() and float(tiny.sum()) == pytest.approx(1.0, rel=1e-4)
