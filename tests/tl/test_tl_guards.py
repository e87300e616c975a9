"""The tools refuse what would read as a result but is not one: non-finite cells, damaged
models, pushes that leave the numbers, fate columns that are not fates."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest
from _blobs import snapshot

import scflow

TOOLS = {
    "predict": lambda a: scflow.tl.predict(a, 2.0, from_time=0.0, n_steps=5),
    "fate": lambda a: scflow.tl.fate(a, "branch", mode="ode", n_steps=5, key_added="f"),
    "fate_pull": lambda a: scflow.tl.fate(a, "branch", mode="pull", n_steps=5, key_added="f"),
    "transition_matrix": lambda a: scflow.tl.transition_matrix(a, n_steps=5),
    "velocity": lambda a: scflow.tl.velocity(a),
    "trajectories": lambda a: scflow.tl.trajectories(a, n_steps=5),
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_cell_that_is_not_finite_is_refused_by_name(fitted, tool, value):
    """A day-0 cell whose representation turned NaN or inf after the fit: no tool turns it
    into plausible fates, predictions or velocities."""
    fitted.obsm["X_pca"] = np.array(fitted.obsm["X_pca"])
    fitted.obsm["X_pca"][3, 1] = value
    before = snapshot(fitted)
    match = (r"use_rep='X_pca': 1 of the cells used hold NaN or infinite values in the "
             r"fitted dims \(e.g. \['cell3'\]\)")
    with pytest.raises(ValueError, match=match):
        TOOLS[tool](fitted)
    assert snapshot(fitted).keys() == before.keys()
    assert {k: v for k, v in snapshot(fitted).items() if k != "X"} == \
        {k: v for k, v in before.items() if k != "X"}


def test_a_cell_not_used_may_be_non_finite(fitted):
    """Only the cells a call reads are checked: a NaN day-4 cell does not block a prediction
    from day 0."""
    fitted.obsm["X_pca"] = np.array(fitted.obsm["X_pca"])
    last = np.flatnonzero(fitted.obs["day"].to_numpy() == 4.0)[0]
    fitted.obsm["X_pca"][last] = np.nan
    pred = scflow.tl.predict(fitted, 1.0, from_time=0.0, n_steps=5)
    assert np.isfinite(pred.X).all()


@pytest.mark.parametrize("tool", ["predict", "fate", "transition_matrix"])
def test_a_non_finite_weight_in_uns_is_refused_by_name(fitted, tool):
    w = fitted.uns["scflow"]["model"]["weights"]
    w["velocity_net.net.0.weight"] = w["velocity_net.net.0.weight"].copy()
    w["velocity_net.net.0.weight"][0, 0] = np.nan
    with pytest.raises(ValueError, match="model weight 'velocity_net.net.0.weight' holds NaN "
                                         "or infinite values"):
        TOOLS[tool](fitted)
    assert "f" not in fitted.obs


@pytest.mark.parametrize("tool", ["predict", "fate", "fate_pull", "transition_matrix",
                                  "trajectories"])
def test_a_push_that_leaves_the_numbers_is_refused(fitted, tool):
    """Finite weights whose field overflows float32 along the push: the end points are
    not finite, and are refused instead of being read as fates or neighbours."""
    w = fitted.uns["scflow"]["model"]["weights"]
    for name in ("velocity_net.net.6.weight", "velocity_net.net.6.bias"):
        w[name] = np.full_like(w[name], 3e38)
    with pytest.raises(ValueError, match=r"not finite \(NaN or inf\)"):
        TOOLS[tool](fitted)
    assert "f" not in fitted.obs


def _late_labels(adata, labels) -> pd.Series:
    late = (adata.obs["day"] == 4.0).to_numpy()
    col = pd.Series(np.nan, index=adata.obs_names, dtype=object)
    col[late] = np.resize(np.asarray(labels, dtype=object), late.sum())
    return col


def test_one_fate_is_refused(fitted):
    fitted.obs["one"] = _late_labels(fitted, ["A"])
    with pytest.raises(ValueError, match=r"groupby='one': one label, \['A'\], among the "
                                         r"labelled cells of to_time='4'"):
        scflow.tl.fate(fitted, "one")
    with pytest.raises(ValueError, match=r"fates=\['up'\] names one fate"):
        scflow.tl.fate(fitted, "branch", fates=["up"])
    assert "fate" not in fitted.obs


def test_blank_and_nan_strings_are_not_fates(fitted, caplog):
    """Labels written as strings from missing values ("", "nan", "None") are unlabelled
    cells, not fates; the fates are those of the other cells."""
    col = _late_labels(fitted, ["A", "B", "", "nan", " None "])
    fitted.obs["lab"] = col
    with caplog.at_level(logging.WARNING, logger="scflow"):
        scflow.tl.fate(fitted, "lab", n_steps=5, n_neighbors=3)
    assert list(fitted.obsm["fate_probabilities"].columns) == ["A", "B"]
    assert fitted.uns["fate"]["params"]["n_labelled"] == 24  # 2 of every 5 of the 60 cells
    assert "36 cells of to_time are labelled ['', ' None ', 'nan'], read as unlabelled" \
        in caplog.text


def test_a_per_cell_identifier_is_not_a_fate_column(fitted):
    """A barcode column (one label per cell) would make a cells x labels table of no use:
    refused before anything is computed."""
    late = (fitted.obs["day"] == 4.0).to_numpy()
    fitted.obs["barcode"] = _late_labels(fitted, [f"bc{i}" for i in range(late.sum())])
    with pytest.raises(ValueError, match=r"groupby='barcode' has 60 labels among 60 labelled "
                                         r"cells .* per-cell identifier"):
        scflow.tl.fate(fitted, "barcode")
    assert "fate" not in fitted.obs


# ----- unbounded resources: refused from an estimate, before anything is allocated -----
def test_fate_with_a_billion_steps_is_refused_before_any_push(fitted, monkeypatch):
    from scflow.tl import _fate_compute

    def never(*args, **kw):
        raise AssertionError("should fail before any push")

    monkeypatch.setattr(_fate_compute, "flow_fate", never)
    with pytest.raises(ValueError, match=r"n_steps must be a positive integer of at most "
                                         r"1,000,000, got 1000000000"):
        scflow.tl.fate(fitted, "branch", mode="ode", n_steps=10**9)
    # per unit of model time over 3 units: 3 x 400,000 steps
    with pytest.raises(ValueError, match=r"n_steps=400000 per unit of model time over 3 units "
                                         r"is 1,200,000 steps"):
        scflow.tl.fate(fitted, "branch", mode="ode", n_steps=400_000)
    assert "fate" not in fitted.obs


@pytest.mark.parametrize("tool", ["fate", "trajectories"])
def test_memory_guard_fires_on_the_estimate(fitted, tool, monkeypatch):
    """Outputs are estimated from their sizes before they are allocated; above
    ``settings.max_memory_gb`` the call is refused with the estimate (a bound set tiny here:
    the same check stops cells x fates tables or paths of many GB)."""
    monkeypatch.setattr(scflow.settings, "_max_memory_gb", 1e-4)  # 100 kB
    before = snapshot(fitted)
    what = {"fate": r"fate probabilities of 240 cells x 2 fates would take about 1\.15e-05 GB",
            "trajectories": r"60 paths of 101 states in 3 dims would take about 0\.000364 GB"}
    if tool == "fate":
        monkeypatch.setattr(scflow.settings, "_max_memory_gb", 1e-6)
        with pytest.raises(ValueError, match=what[tool] + r" of memory, more than "
                                             r"scflow.settings.max_memory_gb = 1e-06"):
            scflow.tl.fate(fitted, "branch")
    else:
        with pytest.raises(ValueError, match=what[tool]):
            scflow.tl.trajectories(fitted)
    assert snapshot(fitted) == before


def test_a_million_dimensions_are_refused_from_the_estimate(monkeypatch):
    """150 cells of a 1e6-dimensional representation (5.5 GB at its peak before, without a
    word): the fit's memory is estimated from the sizes (5.58 GB) before it is read."""
    import anndata as ad
    import scipy.sparse as sp

    adata = ad.AnnData(np.zeros((150, 1), dtype=np.float32),
                       obs=pd.DataFrame({"day": np.repeat([0.0, 1.0, 2.0], 50)},
                                        index=[f"c{i}" for i in range(150)]))
    adata.obsm["X_wide"] = sp.csr_matrix((150, 10**6), dtype=np.float32)  # no memory
    monkeypatch.setattr(scflow.settings, "_max_memory_gb", 4.0)
    with pytest.raises(ValueError, match=r"fitting 150 cells x 1000000 dims of "
                                         r"use_rep='X_wide' \(MLP \[64, 64, 64\]\) would take "
                                         r"about 5\.58 GB of memory, more than"):
        scflow.tl.fit(adata, use_rep="X_wide")
    assert "scflow" not in adata.uns
    from scflow import _checks as _budget

    monkeypatch.setattr(scflow.settings, "_max_memory_gb", 8.0)
    monkeypatch.setattr(_budget, "WARN_BYTES", 1e3)  # a small fit is announced the same way
    adata.obsm["X_pca"] = np.random.default_rng(0).normal(size=(150, 2))
    with pytest.warns(UserWarning, match=r"fitting 150 cells x 2 dims of use_rep='X_pca' "
                                         r"\(MLP \[8\]\) will take about"):
        scflow.tl.fit(adata, n_steps=2, hidden=(8,))


@pytest.mark.parametrize(("mode", "key", "match"), [
    ("sde", "sb", r"tl.fate \(sde\): 180 cells x 2 draws x up to 30 steps, 1\.4e\+04 "
                  r"evaluations of the field: this takes long"),
    ("transport", "scflow", r"tl.fate \(transport\): 3 chains of entropic plans, 21,600 cell "
                            r"pairs in all"),
])
def test_fate_announces_a_large_computation(fitted, fitted_sb, monkeypatch, caplog, mode, key,
                                            match):
    """Fates of ~96k cells (SDE draws, transport plans) take long but never run away in
    memory (chunks, max_cells); their size is announced up front (the bounds set low here:
    the same message names 96k cells x 30 draws)."""
    from scflow.tl import _fate_cost

    adata = fitted_sb if key == "sb" else fitted
    monkeypatch.setattr(_fate_cost, "LARGE_CELL_STEPS", 1e3)
    monkeypatch.setattr(_fate_cost, "LARGE_PLAN_ENTRIES", 1e3)
    with caplog.at_level(logging.WARNING, logger="scflow"):
        scflow.tl.fate(adata, "branch", key=key, mode=mode, n_draws=2 if mode == "sde" else None,
                       n_steps=10, max_cells=60)
    assert re.search(match, caplog.text)


@pytest.mark.parametrize("part", ["config", "weights"])
def test_a_stored_model_without_its_config_or_weights_is_named(fitted, part):
    del fitted.uns["scflow"]["model"][part]
    with pytest.raises(ValueError, match=f"scflow model: its '{part}' is missing or not a "
                                         "mapping; the stored model is incomplete"):
        scflow.tl.predict(fitted, 2.0, from_time=0.0)
