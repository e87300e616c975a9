"""Metric flow matching (Kapusniak et al., NeurIPS 2024): interpolants that stay on the data.

OT-CFM regresses a field onto straight lines between paired cells, which cut across empty
space between populations. Metric flow matching (MFM) bends them: a data-dependent diagonal
Riemannian metric ``G(x) = diag(g(x))`` is cheap where cells are and dear away from them, and
the interpolant between a pair ``(x0, x1)`` of an interval ``[t_a, t_b]`` (``s = (t - t_a) /
(t_b - t_a)``)

    x_t = (1 - s) x0 + s x1 + s (1 - s) phi(x0, x1, t)

is learned first, a network ``phi`` (:class:`GeodesicInterpolant`) trained to minimise the
metric's kinetic energy ``E |dx_t/dt|^2_G(x_t)`` along OT pairs (:func:`train_interpolant`,
the paper's Algorithm 1). The velocity field is then regressed onto ``u_t = dx_t/dt`` along
those interpolants, with the path noise of OT-CFM (:func:`sample`, their Algorithm 2). With
``phi = 0`` (or a flat metric, where straight lines are the geodesics) this is OT-CFM.

The metric (:func:`build_metric`): ``"land"`` (Arvanitidis et al. 2016, the paper's choice
for single cells): ``g_d(x) = (h_d(x) + rho)^-alpha``, ``h_d(x) = sum_n w_n(x) (x_nd -
x_d)^2``, ``w_n(x) = exp(-|x - x_n|^2 / (2 gamma^2))`` over the metric's cells; ``"rbf"``:
``g(x) = (h(x) + eps)^-alpha`` (one value for every dimension), ``h(x) = sum_k W_k
exp(-lambda_k |x - c_k|^2 / 2)`` over k-means centres ``c_k`` (``lambda_k = 1 / (2 (kappa
sigma_k)^2)``, ``sigma_k`` the RMS spread of cluster ``k``), ``W >= 1e-4`` fitted so that
``h = 1`` on the cells (least squares; the paper fits it by Adam); ``"flat"``: ``g = 1``.
Build it from the cells of training timepoints only (the paper: each interval's two ends).

Defaults and where they come from (paper: their code, ``configs/single_cell/5dims`` and
``mfm/train/parsers.py``): LAND ``gamma`` 0.125, ``rho`` 1e-3, ``alpha`` 2 (the single-cell
configs, whitened 5 PCs); RBF ``n_centers`` 100, ``kappa`` 1, ``eps`` 1e-3, ``alpha`` 1 (the
parser's defaults); the interpolant an MLP 64 x 3 with SELU taking ``(x0, x1, t)``, Adam at
lr 1e-4 on 128 pairs per interval and step (paper), path noise ``sigma`` 0.1 in both stages
(paper; OT-CFM's here). Not from the paper: ``phi``'s last layer starts at zero (an
untrained interpolant is OT-CFM's straight line; theirs starts random), pairs come from each
interval's global exact OT plan (theirs: minibatch plans), LAND's ``gamma_unit="knn"`` (a
bandwidth in units of the cells' spacing; the paper's absolute 0.125 suits dense data only)
and :data:`INTERPOLANT_STEPS` (the paper stops early on a validation split). Which metric and
bandwidth a fit should use was chosen on simulations, ``benchmarks/metric_flow.py``; the
module's defaults stay the paper's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import integer, number

__all__ = ["DataMetric", "LandMetric", "RBFMetric", "FlatMetric", "build_metric", "knn_distance",
           "GeodesicInterpolant", "IntervalPairs", "MetricSample", "interpolate", "sample",
           "kinetic_energy", "train_interpolant", "METRICS", "INTERPOLANT_STEPS",
           "INTERPOLANT_BATCH"]

METRICS = ("land", "rbf", "flat")
#: LAND defaults: the paper's single-cell configs (``gammas: 0.125``, ``rho: 0.001``,
#: ``alpha_metric: 2``), on whitened cells; ``gamma_unit`` ``"absolute"`` is theirs,
#: ``"knn"`` measures ``gamma`` in units of the cells' median distance to their
#: :data:`KNN`-th nearest neighbour (so that one value serves data of any density)
LAND_DEFAULTS = {"gamma": 0.125, "rho": 1e-3, "alpha": 2.0, "gamma_unit": "absolute"}
#: the neighbour whose distance is the unit of ``gamma_unit="knn"``, and the cells (at most)
#: it is measured on
KNN, KNN_CELLS = 10, 2000
#: RBF defaults: the paper's parser (``n_centers`` 100, ``kappa`` 1, ``rho`` 1e-3 as epsilon,
#: ``alpha_metric`` 1)
RBF_DEFAULTS = {"n_centers": 100, "kappa": 1.0, "eps": 1e-3, "alpha": 1.0}
#: the interpolant network (paper: ``hidden_dims_geopath`` 64 x 3, ``activation_geopath``
#: selu, ``geopath_lr`` 1e-4 with Adam)
INTERPOLANT_HIDDEN, INTERPOLANT_LR = (64, 64, 64), 1e-4
#: Adam steps of :func:`train_interpolant` (chosen on simulations, benchmarks/metric_flow.py)
#: and the pairs per interval per step (the paper's ``batch_size`` 128)
INTERPOLANT_STEPS, INTERPOLANT_BATCH = 1000, 128
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805  # torch.nn.SELU's
#: path noise of both stages (paper's ``sigma`` 0.1; OT-CFM's default here)
SIGMA = 0.1


class DataMetric(nn.Module):
    """A diagonal metric ``G(x) = diag(g(x))``; :meth:`forward` gives ``g``, ``(n, d)`` or
    ``(n, 1)`` (the same for every dimension)."""

    def cost(self, x: Tensor, u: Tensor) -> Tensor:
        """``|u|^2_G(x) = sum_d g_d(x) u_d^2`` per row."""
        return (self(x) * u.pow(2)).sum(-1)


class FlatMetric(DataMetric):
    """The Euclidean metric, ``g = 1``: straight lines are its geodesics."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.ones_like(x[:, :1])


class LandMetric(DataMetric):
    """LAND (Arvanitidis et al. 2016): small along the local spread of the cells near ``x``."""

    def __init__(self, cells: Tensor, gamma: float, rho: float, alpha: float) -> None:
        super().__init__()
        self.register_buffer("cells", cells.detach().clone())
        self.gamma, self.rho, self.alpha = gamma, rho, alpha

    def forward(self, x: Tensor) -> Tensor:
        diff = self.cells[None] - x[:, None]  # (n, N, d)
        # weights below exp(-80) (1.8e-35, far under rho) are cut there: they add nothing,
        # and float32 subnormals make the exp many times slower on CPUs
        w = torch.exp((-diff.pow(2).sum(-1) / (2 * self.gamma**2)).clamp(min=-80.0))
        h = torch.einsum("bn,bnd->bd", w, diff.pow(2))
        return (h + self.rho).pow(-self.alpha)


class RBFMetric(DataMetric):
    """``g(x) = (h(x) + eps)^-alpha``, ``h`` a sum of Gaussian bumps fitted to 1 on the cells."""

    def __init__(self, centres: Tensor, lam: Tensor, weights: Tensor, eps: float,
                 alpha: float) -> None:
        super().__init__()
        self.register_buffer("centres", centres)
        self.register_buffer("lam", lam)
        self.register_buffer("weights", weights)
        self.eps, self.alpha = eps, alpha

    def h(self, x: Tensor) -> Tensor:
        """The fitted density proxy (about 1 on the cells, 0 far from them), ``(n,)``."""
        return torch.exp(-0.5 * self.lam * torch.cdist(x, self.centres).pow(2)) @ self.weights

    def forward(self, x: Tensor) -> Tensor:
        return (self.h(x)[:, None] + self.eps).pow(-self.alpha)


def build_metric(kind: str, cells: Tensor | Sequence[Tensor], *, random_state: int = 0,
                 **params) -> DataMetric:
    """The data-dependent metric ``kind`` (:data:`METRICS`) of ``cells`` (one tensor, or
    several populations pooled), on their device and dtype.

    ``params``: LAND ``gamma``, ``rho``, ``alpha``, ``gamma_unit`` (:data:`LAND_DEFAULTS`;
    ``"knn"``: ``gamma`` times :func:`knn_distance` of the cells); RBF
    ``n_centers``, ``kappa``, ``eps``, ``alpha`` (:data:`RBF_DEFAULTS`; k-means by
    scikit-learn seeded by ``random_state``, weights by scipy's bounded least squares, once).
    Only the cells given are read: pass those of the training timepoints.
    """
    if kind not in METRICS:
        raise ValueError(f"kind must be one of {METRICS}, got {kind!r}")
    x = cells if isinstance(cells, Tensor) else torch.cat(list(cells))
    if x.ndim != 2 or len(x) < 2 or not bool(torch.isfinite(x).all()):
        raise ValueError(f"cells must be finite (n >= 2, d) points, got shape {tuple(x.shape)}")
    defaults = {"land": LAND_DEFAULTS, "rbf": RBF_DEFAULTS, "flat": {}}[kind]
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"params of the {kind!r} metric are {sorted(defaults)}, got {unknown}")
    p = {**defaults, **params}
    for name in ("gamma", "rho", "alpha", "kappa", "eps"):  # gamma_unit is checked below
        if name in p:
            number(p[name], name, lower=0, strict=True)
    if kind == "flat":
        return FlatMetric()
    if kind == "land":
        if p["gamma_unit"] not in ("absolute", "knn"):
            raise ValueError(f"gamma_unit must be 'absolute' or 'knn', got {p['gamma_unit']!r}")
        gamma = float(p["gamma"]) * (knn_distance(x, random_state=random_state)
                                     if p["gamma_unit"] == "knn" else 1.0)
        return LandMetric(x, gamma, float(p["rho"]), float(p["alpha"]))
    return _rbf(x, integer(p["n_centers"], "n_centers", lower=1), float(p["kappa"]),
                float(p["eps"]), float(p["alpha"]), random_state)


def knn_distance(cells: Tensor, k: int = KNN, *, max_cells: int = KNN_CELLS,
                 random_state: int = 0) -> float:
    """Median distance of the cells to their ``k``-th nearest neighbour (among at most
    ``max_cells`` of them, drawn with ``random_state``): the spacing of the data."""
    x = cells
    if len(x) > max_cells:
        g = torch.Generator(device=x.device).manual_seed(int(random_state))
        x = x[torch.randperm(len(x), generator=g, device=x.device)[:max_cells]]
    k = min(int(k), len(x) - 1)
    d = torch.cdist(x, x)
    return float(d.kthvalue(k + 1, dim=1).values.median())  # the first is the cell itself


def _rbf(x: Tensor, n_centers: int, kappa: float, eps: float, alpha: float,
         random_state: int) -> RBFMetric:
    from scipy.optimize import lsq_linear
    from sklearn.cluster import KMeans

    pts = x.detach().cpu().double().numpy()
    k = min(n_centers, len(np.unique(pts, axis=0)))
    km = KMeans(n_clusters=k, random_state=int(random_state), n_init=1).fit(pts)
    centres = km.cluster_centers_
    spread = np.array([np.sqrt(((pts[km.labels_ == c] - centres[c]) ** 2).mean())
                       for c in range(k)])
    # a cluster of one cell has no spread: give it the median one
    spread = np.where(spread > 0, spread, np.median(spread[spread > 0]) if (spread > 0).any()
                      else 1.0)
    lam = 1.0 / (2.0 * (kappa * spread) ** 2)
    phi = np.exp(-0.5 * lam[None] * ((pts[:, None] - centres[None]) ** 2).sum(-1))
    fit = lsq_linear(phi, np.ones(len(pts)), bounds=(1e-4, np.inf))
    if not fit.success:
        raise RuntimeError(f"RBF metric: the weights' least squares did not converge "
                           f"({fit.message})")
    as_t = lambda a: torch.as_tensor(a, dtype=x.dtype, device=x.device)  # noqa: E731
    return RBFMetric(as_t(centres), as_t(lam), as_t(fit.x), eps, alpha)


class GeodesicInterpolant(nn.Module):
    """``phi(x0, x1, t)``: the bend of the interpolant (an MLP on ``(x0, x1, t)``).

    ``t_range``: the model times the course spans; ``t`` is mapped onto ``[0, 1]`` from it
    (the paper's time axis). ``zero_init``: the last layer starts at zero, so an untrained
    interpolant is the straight line (not in the paper, see the module).
    """

    def __init__(self, dim: int, hidden: Sequence[int] = INTERPOLANT_HIDDEN, *,
                 t_range: tuple[float, float] = (0.0, 1.0), zero_init: bool = True) -> None:
        super().__init__()
        dim = integer(dim, "dim", lower=1)
        widths = [2 * dim + 1, *[integer(h, "hidden", lower=1) for h in hidden], dim]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.SELU()]
        self.net = nn.Sequential(*layers[:-1])
        if zero_init:
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)
        t0, t1 = (float(v) for v in t_range)
        if not t1 > t0:
            raise ValueError(f"t_range must be (start, end) with end > start, got {t_range!r}")
        self.dim, self.t0, self.t_len = dim, t0, t1 - t0

    def forward(self, x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
        tau = (t.reshape(-1, 1) - self.t0) / self.t_len
        return self.net(torch.cat([x0, x1, tau.to(x0.dtype)], dim=1))

    def with_time_derivative(self, x0: Tensor, x1: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(phi, d phi / dt)``: the tangent of ``t`` carried through the layers (the
        forward-mode derivative :func:`torch.func.jvp` gives, at about twice a forward's
        cost instead of its five here); differentiable."""
        tau = (t.reshape(-1, 1) - self.t0) / self.t_len
        a = torch.cat([x0, x1, tau.to(x0.dtype)], dim=1)
        da = None
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                # the time input is the last column: its tangent is 1 / t_len
                da = (layer.weight[:, -1] / self.t_len).expand(len(a), -1) if da is None \
                    else da @ layer.weight.T
                a = layer(a)
            else:  # SELU: its slope at the pre-activation
                slope = torch.where(a > 0, _SELU_SCALE, _SELU_SCALE * _SELU_ALPHA * torch.exp(a))
                a, da = layer(a), slope * da
        return a, da


class IntervalPairs(NamedTuple):
    """Pairs of one interval: ``x0[i]`` goes with ``x1[i]``, from model time ``t0`` to
    ``t1``."""

    x0: Tensor
    x1: Tensor
    t0: float
    t1: float


class MetricSample(NamedTuple):
    """What one interval gives a training step: model times, path points, target
    velocities (``d x_t / dt`` in model time)."""

    t: Tensor
    xt: Tensor
    ut: Tensor


def interpolate(phi: GeodesicInterpolant | None, x0: Tensor, x1: Tensor, s: Tensor,
                t0: float, t1: float) -> tuple[Tensor, Tensor]:
    """``(mu_t, d mu_t / dt)`` of the interpolant at local times ``s`` (``(n,)``, in
    ``[0, 1]``), i.e. model times ``t = t0 + s (t1 - t0)``.

    ``phi=None``: the straight line (OT-CFM's). The time derivative of ``phi`` is taken in
    forward mode (:meth:`GeodesicInterpolant.with_time_derivative`), differentiable for
    training.
    """
    span = float(t1) - float(t0)
    sc = s[:, None]
    mu, dmu = (1 - sc) * x0 + sc * x1, (x1 - x0) / span
    if phi is None:
        return mu, dmu
    t = t0 + s * span
    out, dout = phi.with_time_derivative(x0, x1, t)
    bend = sc * (1 - sc)
    return mu + bend * out, dmu + (1 - 2 * sc) / span * out + bend * dout


def sample(phi: GeodesicInterpolant | None, x0: Tensor, x1: Tensor, t0: float, t1: float, *,
           sigma: float = SIGMA, generator: torch.Generator | None = None,
           s: Tensor | None = None) -> MetricSample:
    """Path points and targets of one interval's pairs, for the velocity regression.

    Draws (unless ``s`` is given) the local time ``s ~ U[0, 1]``, then the noise ``eps ~
    N(0, I)``, as OT-CFM's matcher does; ``x_t = mu_t + sigma eps``, ``u_t = d mu_t / dt``
    (the noise is constant in time), ``t = t0 + s (t1 - t0)``. ``phi=None`` gives OT-CFM's
    samples for the same draws, bit for bit. No gradient reaches ``phi``.
    """
    if s is None:
        s = torch.rand(len(x1), generator=generator, device=x1.device, dtype=x1.dtype)
    eps = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    with torch.no_grad():
        mu, ut = interpolate(phi, x0, x1, s, t0, t1)
    return MetricSample(t0 + s * (float(t1) - float(t0)), mu + sigma * eps, ut)


def kinetic_energy(phi: GeodesicInterpolant | None, metrics: Sequence[DataMetric],
                   pairs: Sequence[IntervalPairs], batch_size: int,
                   generator: torch.Generator, sigma: float = SIGMA) -> tuple[Tensor, Tensor]:
    """The mean metric kinetic energy ``|u_t|^2_G(x_t)`` over ``batch_size`` pairs of each
    interval (drawn uniformly), and that of the straight lines on the same draws (for
    reference, no gradient). ``metrics``: one per interval."""
    costs, straight = [], []
    for metric, (x0, x1, t0, t1) in zip(metrics, pairs, strict=True):
        idx = torch.randint(len(x0), (batch_size,), generator=generator, device=x0.device)
        a, b = x0[idx], x1[idx]
        s = torch.rand(batch_size, generator=generator, device=a.device, dtype=a.dtype)
        noise = sigma * torch.randn(a.shape, generator=generator, device=a.device,
                                    dtype=a.dtype)
        mu, ut = interpolate(phi, a, b, s, t0, t1)
        costs.append(metric.cost(mu + noise, ut))
        with torch.no_grad():
            mu0, ut0 = interpolate(None, a, b, s, t0, t1)
            straight.append(metric.cost(mu0 + noise, ut0))
    return torch.cat(costs).mean(), torch.cat(straight).mean()


def train_interpolant(phi: GeodesicInterpolant, metrics: DataMetric | Sequence[DataMetric],
                      pairs: Sequence[IntervalPairs], *, n_steps: int | None = None,
                      batch_size: int | None = None, lr: float | None = None,
                      sigma: float | None = None, generator: torch.Generator,
                      progress=None) -> Tensor:
    """Train ``phi`` in place to minimise the kinetic energy along the given pairs.

    ``n_steps``, ``batch_size``, ``lr``, ``sigma``: ``None`` reads :data:`INTERPOLANT_STEPS`,
    :data:`INTERPOLANT_BATCH`, :data:`INTERPOLANT_LR` (the paper's batch and rate) and
    :data:`SIGMA` (the path noise).

    Each Adam step draws ``batch_size`` pairs of every interval (uniformly among those
    given, e.g. drawn from its exact OT plan), a time and the path noise, and minimises
    :func:`kinetic_energy` divided by the straight lines' on the same draws (the paper
    divides by a fixed reference; Adam's steps do not depend on the scale). Everything stays
    on the pairs' device; ``generator`` (on that device) makes it repeatable.

    ``progress``: a callable ``progress(n)`` told of every 10 finished steps, or ``None``.

    Returns the ratio of every step, ``(n_steps,)`` (below 1: cheaper than straight lines).
    A ratio that is not finite raises a ``RuntimeError`` naming the step.
    """
    n_steps = integer(INTERPOLANT_STEPS if n_steps is None else n_steps, "n_steps", lower=1)
    batch_size = integer(INTERPOLANT_BATCH if batch_size is None else batch_size,
                         "batch_size", lower=1)
    lr = number(INTERPOLANT_LR if lr is None else lr, "lr", lower=0, strict=True)
    sigma = number(SIGMA if sigma is None else sigma, "sigma", lower=0)
    if isinstance(metrics, DataMetric):
        metrics = [metrics] * len(pairs)
    if len(metrics) != len(pairs) or not pairs:
        raise ValueError(f"metrics must be one metric or one per interval ({len(pairs)}), "
                         f"got {len(metrics)}")
    opt = torch.optim.Adam(phi.parameters(), lr=lr)
    ratios = torch.zeros(n_steps, device=pairs[0].x0.device)
    phi.train()
    for step in range(n_steps):
        cost, straight = kinetic_energy(phi, metrics, pairs, batch_size, generator, sigma)
        loss = cost / straight
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ratios[step] = loss.detach()
        if progress is not None and (step + 1) % 10 == 0:
            progress(10)
    bad = ~torch.isfinite(ratios)
    if bool(bad.any()):
        raise RuntimeError(f"interpolant training diverged: the energy ratio is not finite "
                           f"from step {int(bad.nonzero()[0, 0]) + 1}; try a smaller lr")
    phi.eval()
    return ratios
