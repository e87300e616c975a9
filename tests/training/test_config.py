"""TrainConfig: one definition of the training options, read by every entry point."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import scflow
from scflow import methods
from scflow.cli import _parser
from scflow.training.config import TrainConfig


def test_entry_points_take_their_defaults_from_trainconfig():
    from scflow.tl import fit

    default = TrainConfig()
    for fn in (scflow.fit_flow, fit):
        params = inspect.signature(fn).parameters
        for name in TrainConfig.names():
            if name in params:
                assert params[name].default == getattr(default, name), (fn.__name__, name)
    args = _parser().parse_args(["fit", "a.h5ad", "--out", "b.h5ad"])
    assert TrainConfig.from_args(args) == default


def test_command_line_options_map_onto_the_fields():
    args = _parser().parse_args(["benchmark", "--hidden", "8,4", "--ema", "0", "--n-steps",
                                 "7", "--spline", "pchip", "--window", "2"])
    cfg = TrainConfig.from_args(args)
    assert cfg.hidden == (8, 4) and cfg.ema is None and cfg.n_steps == 7
    assert (cfg.spline, cfg.window) == ("pchip", 2)
    args = _parser().parse_args(["fit", "a.h5ad", "--out", "b.h5ad", "--method", "uotcfm",
                                 "--reg", "0.2", "--reg-m", "5", "--growth-weight", "0.5"])
    cfg = TrainConfig.from_args(args)
    assert (args.method, cfg.reg, cfg.reg_m, cfg.growth_weight) == ("uotcfm", 0.2, 5.0, 0.5)


def test_unknown_or_doubled_options_are_refused():
    with pytest.raises(TypeError, match=r"unknown training option\(s\) \['n_step'\]"):
        TrainConfig.from_options(n_step=3)
    with pytest.raises(ValueError, match=r"not both \(keywords given: \['lr'\]\)"):
        TrainConfig.merge(TrainConfig(), {"lr": 0.1, "hidden": [64, 64, 64]})
    assert TrainConfig.merge(None, {"lr": 0.1}).lr == 0.1


def test_resolved_checks_and_fills_sigma_per_method():
    assert TrainConfig().resolved(methods.get("sbcfm")).sigma == 0.5
    assert TrainConfig(sigma=0.3).resolved(methods.get("otcfm")).sigma == 0.3
    with pytest.raises(ValueError, match="ema must be a decay"):
        TrainConfig(ema=1.5).resolved(methods.get("otcfm"))
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        TrainConfig(sigma=0.0).resolved(methods.get("sbcfm"))
    with pytest.raises(ValueError, match="coupling must be 'global' for method 'mmfm'"):
        TrainConfig(coupling="minibatch").resolved(methods.get("mmfm"))
    with pytest.raises(ValueError, match="method must be one of"):
        scflow.fit_flow(None, "static_ot")
    assert TrainConfig().resolved(methods.get("uotcfm")).sigma == 0.1
    with pytest.raises(ValueError, match="reg_m must be a finite number > 0"):
        TrainConfig(reg_m=0.0).resolved(methods.get("uotcfm"))
    with pytest.raises(ValueError, match="growth_weight must be a finite number >= 0"):
        TrainConfig(growth_weight=-1.0).resolved(methods.get("otcfm"))


def test_config_and_keywords_train_the_same_model(uneven_course):
    cfg = TrainConfig(n_steps=25, batch_size=32, lr=3e-3, hidden=(16, 16))
    a = scflow.fit_flow(uneven_course, "sbcfm", config=cfg, random_state=2, progress=False)
    b = scflow.fit_flow(uneven_course, "sbcfm", n_steps=25, batch_size=32, lr=3e-3,
                        hidden=(16, 16), random_state=2, progress=False)
    np.testing.assert_array_equal(a.meta["loss"], b.meta["loss"])
    with pytest.raises(ValueError, match="not both"):
        scflow.fit_flow(uneven_course, config=cfg, n_steps=5)
