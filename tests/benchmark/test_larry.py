"""The LARRY fate benchmark: the score, its interval, the table and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scflow.benchmark import larry as fb
from scflow.methods.uotcfm import DEFAULT_REG_M


def test_pearson_ci_brackets_r_and_narrows_with_cells():
    rng = np.random.default_rng(0)
    x = rng.normal(size=4000)
    y = 0.6 * x + 0.8 * rng.normal(size=4000)  # population r = 0.6
    r, lo, hi = fb.pearson_ci(x, y, n_boot=300)
    assert r == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert lo < r < hi and lo < 0.6 < hi
    _, lo_small, hi_small = fb.pearson_ci(x[:200], y[:200], n_boot=300)
    assert hi_small - lo_small > 2 * (hi - lo)
    assert fb.pearson_ci(x, y, n_boot=50, random_state=3) == fb.pearson_ci(
        x, y, n_boot=50, random_state=3)


def test_bias_is_neutrophil_share_and_half_where_neither():
    p = pd.DataFrame({"Neutrophil": [0.6, 0.0, 0.2], "Monocyte": [0.2, 0.0, 0.0],
                      "undiff": [0.2, 1.0, 0.8]})
    np.testing.assert_allclose(fb.neutrophil_bias(p), [0.75, 0.5, 1.0])


def _rows():
    """Two seeds of one method and the null, at readouts 3 and auto, and a published row."""
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        for readout, r in (("3", 0.70), ("auto", 0.72)):
            rows.append(dict(method="default", seed=seed, readout=readout, r=r + shift,
                             r_low=r + shift - 0.01, r_high=r + shift + 0.01, n_cells=10,
                             fit_method="otcfm", fate_mode="pull", seconds=1.0,
                             n_neighbors=3 if readout == "3" else 20, label_rule="rule",
                             vs_null=0.05 + shift, vs_null_low=0.01 + shift,
                             vs_null_high=0.09 + shift, best_null_readout="auto",
                             vs_best_null=-0.01, vs_best_null_low=-0.03,
                             vs_best_null_high=0.01))
    for readout, r in (("3", 0.62), ("auto", 0.72)):
        rows.append(dict(method=fb.NULL, seed=-1, readout=readout, r=r, r_low=r - 0.01,
                         r_high=r + 0.01, n_cells=10, fit_method="", fate_mode="no motion",
                         seconds=np.nan, n_neighbors=3 if readout == "3" else 15,
                         label_rule="rule", best_null_readout="auto"))
    rows.append(dict(method="published WOT", seed=-1, readout="", r=0.64, r_low=0.6,
                     r_high=0.7, n_cells=10, fit_method="", fate_mode="", seconds=np.nan))
    return pd.DataFrame(rows)


def test_summary_and_markdown_lead_with_the_null():
    df = _rows()
    s = fb.summarize_fate(df).set_index(["method", "readout"])
    assert s.loc[("default", "3"), "r_mean"] == pytest.approx(0.71)
    assert s.loc[("default", "3"), "vs_null_low"] == pytest.approx(0.02)
    assert s.loc[("default", "auto"), "n_neighbors"] == "20/20"
    text = fb.fate_markdown(df)
    lines = text.splitlines()
    assert lines[0].startswith("**Rows above the no-motion null at the same readout")
    assert "`default` at k=3" in lines[0] and "`default` at k=auto" in lines[0]
    assert "best readout on the truth (k=auto" in lines[1] and lines[1].endswith("none.")
    assert "| published WOT | shipped predictions | – | 0.640 [0.600, 0.700] |" in text
    assert "+0.060 [+0.020, +0.100] **>**" in text  # default vs null at k=3, both seeds
    assert lines[-1] == "Labelling rule: rule. Scored on the 10,087 held-out day-2 cells."
    # no row above: the summary says so first
    worse = df.assign(vs_null_low=df["vs_null_low"] - 0.2)
    assert fb.fate_markdown(worse).startswith("**No row beats the no-motion null")


def test_summary_pairs_seeds_on_shared_resamples():
    """With the predictions, the intervals are those of the mean over seeds, paired."""
    rng = np.random.default_rng(0)
    truth = rng.random(3000)
    preds = {fb.prediction_name("default", s, "3"): truth + rng.normal(0, 0.3, 3000)
             for s in (0, 1)}
    preds[fb.prediction_name(fb.NULL, -1, "3")] = truth + rng.normal(0, 0.6, 3000)
    rows = [dict(method="default", seed=s, readout="3", r=0.0, r_low=0.0, r_high=0.0,
                 n_cells=3000, fit_method="otcfm", fate_mode="pull", seconds=1.0,
                 n_neighbors=3, prediction=fb.prediction_name("default", s, "3"),
                 best_null_readout="3") for s in (0, 1)]
    rows.append(dict(method=fb.NULL, seed=-1, readout="3", r=0.0, r_low=0.0, r_high=0.0,
                     n_cells=3000, fit_method="", fate_mode="no motion", seconds=np.nan,
                     n_neighbors=3, prediction=fb.prediction_name(fb.NULL, -1, "3"),
                     best_null_readout="3"))
    s = fb.summarize_fate(pd.DataFrame(rows), preds, truth, n_boot=200).set_index("method")
    mean_r = np.mean([np.corrcoef(preds[k], truth)[0, 1] for k in list(preds)[:2]])
    null_r = np.corrcoef(preds[fb.prediction_name(fb.NULL, -1, "3")], truth)[0, 1]
    assert s.loc["default", "vs_null"] == pytest.approx(mean_r - null_r)
    assert 0 < s.loc["default", "vs_null_low"] < mean_r - null_r < s.loc["default",
                                                                         "vs_null_high"]
    assert np.isnan(s.loc[fb.NULL, "vs_null"])


def test_bad_methods_and_seeds():
    with pytest.raises(ValueError, match="methods"):
        fb.larry_fate(("nope",), (0,))
    with pytest.raises(ValueError, match="seeds"):
        fb.larry_fate(("default",), ())


def test_cli_larry_writes_the_table(tmp_path, monkeypatch, capsys):
    from scflow.cli import main

    seen = {}

    def fake(methods, seeds, **kw):
        seen.update(methods=methods, seeds=seeds, **kw)
        rng = np.random.default_rng(0)
        truth = rng.random(20)
        key = fb.prediction_name("transport", 0, "auto")
        df = pd.DataFrame([dict(method="transport", seed=0, readout="auto", r=0.6,
                                r_low=0.5, r_high=0.7, n_cells=5, fit_method="otcfm",
                                fate_mode="transport", seconds=2.0, prediction=key)])
        return df, {"cells": np.array([f"c{i}" for i in range(20)]),
                    "heldout": np.arange(20) < 15, "truth": truth,
                    "predictions": {key: truth + rng.normal(0, 0.1, 20)}}

    monkeypatch.setattr(fb, "larry_fate", fake)
    assert main(["benchmark", "--dataset", "larry", "--methods", "transport", "--seeds", "0",
                 "--n-steps", "7", "--out", str(tmp_path)]) == 0
    assert seen["methods"] == ["transport"] and seen["seeds"] == [0] and seen["n_steps"] == 7
    assert seen["return_predictions"] is True
    saved = json.loads((tmp_path / "larry_fate.json").read_text())
    assert saved["config"]["protocol"] == "fate" and saved["rows"][0]["r"] == 0.6
    assert "| transport | transport | 1 |" in (tmp_path / "larry_fate.md").read_text()
    with np.load(tmp_path / "larry_fate_predictions.npz") as z:
        assert list(z["names"]) == [fb.prediction_name("transport", 0, "auto")]
        assert z["predictions"].shape == (1, 20) and z["heldout"].sum() == 15
    assert main(["benchmark", "--dataset", "larry", "--methods", "mmfm",
                 "--out", str(tmp_path)]) == 2
    assert "--methods" in capsys.readouterr().err


@pytest.mark.data
@pytest.mark.slow
def test_larry_fates_follow_the_clones(data_dir):
    """A brief default fit on the real data: the predicted neutrophil bias correlates with
    the clonal truth, and swapping the two labels flips the sign (the score reads the right
    column)."""
    import scflow

    df, bundle = fb.larry_fate(("default",), (0,), n_steps=200, n_boot=20,
                               readouts=(15, "auto"), return_predictions=True)
    ours = df.set_index(["method", "readout"]).loc[("default", "auto")]
    # a 200-step fit under the benchmark's rule (fates among neutrophils and monocytes, k
    # chosen from the annotation): clearly positive
    assert ours["r"] > 0.4 and ours["r_low"] < ours["r"] < ours["r_high"]
    assert set(df["method"]) >= {"null: no motion", "published FateID"}
    assert set(df.loc[df["method"] == fb.NULL, "readout"]) == {"15", "auto"}
    # every row's prediction is kept, and its r is the one of the table
    held = bundle["heldout"]
    pred = bundle["predictions"][ours["prediction"]]
    assert len(pred) == len(bundle["cells"]) == 20157
    assert np.corrcoef(pred[held], bundle["truth"][held])[0, 1] == pytest.approx(ours["r"])
    assert ours["vs_null_low"] < ours["vs_null"] < ours["vs_null_high"]
    assert ours["label_rule"] == fb.LABEL_RULE and ours["n_neighbors"] >= 3
    adata = scflow.datasets.larry()
    swap = {"Neutrophil": "Monocyte", "Monocyte": "Neutrophil"}
    adata.obs["swapped"] = adata.obs["state_info"].astype(object).map(
        lambda s: swap.get(s, s))
    truth = scflow.datasets.larry_truth()
    null = fb._no_motion(adata.copy(), truth.index, None)
    adata.obs["state_info"] = adata.obs["swapped"]
    flipped = fb._no_motion(adata, truth.index, None)
    held = truth["heldout"].to_numpy()
    r = np.corrcoef(null[held], truth["truth"][held])[0, 1]
    r_flip = np.corrcoef(flipped[held], truth["truth"][held])[0, 1]
    assert r > 0.4 and r_flip == pytest.approx(-r, abs=1e-9)


def test_label_rule_names_the_choice_and_the_table_shows_k():
    assert "its 15 nearest annotated day-6 cells" in fb.label_rule()
    assert fb.LABEL_RULE == fb.label_rule(fb.FATE_RULE) and "Brier" in fb.LABEL_RULE
    from scflow.tl._fate import DEFAULT_NEIGHBORS
    assert f"its {DEFAULT_NEIGHBORS} nearest" in fb.label_rule({"fates": None})
    auto = fb.label_rule({"n_neighbors": "auto", "fates": ["Neutrophil", "Monocyte"]})
    assert "leave-one-out Brier" in auto and "Neutrophil or Monocyte" in auto
    df = pd.DataFrame([
        dict(method="default", seed=s, readout="auto", r=0.6, r_low=0.5, r_high=0.7,
             n_cells=10, fit_method="otcfm", fate_mode="ode", seconds=1.0, n_neighbors=k,
             label_rule=auto) for s, k in ((0, 20), (1, 30))])
    text = fb.fate_markdown(df)
    assert 'k used by `"auto"` (per seed): default 20/30.' in text
    assert text.splitlines()[-1] == f"Labelling rule: {auto}. Scored on the 10,087 held-out " \
                                    "day-2 cells."


@pytest.mark.data
@pytest.mark.slow
def test_growth_row_fits_uotcfm_with_minibatch_plans_and_reads_ode_fates(data_dir):
    """The ``growth`` row: ``tl.fit(method="uotcfm")`` with its defaults on LARRY (20,157 x
    38,143 cells: ``coupling="auto"`` resolves to minibatch plans), then the row's
    ``tl.fate``: one ODE push per cell."""
    import scflow

    fit_method, mode = fb.FATE_METHODS["growth"]
    assert (fit_method, fb.FIT_OPTIONS.get("growth")) == ("uotcfm", None)  # tl.fit defaults
    adata = scflow.datasets.larry()
    fitted, seconds = fb._fit(adata, fit_method, {}, 0, scflow.TrainConfig(n_steps=30), "cpu",
                              None)
    params = fitted.uns["scflow"]["params"]
    assert params["coupling"] == "minibatch" and params["method"] == "uotcfm" and seconds > 0
    out = scflow.tl.fate(fitted, "state_info", from_time=2, to_time=6, mode=mode,
                         key_added="f", copy=True, n_steps=20, **fb.FATE_RULE)
    assert out.uns["f"]["params"]["mode"] == "ode"
    day2 = (fitted.obs["day"] == 2).to_numpy()
    prob = out.obsm["f_probabilities"].to_numpy()
    np.testing.assert_allclose(prob[day2].sum(1), 1.0, atol=1e-6)


def test_growth_ablations_are_tl_fit_options_and_not_run_by_default():
    """The ablation rows take ``tl.fit`` options that reach the fit (equal masses) or reuse
    a default row's fit; the default rows leave them out."""
    import anndata as ad

    from scflow import tl

    assert {"sbcfm_ode", "growth_shape"}.isdisjoint(fb.DEFAULT_FATE_ROWS)
    # the ODE ablation of sbcfm reuses the sbcfm row's fit (same method and options)
    assert fb.FATE_METHODS["sbcfm_ode"] == ("sbcfm", "ode")
    assert fb.FIT_OPTIONS["sbcfm_ode"] == fb.FIT_OPTIONS["sbcfm"]
    assert set(fb.DEFAULT_FATE_ROWS) < set(fb.FATE_METHODS)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(k, 0.3, size=(30 * (k + 1), 2)) for k in range(3)])
    adata = ad.AnnData(np.zeros((len(x), 1), dtype=np.float32),
                       obs=pd.DataFrame({"day": np.repeat([0, 1, 2], [30, 60, 90])},
                                        index=[f"c{i}" for i in range(len(x))]))
    adata.obsm["X_emb"] = x
    learned = {}
    for name in ("growth", "growth_shape"):
        fit_method, _ = fb.FATE_METHODS[name]
        out = tl.fit(adata, "day", use_rep="X_emb", method=fit_method, n_steps=5,
                     copy=True, **fb.FIT_OPTIONS.get(name, {}))
        learned[name] = out.uns["scflow"]["params"]
    assert learned["growth"]["growth_from"] == "counts"
    assert learned["growth"]["reg_m"] == DEFAULT_REG_M
    assert learned["growth_shape"]["growth_from"] == "shape"
