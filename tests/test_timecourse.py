"""TimeCourse: ordering of time labels, splitting, scaling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scflow.timecourse import TimeCourse, order_time_labels


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
    np.testing.assert_array_equal(tc.times, [0.0, 1.0, 3.0])
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
