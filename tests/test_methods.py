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

    assert (NEURAL_METHODS == ("icfm", "otcfm", "sbcfm", "mmfm", "uotcfm")
            == methods.names("neural"))
    assert STATIC_METHODS == methods.names("static")
    assert ALL_METHODS == methods.names() == (*NEURAL_METHODS[:4], *STATIC_METHODS[:5],
                                              "uotcfm", "static_mix")
    assert PAIR_METHODS == ("static_ot", "static_partial", "static_mean_spline", "static_mix")
    assert DEFAULT_SIGMA == {"icfm": 0.1, "otcfm": 0.1, "sbcfm": 0.5, "mmfm": 0.1,
                             "uotcfm": 0.1}
    # the growth-aware entries are in no default list (issue 20: opt-in)
    assert not methods.get("uotcfm").defaults and not methods.get("static_mix").defaults
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
    with pytest.raises(ValueError, match="is not neural: nothing to train"):
        methods.get("static_mix").fit_model(None)
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


def test_growth_methods_are_registry_entries_of_their_own_modules():
    """uotcfm and static_mix: one entry each, their code in scflow.growth(_train)."""
    from scflow.growth import predict_static_mix
    from scflow.growth_train import fit_uotcfm

    uot, mix = methods.get("uotcfm"), methods.get("static_mix")
    assert (uot.kind, uot.shape, uot.weighted, uot.takes_mass) == ("neural", "pair", True, True)
    assert uot.matcher is None and methods._load(uot.fit) is fit_uotcfm
    assert (mix.kind, mix.weighted, mix.deterministic) == ("static", False, True)
    assert mix.predictor() is predict_static_mix
    assert methods.get("static_partial").takes_mass and not methods.get("otcfm").takes_mass
    assert [m for m in methods.names() if methods.get(m).weighted] == ["uotcfm"]


def test_fit_flow_hands_uotcfm_to_its_trainer(uneven_course):
    from scflow.growth_train import fit_growth_flow

    cfg = scflow.TrainConfig(n_steps=20, batch_size=16, reg_m=2.0)
    a = scflow.fit_flow(uneven_course, "uotcfm", config=cfg, random_state=1, progress=False)
    b = fit_growth_flow(uneven_course, n_steps=20, batch_size=16, reg_m=2.0, random_state=1,
                        progress=False)
    assert a.has_growth and a.meta["method"] == "uotcfm" and a.meta["reg_m"] == 2.0
    np.testing.assert_array_equal(a.meta["loss"], b.meta["loss"])
    assert a.meta["coupling"] == "global"  # auto, on a small course
    mb = scflow.fit_flow(uneven_course, "uotcfm", n_steps=2, batch_size=16,
                         coupling="minibatch", progress=False)
    assert mb.meta["coupling"] == "minibatch" and mb.has_growth
    with pytest.raises(ValueError, match="coupling must be one of"):
        scflow.fit_flow(uneven_course, "uotcfm", n_steps=2, coupling="plans")
    with pytest.raises(ValueError, match="lr_schedule must be 'constant' for method"):
        scflow.fit_flow(uneven_course, "uotcfm", n_steps=2, lr_schedule="cosine")


def test_uotcfm_plans_are_shared_through_the_plan_cache(uneven_course):
    """Seeds and held-out timepoints reuse the cached growth plans; the cached fit equals
    the uncached one (same plan, same draws)."""
    from scflow.growth_train import fit_uotcfm
    from scflow.training_data import PlanCache

    cache = PlanCache()
    cfg = scflow.TrainConfig(n_steps=15, batch_size=16)
    a = fit_uotcfm(uneven_course, holdout=1, config=cfg, plan_cache=cache, device="cpu")
    assert (cache.solved, cache.reused) == (2, 0)
    fit_uotcfm(uneven_course, holdout=1, config=cfg, plan_cache=cache, device="cpu",
               random_state=1)
    assert (cache.solved, cache.reused) == (2, 2)
    fit_uotcfm(uneven_course, holdout=2, config=cfg, plan_cache=cache, device="cpu")
    assert (cache.solved, cache.reused) == (4, 2)  # 0 -> 1 and 1 -> 3: new
    fit_uotcfm(uneven_course, config=cfg, plan_cache=cache, device="cpu")
    assert (cache.solved, cache.reused) == (5, 4)  # 0 -> 1 and 2 -> 3 shared, 1 -> 2 new
    b = fit_uotcfm(uneven_course, holdout=1, config=cfg, device="cpu")
    np.testing.assert_allclose(a.meta["loss"], b.meta["loss"], rtol=1e-6)
    # another mass is another plan
    fit_uotcfm(uneven_course, holdout=1, config=cfg, plan_cache=cache, device="cpu",
               mass="none")
    assert cache.solved == 7
