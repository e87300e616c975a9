"""The methods: one class per module, registered where defined; every list reads them."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import scflow
from scflow import methods
from scflow.cli import DEFAULT_METHODS, _parser
from scflow.couplings import PlanCache
from scflow.protocols import leave_one_out_tc


def test_every_list_of_methods_comes_from_the_registry():
    from scflow.protocols import ALL_METHODS
    from scflow.protocols.selection import ALL_CANDIDATES, FIT_CANDIDATES

    neural = methods.names("neural")
    assert neural == ("otcfm", "otmfm", "mmfm", "sbcfm", "icfm", "uotcfm")
    assert ALL_METHODS == methods.names() == (*neural, *methods.names("static"))
    assert methods.default_fit_method() == "otcfm"
    assert methods.names("neural", has_score=True) == ("sbcfm",)
    assert methods.names(learns_growth=True) == ("uotcfm",)
    assert methods.names(takes_mass=True) == ("uotcfm", "static_partial", "static_mix")
    # the growth-aware entries are in no default list (issue 20: opt-in)
    assert not methods.get("uotcfm").protocols and not methods.get("static_mix").protocols
    assert methods.names(shape="chain") == ("mmfm", "static_spline", "static_chain")
    assert DEFAULT_METHODS["rollout"] == "otcfm,mmfm,static_chain"
    assert DEFAULT_METHODS["rollout_holdout"] == "otcfm,mmfm,static_spline,static_chain"
    assert DEFAULT_METHODS["leave_one_out"] == ",".join(methods.default_methods(
        "leave_one_out"))
    assert FIT_CANDIDATES == ("otcfm", "otmfm", "mmfm", {"method": "mmfm", "window": 1},
                              "sbcfm")
    assert ALL_CANDIDATES[len(FIT_CANDIDATES):] == ("static_ot", "static_spline",
                                                    "static_mean_spline")
    fit = next(a for a in _parser()._subparsers._group_actions[0].choices["fit"]._actions
               if a.dest == "method")
    assert tuple(fit.choices) == (*neural, "auto")  # auto: tl.fit's selection
    assert fit.default == methods.default_fit_method()


def test_each_default_is_stated_once():
    """The presets' sigma is their method's; every signature that takes a method or a
    list of methods defaults to the registry's; the training options default to
    TrainConfig's."""
    for name in ("icfm", "otcfm", "sbcfm"):
        preset = getattr(scflow, name)
        assert inspect.signature(preset).parameters["sigma"].default == \
            methods.get(name).default_sigma
    assert methods.get("sbcfm").default_sigma == 0.5  # was 1.0 in the preset, 0.5 here
    assert inspect.signature(scflow.tl.fit).parameters["method"].default == \
        methods.default_fit_method()
    assert tuple(inspect.signature(scflow.tl.leave_one_out).parameters["methods"].default) \
        == methods.default_methods("leave_one_out")
    from scflow.protocols import rollout_tc

    assert tuple(inspect.signature(rollout_tc).parameters["methods"].default) == \
        methods.default_methods("rollout")
    from scflow.couplings import GrowthOT
    from scflow.methods.uotcfm import DEFAULT_REG

    assert DEFAULT_REG == GrowthOT().reg  # was 0.05 in GrowthOT against 0.1 in uotcfm


def test_sbcfm_scales_sigma_with_the_span():
    sb = methods.get("sbcfm")
    m = sb.matcher(sb.interval_sigma(0.5, 4.0))
    assert m.path.sigma == pytest.approx(1.0) and m.coupling.reg == pytest.approx(2.0)
    assert methods.get("otcfm").interval_sigma(0.1, 4.0) == pytest.approx(0.1)


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry, so that methods added by a test go away after it."""
    from scflow.training import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return methods


def test_bad_methods_and_names_are_refused(registry):
    class Magic(methods.StaticMethod):
        name, kind = "x", "magic"

    class BadProtocol(methods.StaticMethod):
        name, protocols = "y", ("nope",)

    class Again(methods.StaticMethod):
        name = "otcfm"

    with pytest.raises(ValueError, match="kind must be one of"):
        registry.register(Magic)
    with pytest.raises(ValueError, match="protocols must be among"):
        registry.register(BadProtocol)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Again)
    with pytest.raises(ValueError, match=r"methods must be among .*got \['nope'\]"):
        methods.check(["otcfm", "nope"])
    with pytest.raises(ValueError, match="list of method names"):
        methods.check("otcfm")
    with pytest.raises(ValueError, match="protocol must be one of"):
        methods.default_methods("nope")
    with pytest.raises(ValueError, match="trains a field"):
        scflow.fit_flow(None, "static_mix")
    with pytest.raises(ValueError, match="growth-aware methods only"):
        methods.get("otcfm").inputs(None, mass="counts")


def test_a_new_method_is_one_class(registry, uneven_course):
    """A neural pair method and a static one, each one class with ``@register``, train and
    run in the protocol like the built-in ones (same parts: the same numbers), and the CLI
    and the default lists see them."""
    from scflow.methods.static_ot import StaticOT

    @registry.register
    class MyOTCFM(methods.PairMethod):
        name, summary, plan_bytes, protocols = "my_otcfm", "mine", 42, ("leave_one_out",)

        def matcher(self, sigma):
            return scflow.otcfm(sigma)

    @registry.register
    class MyStatic(StaticOT):
        name, protocols, candidates = "my_static", (), ()

    mine = scflow.fit_flow(uneven_course, "my_otcfm", n_steps=30, progress=False)
    ref = scflow.fit_flow(uneven_course, "otcfm", n_steps=30, progress=False)
    np.testing.assert_array_equal(mine.meta["loss"], ref.meta["loss"])
    df = leave_one_out_tc(uneven_course, ["my_static", "static_ot"], seeds=(0, 1),
                          holdouts=[1])
    w1 = df.set_index(["method", "seed"])["w1"]
    assert w1["my_static", 0] == w1["static_ot", 0] == w1["my_static", 1]
    assert "my_otcfm" in _parser().parse_args(["fit", "a.h5ad", "--out", "b.h5ad", "--method",
                                               "my_otcfm"]).method
    assert "my_otcfm" in methods.default_methods("leave_one_out")


def test_uotcfm_is_one_class_with_its_capabilities():
    from scflow.methods.uotcfm import UOTCFM

    uot, mix = methods.get("uotcfm"), methods.get("static_mix")
    assert isinstance(uot, UOTCFM)
    assert (uot.kind, uot.shape, uot.learns_growth, uot.takes_mass, uot.has_score) == \
        ("neural", "pair", True, True, False)
    assert (mix.kind, mix.deterministic, mix.takes_mass) == ("static", True, True)


def test_uotcfm_trains_in_the_one_loop(uneven_course):
    """Keywords or a config give the same run; the loop's options (schedule, minibatch
    plans) apply to it as to every method; its growth loss is logged per step."""
    cfg = scflow.TrainConfig(n_steps=20, batch_size=16, reg_m=2.0)
    a = scflow.fit_flow(uneven_course, "uotcfm", config=cfg, random_state=1, progress=False)
    b = scflow.fit_flow(uneven_course, "uotcfm", n_steps=20, batch_size=16, reg_m=2.0,
                        random_state=1, progress=False)
    assert a.has_growth and a.meta["method"] == "uotcfm" and a.meta["reg_m"] == 2.0
    np.testing.assert_array_equal(a.meta["loss"], b.meta["loss"])
    assert a.meta["growth_loss"].shape == (20,)
    assert np.all(a.meta["growth_loss"] < a.meta["loss"])
    assert a.meta["coupling"] == "global"  # auto, on a small course
    mb = scflow.fit_flow(uneven_course, "uotcfm", n_steps=2, batch_size=16,
                         coupling="minibatch", progress=False)
    assert mb.meta["coupling"] == "minibatch" and mb.has_growth
    cos = scflow.fit_flow(uneven_course, "uotcfm", config=cfg.from_options(
        cfg, lr_schedule="cosine"), random_state=1, progress=False)
    assert cos.meta["lr_schedule"] == "cosine"
    assert not np.array_equal(cos.meta["loss"][5:], a.meta["loss"][5:])
    with pytest.raises(ValueError, match="coupling must be one of"):
        scflow.fit_flow(uneven_course, "uotcfm", n_steps=2, coupling="plans")
    with pytest.raises(ValueError, match="prior_times is read with growth_prior only"):
        scflow.fit_flow(uneven_course, "uotcfm", n_steps=2, prior_times=[0, 1, 2, 3])


def test_uotcfm_plans_are_shared_through_the_plan_cache(uneven_course):
    """Seeds and held-out timepoints reuse the cached growth plans; the cached fit equals
    the uncached one (same plan, same draws)."""
    cache = PlanCache()
    kw = dict(n_steps=15, batch_size=16, device="cpu", progress=False)
    a = scflow.fit_flow(uneven_course, "uotcfm", holdout=1, plan_cache=cache, **kw)
    assert (cache.solved, cache.reused) == (2, 0)
    scflow.fit_flow(uneven_course, "uotcfm", holdout=1, plan_cache=cache, random_state=1,
                    **kw)
    assert (cache.solved, cache.reused) == (2, 2)
    scflow.fit_flow(uneven_course, "uotcfm", holdout=2, plan_cache=cache, **kw)
    assert (cache.solved, cache.reused) == (4, 2)  # 0 -> 1 and 1 -> 3: new
    scflow.fit_flow(uneven_course, "uotcfm", plan_cache=cache, **kw)
    assert (cache.solved, cache.reused) == (5, 4)  # 0 -> 1 and 2 -> 3 shared, 1 -> 2 new
    b = scflow.fit_flow(uneven_course, "uotcfm", holdout=1, **kw)
    np.testing.assert_allclose(a.meta["loss"], b.meta["loss"], rtol=1e-6)
    # another mass is another plan
    scflow.fit_flow(uneven_course, "uotcfm", holdout=1, plan_cache=cache, mass="none", **kw)
    assert cache.solved == 7
