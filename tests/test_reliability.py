"""Property-based tests: random inputs to ``tl.fit`` and to the tensor API."""

from __future__ import annotations

import copy
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import scflow
from scflow import couplings, paths

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ----- tl.fit on random small time courses -----
LABEL_KINDS = ("float", "int", "str", "ordered_cat", "cat", "mixed", "words")


def _labels(kind: str, codes: np.ndarray, values: np.ndarray):
    v = values[codes]
    if kind == "float":
        return v.astype(float)
    if kind == "int":
        return v.astype(int)
    if kind == "str":
        return np.asarray([f"day {x:g}" for x in v], dtype=object)
    if kind == "ordered_cat":
        names = [f"stage{chr(65 + k)}" for k in range(len(values))]
        return pd.Categorical([names[c] for c in codes], categories=names, ordered=True)
    if kind == "cat":
        return pd.Categorical([f"D{x:g}" for x in v])
    if kind == "mixed":
        return np.asarray([x if i % 2 else f"d{x:g}" for i, x in enumerate(v)], dtype=object)
    return np.asarray([("early", "mid", "late", "end")[c % 4] for c in codes], dtype=object)


@st.composite
def time_courses(draw):
    """Mostly well-formed time courses, and about a third with one kind of defect or more."""
    clean = draw(st.integers(0, 2)) > 0
    n_tp = draw(st.integers(2, 4) if clean else st.integers(1, 4))
    sizes = draw(st.lists(st.integers(3, 6) if clean else st.integers(1, 6), min_size=n_tp,
                          max_size=n_tp))
    dim = draw(st.integers(1, 3))
    codes = np.repeat(np.arange(n_tp), sizes)
    values = np.sort(draw(st.lists(st.integers(0, 20), min_size=n_tp, max_size=n_tp,
                                   unique=True))).astype(float)
    kind = draw(st.sampled_from(LABEL_KINDS[:5] if clean else LABEL_KINDS))
    seed = draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).normal(size=(len(codes), dim))
    if not clean and draw(st.booleans()):  # a non-finite value
        x[draw(st.integers(0, len(x) - 1)), 0] = draw(st.sampled_from([np.nan, np.inf]))
    obs = pd.DataFrame({"t": _labels(kind, codes, values)},
                       index=[f"c{i}" for i in range(len(codes))])
    adata = ad.AnnData(np.zeros((len(codes), 1), dtype=np.float32), obs=obs)
    adata.obsm["X_rep"] = x
    holdout = None
    if n_tp > 2 and draw(st.booleans()):
        k = draw(st.integers(1, n_tp - 2))
        holdout = {"float": values[k], "int": int(values[k]), "str": f"day {values[k]:g}",
                   "ordered_cat": f"stage{chr(65 + k)}", "cat": f"D{values[k]:g}"}.get(kind)
    kw = dict(n_dims=draw(st.sampled_from([None, 1] if clean else [None, 1, 2, 4])),
              method=draw(st.sampled_from(["otcfm", "icfm", "sbcfm"])),
              time_scale=draw(st.sampled_from(["index", "real"])),
              holdout=holdout if clean else draw(st.sampled_from([None, 0, 1, "day 1", 5.0])))
    return adata, kw


def _slots(adata):
    return copy.deepcopy({"obs": adata.obs.copy(), "obsm": dict(adata.obsm),
                          "uns": dict(adata.uns), "layers": dict(adata.layers)})


@SETTINGS
@given(time_courses())
def test_fit_either_fits_or_raises_a_clear_error(case):
    adata, kw = case
    before = _slots(adata)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scflow.tl.fit(adata, "t", use_rep="X_rep", n_steps=3, batch_size=4, hidden=(4,),
                          device="cpu", **kw)
    except (ValueError, KeyError) as err:
        assert str(err)
        event(f"raised {type(err).__name__}: {str(err)[:70]}")
        after = _slots(adata)
        assert before["obs"].equals(after["obs"])
        assert before["uns"].keys() == after["uns"].keys() == set()
        assert before["obsm"].keys() == after["obsm"].keys()
        np.testing.assert_array_equal(before["obsm"]["X_rep"], after["obsm"]["X_rep"])
        return
    event("fitted")
    rec = adata.uns["scflow"]
    assert np.isfinite(rec["loss"]).all()
    assert len(rec["timepoints"]["labels"]) >= 2
    model = scflow.load_model(adata)
    x = torch.zeros(2, model.dim)
    assert torch.isfinite(model.velocity(0.5, x)).all()


# ----- couplings: plans have the right marginals -----
clouds = st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 4),
                   st.integers(0, 2**16))


def _cloud(n, m, d, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(
        m, d, generator=g, dtype=torch.float64) * 2 + 1


@SETTINGS
@given(clouds, st.sampled_from(["independent", "exact", "entropic"]))
def test_balanced_plans_have_uniform_marginals(cloud, kind):
    n, m, d, seed = cloud
    x0, x1 = _cloud(n, m, d, seed)
    coupling = {"independent": couplings.Independent(), "exact": couplings.ExactOT(),
                "entropic": couplings.EntropicOT(reg=1.0)}[kind]
    plan = coupling.plan(x0, x1).double()
    assert plan.shape == (n, m) and (plan >= 0).all()
    tol = 1e-5 if kind == "entropic" else 1e-9
    torch.testing.assert_close(plan.sum(1), torch.full((n,), 1 / n, dtype=torch.float64),
                               atol=tol, rtol=0)
    torch.testing.assert_close(plan.sum(0), torch.full((m,), 1 / m, dtype=torch.float64),
                               atol=tol, rtol=0)
    i, j = coupling.sample(x0, x1, 50, torch.Generator().manual_seed(0))
    assert i.shape == j.shape == (50,)
    assert 0 <= int(i.min()) and int(i.max()) < n and 0 <= int(j.min()) and int(j.max()) < m
    if kind == "exact":  # pairs are drawn from the support of the plan only
        assert (plan[i, j] > 0).all()
        cost = torch.cdist(x0, x1) ** 2
        indep = couplings.Independent().plan(x0, x1).double()
        assert (plan * cost).sum() <= (indep * cost).sum() + 1e-9


@SETTINGS
@given(clouds)
def test_unbalanced_plan_is_nonnegative_and_finite(cloud):
    x0, x1 = _cloud(*cloud)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = couplings.UnbalancedOT(reg=1.0, reg_m=1.0).plan(x0, x1)
    assert torch.isfinite(plan).all() and (plan >= 0).all() and plan.sum() > 0


# ----- paths: u_t is the time derivative of x_t -----
PATHS = {
    "linear": lambda: paths.LinearPath(sigma=0.3),
    "linear0": lambda: paths.LinearPath(sigma=0.0),
    "bridge": lambda: paths.BrownianBridgePath(sigma=0.7),
    "gaussian_ot": lambda: paths.GaussianOTPath(sigma_min=0.05),
    "vp": lambda: paths.VPDiffusionPath(),
    "ve": lambda: paths.VEDiffusionPath(),
}


@SETTINGS
@given(st.sampled_from(sorted(PATHS)), st.integers(1, 8), st.integers(1, 4),
       st.floats(0.05, 0.95), st.integers(0, 2**16))
def test_target_velocity_is_the_derivative_of_the_path(name, n, d, t, seed):
    path = PATHS[name]()
    g = torch.Generator().manual_seed(seed)
    x0, x1, eps = (torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(3))
    h = 1e-6
    tt = torch.full((n,), t, dtype=torch.float64)
    fd = (path.sample_xt(tt + h, x0, x1, eps) - path.sample_xt(tt - h, x0, x1, eps)) / (2 * h)
    ut = path.target_velocity(tt, x0, x1, eps)
    torch.testing.assert_close(ut, fd, rtol=1e-4, atol=1e-5)


@SETTINGS
@given(st.integers(1, 8), st.integers(1, 4), st.integers(0, 2**16))
def test_flow_matcher_sample_is_consistent(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) + 3
    fm = scflow.FlowMatcher(paths.LinearPath(sigma=0.0), couplings.ExactOT())
    s = fm.sample(x0, x1, generator=torch.Generator().manual_seed(1))
    tc = s.t.reshape(-1, 1)
    torch.testing.assert_close(s.xt, (1 - tc) * s.x0 + tc * s.x1)
    torch.testing.assert_close(s.ut, s.x1 - s.x0)


# ----- safe models: a pickled payload in a model file is never unpickled -----
class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create the marker file if unpickled


def test_model_file_with_a_pickled_object_is_refused(tmp_path):
    model = scflow.FlowModel(2, (4,))
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    marker = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(marker)
    first = next(k for k in arrays if k.startswith("w/"))
    arrays[first] = evil
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match="allow_pickle"):
        scflow.FlowModel.load(bad)
    assert not marker.exists()
