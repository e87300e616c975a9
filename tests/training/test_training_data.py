"""Training data: pairs and chains behind one interface, and the plan cache."""

from __future__ import annotations

import numpy as np
import torch

import scflow
from scflow.couplings import PlanCache
from scflow.protocols import leave_one_out_tc, rollout_tc
from scflow.training.data import ChainData, PairData
from scflow.training.loop import training_data


def test_pairs_and_chains_share_one_interface(uneven_course):
    pairs = training_data(uneven_course, "otcfm", 0.1, "global", 1)
    chain = training_data(uneven_course, "mmfm", 0.1, "global", 1)
    assert isinstance(pairs, PairData) and isinstance(chain, ChainData)
    assert len(pairs.plans()) == len(chain.plans()) == 2  # 0->2 bridged, 2->3
    assert pairs.plans()[0].shape == chain.plans()[0].shape == (40, 50)
    assert training_data(uneven_course, "icfm", 0.1, "global", None).plans() == [None] * 3
    g = torch.Generator().manual_seed(0)
    for data, score in ((pairs, False), (chain, True)):
        t, xt, ut, eps, sig, _ = data.batch(16, g)
        assert t.shape == (32,) and xt.shape == ut.shape == (32, 2)
        assert (eps is not None) == score
        assert float(t.min()) >= 0 and float(t.max()) <= 3


def test_chain_batch_is_the_spline_paths_sample(uneven_course):
    """The chain's x_t, u_t are SplinePath.sample_xt / target_velocity of the knots drawn."""
    chain = training_data(uneven_course, "mmfm", 0.2, "global", None)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    t, xt, ut, eps, _, _ = chain.batch(8, g1)
    idx = scflow.couplings.sample_trajectories(chain.plans(), 24, generator=g2)
    knots = chain.knots(idx)
    torch.testing.assert_close(xt, chain.path.sample_xt(t, knots, chain.times, eps))
    torch.testing.assert_close(ut, chain.path.target_velocity(t, knots, chain.times, eps))


def test_plan_cache_solves_each_plan_once_and_changes_nothing(uneven_course):
    kwargs = dict(n_steps=15, batch_size=16, progress=False)
    cache = PlanCache()
    cached = [scflow.fit_flow(uneven_course, m, holdout=1, random_state=s, plan_cache=cache,
                              **kwargs) for m in ("otcfm", "mmfm") for s in (0, 1)]
    assert (cache.solved, cache.reused) == (2, 6)  # 0->2 and 2->3, exact OT, shared
    fresh = [scflow.fit_flow(uneven_course, m, holdout=1, random_state=s, **kwargs)
             for m in ("otcfm", "mmfm") for s in (0, 1)]
    for a, b in zip(cached, fresh, strict=True):
        np.testing.assert_array_equal(a.meta["loss"], b.meta["loss"])


def test_protocols_share_one_cache_across_seeds_and_methods(uneven_course):
    cache = PlanCache()
    df = leave_one_out_tc(uneven_course, ["otcfm", "mmfm", "static_spline"], seeds=(0, 1, 2),
                          n_steps=10, plan_cache=cache)
    # held out 1: 0->2, 2->3; held out 2: 0->1, 1->3 (exact OT only); every fit and draw
    # looks up its 2 plans: 2 held-out times x 3 methods x 3 seeds x 2 plans, and static OT,
    # the reference of the paired differences, its bridged plan once per held-out time
    assert cache.solved == 4 and cache.reused == 2 * 3 * 3 * 2 - 4 + 2
    again = leave_one_out_tc(uneven_course, ["otcfm", "mmfm", "static_spline"],
                             seeds=(0, 1, 2), n_steps=10, plan_cache=cache)
    assert cache.solved == 4
    cols = ["w1", "w2", "mmd"]
    np.testing.assert_array_equal(df[cols].to_numpy(), again[cols].to_numpy())
    before = cache.solved
    rollout_tc(uneven_course, ["otcfm"], seeds=(0,), holdouts=[1], n_steps=5,
               plan_cache=cache)
    assert cache.solved == before  # the same intervals: nothing new to solve


def test_static_ot_reuses_the_plan_otcfm_solved(uneven_course):
    from scflow.references import fraction, static_ot_interpolant

    cache = PlanCache()
    df = leave_one_out_tc(uneven_course, ["otcfm", "static_ot", "static_mean_spline"],
                          seeds=(0, 1), holdouts=[1], n_steps=5, plan_cache=cache)
    assert cache.solved == 2  # 0->2 (otcfm, static_ot, static_mean_spline) and 2->3
    pts, w = static_ot_interpolant(uneven_course.xs[0], uneven_course.xs[2],
                                   fraction(uneven_course, 1))  # solved afresh
    cached = PlanCache()
    pts2, w2 = static_ot_interpolant(uneven_course.xs[0], uneven_course.xs[2],
                                     fraction(uneven_course, 1), plan_cache=cached)
    torch.testing.assert_close(pts, pts2, rtol=0, atol=0)
    torch.testing.assert_close(w, w2, rtol=0, atol=0)
    assert df.loc[df.method == "static_ot", "w1"].nunique() == 1
