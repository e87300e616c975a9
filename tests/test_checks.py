"""The shared argument checks: what they accept, and the message they give for the rest."""

import re

import numpy as np
import pytest

from scflow._checks import integer, is_number, number, positive_int, seed
from scflow.couplings import EntropicOT, UnbalancedOT
from scflow.flow.integrate import integrate
from scflow.flow.model import FlowModel
from scflow.flow.timecourse import TimeCourse
from scflow.paths import BrownianBridgePath, LinearPath, SplinePath
from scflow.protocols.error_budget import error_budget_tc
from scflow.references import static_mean_spline_interpolant
from scflow.training.loop import fit_flow


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3)])
def test_integer_returns_a_python_int(value):
    out = integer(value, "n", lower=1, upper=3)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (0, {"lower": 1}, "n must be a positive integer, got 0"),
        (-1, {"lower": 0}, "n must be a non-negative integer, got -1"),
        (1, {"lower": 2}, "n must be an integer of at least 2, got 1"),
        (5, {"lower": 1, "upper": 4}, "n must be an integer in 1..4, got 5"),
        (5, {"upper": 4}, "n must be an integer of at most 4, got 5"),
        (2.0, {}, "n must be an integer, got 2.0"),
        (True, {}, "n must be an integer, got True"),
        (np.bool_(True), {"lower": 1}, "n must be a positive integer"),
        ("3", {"lower": 1}, "n must be a positive integer, got '3'"),
        (None, {"lower": 1, "expected": "a positive integer or None"},
         "n must be a positive integer or None, got None"),
    ],
)
def test_integer_refuses_with_the_argument_named(value, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        integer(value, "n", **kwargs)


def test_positive_int_and_seed():
    assert positive_int(np.int16(7), "k") == 7
    assert seed(-5) == -5
    with pytest.raises(ValueError, match="k must be a positive integer"):
        positive_int(0, "k")
    with pytest.raises(ValueError, match="random_state must be an integer"):
        seed(1.5)


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.5), np.int64(2)])
def test_number_returns_a_python_float(value):
    out = number(value, "x", lower=0, strict=True)
    assert out == float(value) and type(out) is float


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (0.0, {"lower": 0, "strict": True}, "x must be a finite number > 0, got 0.0"),
        (-0.1, {"lower": 0}, "x must be a finite number >= 0, got -0.1"),
        (float("nan"), {}, "x must be a finite number, got nan"),
        (float("inf"), {"lower": 0}, "x must be a finite number >= 0, got inf"),
        (True, {}, "x must be a finite number, got True"),
        ("0.1", {}, "x must be a finite number, got '0.1'"),
        (None, {"lower": 0}, "x must be a finite number >= 0, got None"),
    ],
)
def test_number_refuses_with_the_argument_named(value, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        number(value, "x", **kwargs)


def test_is_number_agrees_with_number():
    values = [0.5, 0, -1, np.float32(2), np.int64(3), True, np.bool_(True), "1", None,
              float("nan"), float("inf")]
    for lower, strict in [(None, False), (0, False), (0, True)]:
        for v in values:
            try:
                number(v, "x", lower=lower, strict=strict)
                refused = False
            except ValueError:
                refused = True
            assert is_number(v, lower=lower, strict=strict) is not refused, (v, lower, strict)
    assert is_number(np.float64(1e-9), lower=0, strict=True)
    assert not is_number(0.0, lower=0, strict=True)


@pytest.mark.parametrize(
    ("call", "message"),
    [  # each used to raise a TypeError from the comparison, or to accept a bool
        (lambda: LinearPath(sigma="0.1"), "sigma must be a finite number >= 0, got '0.1'"),
        (lambda: BrownianBridgePath(sigma=None), "sigma must be a finite number > 0, got None"),
        (lambda: SplinePath(sigma=True), "sigma must be a finite number >= 0, got True"),
        (lambda: EntropicOT(reg="1"), "reg must be a finite number > 0, got '1'"),
        (lambda: UnbalancedOT(reg_m=0), "reg_m must be a finite number > 0, got 0"),
    ],
    ids=["linear-sigma", "bridge-sigma", "spline-sigma", "entropic-reg", "unbalanced-reg_m"],
)
def test_paths_and_couplings_check_their_numbers(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.fixture
def small_tc():
    rng = np.random.default_rng(0)
    return TimeCourse.from_arrays(rng.normal(size=(60, 2)), np.repeat([0, 1, 2], 20))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda tc: FlowModel(2.5), "dim must be a positive integer, got 2.5"),
        (lambda tc: SplinePath(window=2.0), "window must be a positive integer or None, got 2.0"),
        (lambda tc: fit_flow(tc, n_steps=10.5), "n_steps must be a positive integer, got 10.5"),
        (lambda tc: integrate(FlowModel(2), tc.xs[0], 0.0, 1.0, n_steps=2.7),
         "n_steps must be a positive integer, got 2.7"),
        (lambda tc: fit_flow(tc, batch_size=0), "batch_size must be a positive integer, got 0"),
        (lambda tc: fit_flow(tc, holdout=1.5, n_steps=2),
         "holdout must be an interior timepoint index (1..1), got 1.5"),
        (lambda tc: static_mean_spline_interpolant(tc, True),
         "k must be an interior timepoint index (1..1), got True"),
        (lambda tc: tc.interior_index(2, "holdout"),
         "holdout must be an interior timepoint index (1..1), got 2"),
        (lambda tc: error_budget_tc(tc, n_fractions=1),
         "n_fractions must be an integer of at least 2"),
    ],
    ids=["model-dim", "spline-window", "fit-n_steps", "integrate-n_steps", "fit-batch_size",
         "fit-float-holdout", "mean-spline-bool-k", "interior-end", "budget-n_fractions"],
)
def test_engine_entry_points_share_the_check(small_tc, call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call(small_tc)
