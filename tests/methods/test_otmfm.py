"""OT-MFM through the one loop: OT-CFM's draws on straight interpolants, learned bends that
stay on the data, the held-out cells never read."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import scflow
from scflow.flow.timecourse import TimeCourse
from scflow.methods import otmfm as mod
from scflow.protocols import leave_one_out_tc, rollout_tc
from scflow.training.loop import training_data

FAST = {"n_steps": 40, "batch_size": 32, "hidden": (16, 16), "progress": False}


def _arc(seed: int = 0, n: int = 120, whiten: bool = True) -> TimeCourse:
    """Cells on a circle of radius 3, timepoint ``k`` on the quarter ``[k pi / 2, (k + 1) pi
    / 2]``, a little noise: OT pairs between two quarters are chords that cut through the
    empty inside, while the cells of both ends cover the arc between them."""
    rng = np.random.default_rng(seed)
    xs, days = [], []
    for k in range(4):
        a = rng.uniform(k * math.pi / 2, (k + 1) * math.pi / 2, n)
        xs.append(np.c_[np.cos(a), np.sin(a)] * 3 + rng.normal(0, 0.1, (n, 2)))
        days.append(np.full(n, k))
    return TimeCourse.from_arrays(np.concatenate(xs), np.concatenate(days), whiten=whiten)


def test_registered_with_its_capabilities():
    m = scflow.methods.get("otmfm")
    assert m.neural and not m.has_score and not m.learns_growth and not m.takes_mass
    assert m.default_sigma == scflow.methods.get("otcfm").default_sigma
    assert "otmfm" in scflow.methods.names("neural")
    assert "otmfm" in scflow.methods.default_methods("leave_one_out")
    assert "otmfm" in scflow.methods.fit_candidates()


def test_straight_interpolants_draw_otcfm_batches_bit_for_bit(uneven_course, monkeypatch):
    """With the interpolant replaced by none (straight lines), every step's (t, x_t, u_t)
    equals OT-CFM's for the same generator, global and minibatch plans, held-out or not."""
    monkeypatch.setattr(mod, "interpolant_for", lambda *a, **k: (None, 1.0))
    for coupling in ("global", "minibatch"):
        for holdout in (None, 1):
            ours = training_data(uneven_course, "otmfm", coupling=coupling, holdout=holdout)
            ref = training_data(uneven_course, "otcfm", coupling=coupling, holdout=holdout)
            for step in range(3):
                g1 = torch.Generator().manual_seed(step)
                g2 = torch.Generator().manual_seed(step)
                a, b = ours.batch(16, g1), ref.batch(16, g2)
                for x, y in zip(a[:3], b[:3], strict=True):
                    assert torch.equal(x, y)


def test_fit_with_straight_interpolants_is_otcfm(uneven_course, monkeypatch):
    monkeypatch.setattr(mod, "interpolant_for", lambda *a, **k: (None, 1.0))
    m1 = scflow.fit_flow(uneven_course, "otmfm", random_state=3, **FAST)
    m2 = scflow.fit_flow(uneven_course, "otcfm", random_state=3, **FAST)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p, q)


def test_the_interpolant_bends_onto_the_arc():
    """Between the first two quarters the learned interpolant's midpoints lie nearer the
    circle than the chords' (0.65 against 0.98 with the defaults: the paper's RBF metric and
    learning rate bend gently), and its metric energy is below the straight lines'."""
    from scflow.paths.metric import interpolate

    tc = _arc()
    data = training_data(tc, "otmfm", random_state=0)
    assert data.energy_ratio < 0.95
    x0, x1 = tc.xs[0][:100], tc.xs[1][:100]
    s = torch.full((100,), 0.5)
    t0, t1 = float(tc.times[0]), float(tc.times[1])
    mid, _ = interpolate(data.phi, x0, x1, s, t0, t1)
    chord, _ = interpolate(None, x0, x1, s, t0, t1)

    def off_circle(p):  # in the cells' units
        return (torch.as_tensor(tc.inverse_transform(p.double().numpy())).norm(dim=1) - 3).abs()

    assert off_circle(chord).mean() > 0.5
    assert off_circle(mid).mean() < 0.8 * off_circle(chord).mean()


def test_the_interpolant_never_reads_the_held_out_cells():
    """Timepoint 1 held out: replacing its cells by far noise changes no weight of the
    interpolant (its metrics and pairs come from timepoints 0, 2 and 3)."""
    from dataclasses import replace

    tc = _arc(1, n=60, whiten=False)
    noised = replace(tc, xs=[x if k != 1 else torch.full_like(x, 40.0)
                             for k, x in enumerate(tc.xs)])
    kw = {"holdout": 1, "random_state": 0}
    a, b = training_data(tc, "otmfm", **kw), training_data(noised, "otmfm", **kw)
    for p, q in zip(a.phi.parameters(), b.phi.parameters(), strict=True):
        assert torch.equal(p, q)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    for x, y in zip(a.batch(16, g1)[:3], b.batch(16, g2)[:3], strict=True):
        assert torch.equal(x, y)


def test_fit_is_repeatable_and_moves_cells_onto_the_next_timepoint():
    tc = _arc(1, n=60)
    kw = {**FAST, "n_steps": 300}
    m1 = scflow.fit_flow(tc, "otmfm", random_state=0, **kw)
    m2 = scflow.fit_flow(tc, "otmfm", random_state=0, **kw)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p, q)
    assert 0 < m1.meta["interpolant_energy"] < 1
    from scflow.flow.integrate import integrate
    from scflow.metrics import wasserstein

    end = integrate(m1, tc.xs[0], 0.0, 1.0, n_steps=50)
    assert wasserstein(end, tc.xs[1]) < 0.5 * wasserstein(tc.xs[0], tc.xs[1])


@pytest.mark.parametrize("protocol", ["leave_one_out", "rollout_holdout"])
def test_otmfm_through_the_protocols(protocol):
    tc = _arc(2, n=30)
    kw = {**FAST, "n_steps": 20}
    if protocol == "leave_one_out":
        df = leave_one_out_tc(tc, ["otmfm"], seeds=[0], n_euler=10, device="cpu", **kw)
        assert list(df["method"].unique()) == ["otmfm"] and np.isfinite(df["w1"]).all()
        assert np.isfinite(df["diff_static_ot"]).all()
    else:
        df = rollout_tc(tc, ["otmfm"], seeds=[0], holdouts=[1], n_euler=10, device="cpu",
                        **kw)
        assert (df["method"] == "otmfm").any() and np.isfinite(df["w1"]).all()


def test_the_defaults_are_those_the_development_simulation_chose():
    """``benchmarks/metric_flow.py --stage choose`` picked them on ``simulate(random_state=1)``
    (never a reported table); the method holds what its JSON says."""
    import json
    from pathlib import Path

    path = Path(__file__).parents[2] / "benchmarks" / "results" / "metric_flow_choose.json"
    chosen = json.loads(path.read_text())["chosen"]
    m = scflow.methods.get("otmfm")
    assert chosen["metric"] == m.metric and chosen["metric_params"] == m.metric_params
    assert chosen.get("interpolant_lr", m.interpolant_lr) == m.interpolant_lr
