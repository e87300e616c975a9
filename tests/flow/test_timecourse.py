"""TimeCourse: ordering of time labels, splitting, scaling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scflow.flow.timecourse import TimeCourse, order_time_labels


@pytest.mark.parametrize("labels,expected,values", [
    ([3.0, 1.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
    (["day 2", "day 10", "day 4"], ["day 2", "day 4", "day 10"], [2.0, 4.0, 10.0]),
    (["D3.5", "D0", "D1"], ["D0", "D1", "D3.5"], [0.0, 1.0, 3.5]),
])
def test_order_time_labels(labels, expected, values):
    ordered, vals = order_time_labels(labels)
    assert list(ordered) == expected
    np.testing.assert_array_equal(vals, values)


def test_ordered_categorical_keeps_its_order():
    cat = pd.Categorical(["late", "early", "mid"], categories=["early", "mid", "late"],
                         ordered=True)
    ordered, values = order_time_labels(pd.Series(cat))
    assert list(ordered) == ["early", "mid", "late"]
    np.testing.assert_array_equal(values, [0, 1, 2])


@pytest.mark.parametrize("labels,match", [
    (["a", "b"], "cannot be ordered"),
    ([1, "day 2"], "mix numbers and strings"),
    (["d1", "day1"], "same number"),
    ([1.0, np.nan], "missing"),
])
def test_unorderable_labels_raise(labels, match):
    with pytest.raises(ValueError, match=match):
        order_time_labels(pd.Series(labels, dtype=object))


def test_split_scale_and_times():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(60, 4))
    labels = np.repeat(["day 3", "day 0", "day 1"], 20)
    tc = TimeCourse.from_arrays(x, labels, n_dims=3, time_scale="real")
    assert [len(v) for v in tc.xs] == [20, 20, 20]
    assert list(tc.labels) == ["day 0", "day 1", "day 3"]
    # real time: days from the first, in units of the mean gap (1.5 days)
    np.testing.assert_array_equal(tc.times, [0.0, 2 / 3, 2.0])
    assert (tc.time_origin, tc.time_unit) == (0.0, 1.5)
    allx = np.concatenate([v.numpy() for v in tc.xs]).astype(np.float64)
    np.testing.assert_allclose(allx.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(allx.std(0), 1, atol=1e-5)
    # the first timepoint is the cells labelled "day 0", scaled
    np.testing.assert_allclose(tc.xs[0].numpy(), tc.transform(x[20:40]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tc.inverse_transform(tc.transform(x[:5])), x[:5, :3])
    index = TimeCourse.from_arrays(x, labels)
    np.testing.assert_array_equal(index.times, [0.0, 1.0, 2.0])


@pytest.mark.parametrize("kwargs,match", [
    (dict(n_dims=9), "n_dims must be between 1 and 4"),
    (dict(time_scale="log"), "time_scale"),
])
def test_bad_arguments(kwargs, match):
    x = np.zeros((6, 4))
    with pytest.raises(ValueError, match=match):
        TimeCourse.from_arrays(x, [0, 0, 0, 1, 1, 1], **kwargs)


def test_bad_data():
    x = np.ones((6, 2))
    with pytest.raises(ValueError, match="at least two timepoints"):
        TimeCourse.from_arrays(x, [0] * 6)
    with pytest.raises(ValueError, match="at least 2 are needed"):
        TimeCourse.from_arrays(x, [0, 0, 0, 0, 0, 1])
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        TimeCourse.from_arrays(x, [0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="5 time labels for 6 cells"):
        TimeCourse.from_arrays(np.ones((6, 2)), [0, 0, 0, 1, 1])


@pytest.mark.parametrize("labels,expected,values", [
    (["day-3", "day-1", "day-2"], ["day-1", "day-2", "day-3"], [1.0, 2.0, 3.0]),
    (["hour-12", "hour-0"], ["hour-0", "hour-12"], [0.0, 12.0]),
    (["t-2", "t-1", "t+3"], ["t-1", "t-2", "t+3"], [1.0, 2.0, 3.0]),
    (["d_-1", "d_2"], ["d_-1", "d_2"], [1.0, 2.0]),
    (["1", "-1", "+2"], ["-1", "1", "+2"], [-1.0, 1.0, 2.0]),
    (["day 2", "day -1.5"], ["day -1.5", "day 2"], [-1.5, 2.0]),
    (["dose 2e-3", "dose 1e-3"], ["dose 1e-3", "dose 2e-3"], [1e-3, 2e-3]),
])
def test_a_hyphen_after_a_word_is_a_separator_not_a_sign(labels, expected, values):
    ordered, vals = order_time_labels(labels)
    assert list(ordered) == expected
    np.testing.assert_array_equal(vals, values)


def test_hyphenated_labels_run_forward_in_real_time():
    x = np.arange(12, dtype=np.float64)[:, None]
    tc = TimeCourse.from_arrays(x, np.repeat(["day-1", "day-2", "day-3"], 4), whiten=False,
                                time_scale="real")
    np.testing.assert_array_equal(tc.times, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(tc.xs[0].numpy()[:, 0], [0, 1, 2, 3])


@pytest.mark.parametrize("categories,match", [
    (["d0", "d5", "late"], r"time_scale='real' needs a number in every time label, but 'late'"),
    (["d5", "d2", "d9"], r"time_scale='real': the order of the time label categories "
                         r"\['d5', 'd2', 'd9'\] and the numbers they hold \[5\.0, 2\.0, 9\.0\] "
                         r"disagree"),
    (["d1", "day1"], "disagree"),
])
def test_real_time_needs_increasing_numbers_in_ordered_categories(categories, match):
    cat = pd.Series(pd.Categorical(np.repeat(categories, 3), categories=categories,
                                   ordered=True))
    x = np.zeros((len(cat), 2))
    with pytest.raises(ValueError, match=match):
        order_time_labels(cat, time_scale="real")
    with pytest.raises(ValueError, match=match):
        TimeCourse.from_arrays(x, cat, time_scale="real")
    # index time needs no numbers: the categories' order is the time
    tc = TimeCourse.from_arrays(x, cat, time_scale="index")
    assert list(tc.labels) == categories
    np.testing.assert_array_equal(tc.times, np.arange(len(categories)))


def test_real_time_of_ordered_categories_with_increasing_numbers():
    cats = ["d0", "d2", "d7"]
    cat = pd.Categorical(np.repeat(cats, 3), categories=cats, ordered=True)
    tc = TimeCourse.from_arrays(np.zeros((9, 2)), pd.Series(cat), time_scale="real")
    np.testing.assert_array_equal(tc.times, [0.0, 2 / 3.5, 2.0])  # mean gap 3.5


def test_from_arrays_keeps_the_kind_of_each_label():
    x = np.zeros((4, 2))
    # np.asarray would turn [1, 1, "2", "2"] into four strings
    with pytest.raises(ValueError, match="mix numbers and strings"):
        TimeCourse.from_arrays(x, [1, 1, "2", "2"])
    with pytest.raises(ValueError, match="mix numbers and strings"):
        TimeCourse.from_arrays(x, np.asarray([1, 1, "2", "2"], dtype=object))
    # and an ordered categorical keeps its order
    cat = pd.Categorical(["late", "late", "early", "early"], categories=["late", "early"],
                         ordered=True)
    assert list(TimeCourse.from_arrays(x, cat).labels) == ["late", "early"]


def test_refit_scaler_fits_on_the_kept_cells_and_maps_back():
    """The scaler refitted without timepoint 1 is the one fitted on the other cells alone;
    cells in its units map back to the original units exactly (float32 rounding)."""
    rng = np.random.default_rng(3)
    x = rng.normal([5.0, -2.0], [3.0, 0.5], size=(90, 2))
    labels = np.repeat([0, 1, 2], 30)
    x[labels == 1] += 20.0  # the held-out cells move the all-cells scaler a lot
    tc = TimeCourse.from_arrays(x, labels, whiten=True)
    fit = tc.refit_scaler(1)
    kept = x[labels != 1]
    np.testing.assert_allclose(fit.mean, kept.mean(0), rtol=1e-12)
    np.testing.assert_allclose(fit.scale, kept.std(0), rtol=1e-12)
    alone = TimeCourse.from_arrays(kept, labels[labels != 1], whiten=True)
    for a, b in zip([fit.xs[0], fit.xs[2]], alone.xs, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(fit.mean, tc.mean)
    back = tc.from_course(fit.xs[1], fit)
    np.testing.assert_allclose(back.numpy(), tc.xs[1].numpy(), atol=1e-5)
    assert tc.from_course(tc.xs[0], tc) is tc.xs[0]  # same scaler: untouched
    raw = TimeCourse.from_arrays(x, labels, whiten=False)
    assert raw.refit_scaler(1) is raw  # a fixed scaler is never refitted
    with pytest.raises(ValueError, match="holdout"):
        tc.refit_scaler(3)
