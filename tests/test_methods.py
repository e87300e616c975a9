"""The method registry: every list of methods reads it, and a new entry is all it takes."""

from __future__ import annotations

import numpy as np
import pytest

import scflow
from scflow import methods
from scflow.cli import DEFAULT_METHODS, _parser
from scflow.matching import otcfm
from scflow.protocols import leave_one_out_tc


def test_every_list_of_methods_comes_from_the_registry():
    from scflow.benchmark import ALL_METHODS, PAIR_METHODS, STATIC_METHODS
    from scflow.train import DEFAULT_SIGMA, NEURAL_METHODS

    assert NEURAL_METHODS == ("icfm", "otcfm", "sbcfm", "mmfm") == methods.names("neural")
    assert STATIC_METHODS == methods.names("static")
    assert ALL_METHODS == methods.names() == (*NEURAL_METHODS, *STATIC_METHODS)
    assert PAIR_METHODS == ("static_ot", "static_partial", "static_mean_spline")
    assert DEFAULT_SIGMA == {"icfm": 0.1, "otcfm": 0.1, "sbcfm": 0.5, "mmfm": 0.1}
    assert methods.names(shape="chain") == ("mmfm", "static_spline", "static_chain")
    assert DEFAULT_METHODS["rollout"] == "otcfm,mmfm,static_chain"
    assert DEFAULT_METHODS["rollout_holdout"] == "otcfm,mmfm,static_spline,static_chain"
    assert DEFAULT_METHODS["leave_one_out"].split(",")[:3] == ["otcfm", "sbcfm", "icfm"]
    fit = next(a for a in _parser()._subparsers._group_actions[0].choices["fit"]._actions
               if a.dest == "method")
    assert tuple(fit.choices) == (*NEURAL_METHODS, "auto")  # auto: tl.fit's selection


def test_sbcfm_matcher_scales_sigma_with_the_span():
    m = methods.get("sbcfm").interval_matcher(0.5, 4.0)
    assert m.path.sigma == pytest.approx(1.0) and m.coupling.reg == pytest.approx(2.0)
    assert methods.get("otcfm").interval_matcher(0.1, 4.0).path.sigma == pytest.approx(0.1)


def test_bad_entries_and_names_are_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        methods.Method("x", "magic", "pair")
    with pytest.raises(ValueError, match="needs a matcher"):
        methods.Method("x", "neural", "pair", default_sigma=0.1)
    with pytest.raises(ValueError, match="needs predict"):
        methods.Method("x", "static", "pair")
    with pytest.raises(ValueError, match="already registered"):
        methods.register(methods.get("otcfm"))
    with pytest.raises(ValueError, match=r"methods must be among .*got \['nope'\]"):
        methods.check(["otcfm", "nope"])
    with pytest.raises(ValueError, match="protocol must be one of"):
        methods.default_methods("nope")


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry, so that entries added by a test go away after it."""
    monkeypatch.setattr(methods, "_REGISTRY", dict(methods._REGISTRY))
    return methods


def test_a_new_method_is_one_registry_entry(registry, uneven_course):
    """A neural pair method and a static one, added by one ``register`` call each, train and
    run in the protocol like the built-in ones (same parts: the same numbers)."""
    registry.register(registry.Method("my_otcfm", "neural", "pair", default_sigma=0.1,
                                      matcher=otcfm, plan_bytes=42))
    registry.register(registry.Method(
        "my_static", "static", "pair", deterministic=True,
        predict="scflow.protocols.static:predict_static_ot"))
    mine = scflow.fit_flow(uneven_course, "my_otcfm", n_steps=30, progress=False)
    ref = scflow.fit_flow(uneven_course, "otcfm", n_steps=30, progress=False)
    np.testing.assert_array_equal(mine.meta["loss"], ref.meta["loss"])
    df = leave_one_out_tc(uneven_course, ["my_static", "static_ot"], seeds=(0, 1),
                          holdouts=[1])
    w1 = df.set_index(["method", "seed"])["w1"]
    assert w1["my_static", 0] == w1["static_ot", 0] == w1["my_static", 1]
    assert "my_otcfm" in _parser().parse_args(["fit", "a.h5ad", "--out", "b.h5ad", "--method",
                                               "my_otcfm"]).method
