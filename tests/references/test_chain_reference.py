"""The no-network roll-out reference: chained exact plans, barycentric projection."""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch

import scflow
from scflow.flow.timecourse import TimeCourse
from scflow.metrics import wasserstein
from scflow.references.chain import carry_first_cells, chain_images, static_chain_predict

SHIFT = torch.tensor([2.0, -1.0], dtype=torch.float64)


def _translated(n_timepoints: int = 4, n: int = 30) -> tuple[TimeCourse, torch.Tensor]:
    """Each timepoint: the first cells moved by ``r * SHIFT``, shuffled."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
    xs = [x0 if r == 0 else x0[torch.randperm(n, generator=g)] + r * SHIFT
          for r in range(n_timepoints)]
    x = torch.cat(xs).numpy()
    tc = TimeCourse.from_arrays(x, np.repeat(np.arange(n_timepoints), n), whiten=False)
    return tc, x0


def test_a_translation_is_carried_exactly():
    tc, x0 = _translated()
    for k in (1, 2, 3):
        expected = (x0 + k * SHIFT).float()
        torch.testing.assert_close(static_chain_predict(tc, k), expected, atol=1e-5,
                                   rtol=0)
    for k in (1, 2):  # held out, bridged: the straight line lands on it too
        pred = static_chain_predict(tc, k, holdout=k)
        torch.testing.assert_close(pred, (x0 + k * SHIFT).float(), atol=1e-5, rtol=0)
    # from another start (the leave-one-out form): the same straight carry
    torch.testing.assert_close(static_chain_predict(tc, 2, holdout=2, start=1),
                               tc.xs[1] + SHIFT.float(), atol=1e-5, rtol=0)
    # another timepoint held out: the chain skips it
    torch.testing.assert_close(static_chain_predict(tc, 3, holdout=1),
                               (x0 + 3 * SHIFT).float(), atol=1e-5, rtol=0)


def test_images_are_the_barycentres_of_each_step():
    """Unequal sizes: checked against POT on NumPy, step by step."""
    rng = np.random.default_rng(1)
    xs = [rng.normal(c, 0.5, size=(n, 2)) for c, n in (([0, 0], 20), ([2, 1], 33),
                                                       ([4, 0], 27))]
    images = chain_images(torch.as_tensor(xs[0]), [torch.as_tensor(x) for x in xs[1:]])
    cur = xs[0]
    for image, target in zip(images, xs[1:], strict=True):
        plan = ot.emd(np.full(len(cur), 1 / len(cur)), np.full(len(target), 1 / len(target)),
                      ot.dist(cur, target))
        cur = plan @ target / plan.sum(1, keepdims=True)
        np.testing.assert_allclose(image.numpy(), cur, rtol=1e-10, atol=1e-10)
        assert image.shape == (20, 2) and image.dtype == torch.float64
    # a barycentre of a plan that splits mass is inside the target cloud, not on a cell
    assert wasserstein(images[0], xs[1]) > 0


def test_held_out_cells_never_enter():
    tc, _ = _translated(5)
    noised = TimeCourse([torch.full_like(x, 50.0) if r == 2 else x
                         for r, x in enumerate(tc.xs)], tc.times, tc.labels, tc.values,
                        tc.mean, tc.scale)
    for k in (2, 3, 4):
        assert torch.equal(static_chain_predict(tc, k, holdout=2),
                           static_chain_predict(noised, k, holdout=2))
    assert not torch.equal(static_chain_predict(tc, 3), static_chain_predict(noised, 3))


def test_carried_cells_are_cells_of_the_target_and_seeded():
    rng = np.random.default_rng(2)
    sizes = (25, 40, 31)
    x = np.concatenate([rng.normal(r, 0.5, size=(n, 2)) for r, n in enumerate(sizes)])
    tc = TimeCourse.from_arrays(x, np.repeat([0, 1, 2], sizes), whiten=False)
    a = carry_first_cells(tc, 2, random_state=0)
    assert a.shape == (25, 2)
    # every carried point is one of the real cells of timepoint 2
    d = torch.cdist(a.double(), tc.xs[2].double()).min(1).values
    assert torch.all(d == 0)
    assert torch.equal(a, carry_first_cells(tc, 2, random_state=0))
    assert not torch.equal(a, carry_first_cells(tc, 2, random_state=1))
    b = carry_first_cells(tc, 2, holdout=1, random_state=0)  # straight 0 -> 2
    assert torch.all(torch.cdist(b.double(), tc.xs[2].double()).min(1).values == 0)
    assert torch.equal(carry_first_cells(tc, 0), tc.xs[0])
    with pytest.raises(ValueError, match="to must be a kept timepoint"):
        carry_first_cells(tc, 1, holdout=1)


def test_bad_input():
    tc, x0 = _translated(4)
    with pytest.raises(ValueError, match="k must be a timepoint index in 1..3"):
        static_chain_predict(tc, 0)
    with pytest.raises(ValueError, match="k must be a timepoint index in 3..3"):
        static_chain_predict(tc, 2, start=2)
    with pytest.raises(ValueError, match="holdout must be a timepoint index"):
        static_chain_predict(tc, 2, holdout=0)
    with pytest.raises(ValueError, match="last timepoint"):
        static_chain_predict(tc, 3, holdout=3)
    with pytest.raises(ValueError, match="targets must hold at least one"):
        chain_images(x0, [])


@pytest.mark.data
def test_emt_train_on_all_reference_matches_the_issue(data_dir):
    """Issue 21 measured .149 / .138 / .150 on EMT 10-D (raw units, index time)."""
    adata = scflow.datasets.emt()
    tc = TimeCourse.from_arrays(adata.obsm["X_latent"], adata.obs["day"], whiten=False)
    w = [wasserstein(static_chain_predict(tc, k), tc.xs[k]) for k in (1, 2, 3)]
    np.testing.assert_allclose(w, [0.149, 0.138, 0.150], atol=1e-3)
