"""FlowModel: serialisation to plain arrays, atomic save, safe load."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from scflow.flow.model import FORMAT_VERSION, FlowModel


@pytest.fixture
def model():
    torch.manual_seed(0)
    return FlowModel(3, (16, 16), score=True, sigma=0.4, meta={"method": "sbcfm",
                                                               "times": np.arange(3.0)})


def test_to_dict_is_plain_and_round_trips(model):
    d = model.to_dict()
    assert d["version"] == FORMAT_VERSION
    assert all(isinstance(v, np.ndarray) for v in d["weights"].values())
    again = FlowModel.from_dict(d)
    x, t = torch.randn(10, 3), torch.rand(10)
    torch.testing.assert_close(again.velocity(t, x), model.velocity(t, x), rtol=0, atol=0)
    torch.testing.assert_close(again.score(t, x), model.score(t, x), rtol=0, atol=0)
    assert again.sigma == 0.4 and again.meta["method"] == "sbcfm"


def test_save_load_round_trip_without_pickle(model, tmp_path):
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as z:  # nothing in the file needs pickle
        assert all(z[k].dtype != object for k in z.files)
    again = FlowModel.load(path)
    x = torch.randn(5, 3)
    torch.testing.assert_close(again.velocity(0.5, x), model.velocity(0.5, x), rtol=0, atol=0)
    np.testing.assert_array_equal(again.meta["times"], [0.0, 1.0, 2.0])


def test_save_is_atomic(model, tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_rejects_other_versions_shapes_and_formats(model, tmp_path):
    d = model.to_dict()
    with pytest.raises(ValueError, match="version"):
        FlowModel.from_dict({**d, "version": FORMAT_VERSION + 1})
    bad = {**d, "weights": dict(d["weights"])}
    key = next(iter(bad["weights"]))
    bad["weights"][key] = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="shape"):
        FlowModel.from_dict(bad)
    with pytest.raises(ValueError, match="not a scflow model"):
        FlowModel.from_dict({"format": "other"})
    path = tmp_path / "x.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a scflow model file"):
        FlowModel.load(path)
    header = {"format": "scflow.FlowModel", "version": 99, "config": {}, "meta": {}}
    np.savez(path, header=np.array(json.dumps(header)))
    with pytest.raises(ValueError, match="version 99"):
        FlowModel.load(path)


def test_velocity_checks_dimension(model):
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        model.velocity(0.0, torch.zeros(4, 2))
    no_score = FlowModel(3)
    with pytest.raises(ValueError, match="no score"):
        no_score.score(0.0, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="hidden"):
        FlowModel(3, (0,))


class _NoLargeAllocation(TorchDispatchMode):
    """Refuses (RuntimeError) any tensor of more than ``limit`` elements off the meta device."""

    def __init__(self, limit: int = 10**7) -> None:
        super().__init__()
        self.limit = limit

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        size = args[0] if args and isinstance(args[0], (list, tuple)) else None
        device = torch.device(kwargs.get("device") or "cpu")
        if (size is not None and all(isinstance(s, int) for s in size)
                and device.type != "meta" and math.prod(size) > self.limit):
            raise RuntimeError(f"{func} would allocate {math.prod(size):,} elements")
        return func(*args, **kwargs)


def test_from_dict_refuses_a_config_larger_than_its_arrays_before_allocating():
    """A crafted dict (dim 100,000, hidden 100,000: 40 GB of weights) with tiny arrays."""
    d = FlowModel(3, (16,)).to_dict()
    d["config"] = {**d["config"], "dim": 100_000, "hidden": [100_000]}
    with _NoLargeAllocation(), pytest.raises(ValueError, match=(
            r"weight 'velocity_net.net.0.weight' has shape \(16, 4\), but the config "
            r"\(dim 100000, hidden \[100000\]\) expects \(100000, 100001\)")):
        FlowModel.from_dict(d)


def test_from_dict_names_a_hidden_layer_that_does_not_match_the_config(model):
    d = model.to_dict()
    d["weights"]["score_net.net.2.weight"] = np.zeros((8, 16), dtype=np.float32)
    with pytest.raises(ValueError, match=r"weight 'score_net.net.2.weight' has shape \(8, 16\), "
                                         r"but the config \(dim 3, hidden \[16, 16\]\) expects "
                                         r"\(16, 16\)"):
        FlowModel.from_dict(d)
    good = FlowModel.from_dict(model.to_dict())  # the same guard lets a real model through
    x = torch.randn(4, 3)
    torch.testing.assert_close(good.velocity(0.3, x), model.velocity(0.3, x), rtol=0, atol=0)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_from_dict_refuses_non_finite_weights(model, value):
    d = model.to_dict()
    d["weights"]["velocity_net.net.2.bias"] = d["weights"]["velocity_net.net.2.bias"].copy()
    d["weights"]["velocity_net.net.2.bias"][3] = value
    with pytest.raises(ValueError, match=r"model weight 'velocity_net.net.2.bias' holds NaN or "
                                         r"infinite values"):
        FlowModel.from_dict(d)


@pytest.mark.parametrize("part", ["config", "weights"])
def test_from_dict_names_a_missing_part(model, part):
    d = model.to_dict()
    del d[part]
    with pytest.raises(ValueError, match=f"its '{part}' is missing or not a mapping"):
        FlowModel.from_dict(d)
    d[part] = "hostile"
    with pytest.raises(ValueError, match=f"its '{part}' is missing or not a mapping"):
        FlowModel.from_dict(d)


@pytest.mark.parametrize(("hidden", "match"), [
    ([16] * 400_000, r"'hidden' must list 1 to 1000 integer widths"),
    ([16] * 900, r"the config \(dim 3, 900 hidden layers\) needs 3604 arrays, 12 are stored"),
    (["16", "16"], r"'hidden' must list 1 to 1000 integer widths"),
    ([16, -1], r"'hidden' widths must be positive"),
])
def test_from_dict_checks_the_hidden_list_against_the_arrays_first(model, hidden, match):
    """A crafted config (400,000 layers with the arrays of two): refused from the sizes of
    what is stored, before a single layer is built."""
    d = model.to_dict()
    d["config"] = {**d["config"], "hidden": hidden}
    built = []
    real_init = FlowModel.__init__

    def spy(self, *args, **kwargs):
        built.append(args)
        real_init(self, *args, **kwargs)

    FlowModel.__init__ = spy
    try:
        with pytest.raises(ValueError, match=match):
            FlowModel.from_dict(d)
    finally:
        FlowModel.__init__ = real_init
    assert built == []


@pytest.mark.parametrize("hidden", ["128", 128, (64, 0), (64.0, 64.0), (True, 2), ()])
def test_hidden_must_be_a_sequence_of_positive_integer_widths(hidden):
    with pytest.raises(ValueError, match="hidden must be a"):
        FlowModel(3, hidden)
