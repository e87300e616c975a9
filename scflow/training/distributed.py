"""Data-parallel training on ``torch.distributed`` (several GPUs, processes or machines).

Launch with ``torchrun --nproc_per_node=N -m scflow fit ...`` or run a script under
``torchrun`` that calls :func:`init` (or passes ``distributed=True`` to
:func:`scflow.fit_flow`). Backend ``nccl`` on CUDA (one GPU per process, chosen by
``LOCAL_RANK``), ``gloo`` on the CPU.

What is shared and what is split
--------------------------------
Shared: the coupling. Every process loads the same time course, solves the same global
plans and then takes rank 0's plans (:func:`broadcast_plans`), so pairs come from the one
plan a single process would use, never from a per-process plan. Every process also draws
the same global batch with the same seeded generator.

Split: the network. Each process computes the loss on its own equal, contiguous slice of
the concatenated batch (:func:`shard`); ``DistributedDataParallel`` averages the gradients,
which is the gradient of the mean loss over the whole batch, and the logged loss is the
mean over processes. A run on ``N`` processes therefore follows the single-process run
with the same seed and batch, up to float rounding.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

if TYPE_CHECKING:  # pragma: no cover
    from ..couplings import DiscretePlan
    from ..flow.model import FlowModel

__all__ = [
    "DataParallel",
    "broadcast_plans",
    "check_batch_size",
    "check_device",
    "check_same_data",
    "destroy",
    "device_for",
    "init",
    "is_distributed",
    "is_main",
    "launched",
    "local_rank",
    "plans_of",
    "rank",
    "resolve",
    "same_start",
    "shard",
    "world_size",
]

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (its env vars are set)."""
    return all(v in os.environ for v in _TORCHRUN_VARS)


def is_distributed() -> bool:
    """Whether a process group of more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """Rank of this process in the default group (0 when there is none)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes in the default group (1 when there is none)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Whether this process is rank 0, the one that writes files."""
    return rank() == 0


def local_rank() -> int:
    """Rank of this process on its machine (``LOCAL_RANK``; 0 when unset)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def device_for(device: str | torch.device) -> torch.device:
    """The device of this process: ``cuda`` without an index becomes ``cuda:LOCAL_RANK``."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        n = torch.cuda.device_count()
        if n == 0:
            raise ValueError("device='cuda' was asked for but CUDA is not available")
        device = torch.device("cuda", local_rank() % n)
    return device


def init(backend: str | None = None, device: str | torch.device = "auto") -> bool:
    """Initialise the default process group from ``torchrun``'s environment variables.

    Parameters
    ----------
    backend
        ``"nccl"`` or ``"gloo"``; default ``nccl`` when the device is CUDA, else ``gloo``.
    device
        The training device (``"auto"``: CUDA when available). On CUDA this process is
        bound to GPU ``LOCAL_RANK``.

    Returns
    -------
    ``True`` if this call created the group (the caller then owns it: :func:`destroy`),
    ``False`` if one already existed.

    Raises
    ------
    ValueError
        If the process was not launched by ``torchrun`` (``RANK``, ``WORLD_SIZE`` and
        ``LOCAL_RANK`` unset) and no group exists, or ``backend`` is unknown.
    """
    if not dist.is_available():
        raise ValueError("torch.distributed is not available in this build of torch")
    if dist.is_initialized():
        return False
    if not launched():
        raise ValueError("no process group: launch with torchrun (which sets RANK, "
                         "WORLD_SIZE and LOCAL_RANK) or call "
                         "torch.distributed.init_process_group first")
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = device_for(device)
    if backend is None:
        backend = "nccl" if dev.type == "cuda" else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl' or 'gloo', got {backend!r}")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend=backend)
    return True


def destroy(barrier: bool = True) -> None:
    """Tear down the default process group, if there is one.

    Parameters
    ----------
    barrier
        Wait for every rank first, so no rank leaves while another is still in a collective
        (``False`` on an error path, where a rank that failed may never get there). Objects
        that still hold the group (DDP's reducer sits in reference cycles) are collected
        before the group goes, not at interpreter exit, where gloo's threads can abort the
        process.
    """
    if dist.is_available() and dist.is_initialized():
        if barrier:
            dist.barrier()
        gc.collect()
        dist.destroy_process_group()


def resolve(distributed: bool | None, device: str | torch.device = "auto") -> bool:
    """Whether to train data-parallel, given ``fit_flow``'s ``distributed`` argument.

    ``None``: when a group of more than one process is initialised. ``True``: always,
    initialising the group from ``torchrun``'s variables if needed. ``False``: never.
    """
    if distributed is None:
        return is_distributed()
    if not isinstance(distributed, bool):
        raise ValueError(f"distributed must be True, False or None, got {distributed!r}")
    if distributed and not (dist.is_available() and dist.is_initialized()):
        if not launched():
            raise ValueError("distributed=True needs a process group: launch with torchrun "
                             "or call torch.distributed.init_process_group first")
        init(device=device)
    return distributed


def check_device(device: torch.device) -> None:
    """Refuse a device the group's backend cannot communicate on."""
    backend = dist.get_backend()
    if backend == "nccl" and device.type != "cuda":
        raise ValueError(f"device={str(device)!r}, but the process group uses nccl, which "
                         "needs CUDA tensors; use device='cuda' or a gloo group")


def check_batch_size(batch_size: int, n: int | None = None) -> None:
    """``batch_size`` must split into equal slices, one per process."""
    n = world_size() if n is None else n
    if batch_size % n:
        raise ValueError(f"batch_size={batch_size} must be divisible by the number of "
                         f"processes ({n}) so that each process gets an equal slice of the "
                         "global batch")


def _fingerprint(xs: Sequence[Tensor]) -> Tensor:
    """Per timepoint: cell count, sum, and a position-weighted sum (order sensitive)."""
    rows = []
    for x in xs:
        s = x.detach().to(torch.float64).sum(1)
        w = torch.arange(1, len(s) + 1, dtype=torch.float64, device=s.device)
        rows.append(torch.stack([s.new_tensor(float(len(s))), s.sum(), (s * w).sum()]))
    return torch.stack(rows)


def check_same_data(xs: Sequence[Tensor]) -> None:
    """Every process must hold the same cells in the same order (pairs are indices)."""
    if not is_distributed():
        return
    n = torch.tensor([float(len(xs))], dtype=torch.float64, device=xs[0].device)
    lo, hi = n.clone(), n.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    same = bool(lo == hi)
    if same:
        f = _fingerprint(xs)
        lo, hi = f.clone(), f.clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        same = bool(torch.allclose(lo, hi, rtol=1e-9, atol=1e-9))
    if not same:
        raise ValueError("the processes hold different time courses; every process must load "
                         "the same cells in the same order (same file, same options)")


def _broadcast_tensor(t: Tensor, src: int = 0) -> Tensor:
    shape = torch.tensor(list(t.shape), dtype=torch.int64, device=t.device)
    dist.broadcast(shape, src)
    out = t.contiguous() if rank() == src else torch.empty(
        torch.Size(shape.tolist()), dtype=t.dtype, device=t.device)
    dist.broadcast(out, src)
    return out


def broadcast_plans(plans: Iterable[DiscretePlan | None], src: int = 0) -> None:
    """Replace every process's plans by those of rank ``src``, in place.

    Each process has solved the same deterministic plans; taking rank 0's makes them
    identical to the bit whatever the solver's rounding, so all processes draw the same
    pairs. A plan holds only its positive entries, so this sends O(nnz), not O(n m).
    """
    if not is_distributed():
        return
    for plan in plans:
        if plan is None:
            continue
        for name in sorted(vars(plan)):
            value = getattr(plan, name)
            if isinstance(value, Tensor):
                setattr(plan, name, _broadcast_tensor(value, src))
        plan.shape = tuple(int(v) for v in _broadcast_tensor(
            torch.tensor(plan.shape, device=plan.cdf.device), src).tolist())


def plans_of(data: Any) -> list[DiscretePlan | None]:
    """The global plans held by ``fit_flow``'s training data
    (:class:`scflow.training.data.TrainingData`: ``data.plans()``)."""
    return list(data.plans())


def same_start(step: int, device: torch.device) -> int:
    """The step every process resumes from; refuses processes that disagree."""
    if not is_distributed():
        return step
    s = torch.tensor([step], dtype=torch.int64, device=device)
    lo, hi = s.clone(), s.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if int(lo) != int(hi):
        raise ValueError(f"checkpoint: the processes resumed from different steps "
                         f"({int(lo)} to {int(hi)}); the checkpoint file must be readable by "
                         "every process (a shared file system)")
    return step


def shard(x: Tensor | None, rank_: int, world: int) -> Tensor | None:
    """Rows ``[rank * n / world, (rank + 1) * n / world)`` of ``x`` (``None`` stays ``None``).

    Raises
    ------
    ValueError
        If the rows do not split into ``world`` equal slices.
    """
    if x is None:
        return None
    n = len(x)
    if n % world:
        raise ValueError(f"{n} rows do not split into {world} equal slices; batch_size must "
                         "be divisible by the number of processes")
    k = n // world
    return x[rank_ * k:(rank_ + 1) * k]


class _Fields(nn.Module):
    """Velocity, score and growth in one ``forward``, so DDP sees every parameter used."""

    def __init__(self, model: FlowModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, t: Tensor, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        v = self.model.velocity(t, x)
        return (v, self.model.score(t, x) if self.model.has_score else None,
                self.model.growth(t, x) if self.model.has_growth else None)


class DataParallel:
    """A :class:`~scflow.FlowModel` under ``DistributedDataParallel``, with its slice.

    Parameters
    ----------
    model
        The model, already on ``device``; its parameters are shared, not copied, so the
        optimiser and the weight average built on them keep working.
    device
        This process's device.
    """

    def __init__(self, model: FlowModel, device: torch.device) -> None:
        from torch.nn.parallel import DistributedDataParallel as DDP

        if not (dist.is_available() and dist.is_initialized()):
            raise ValueError("DataParallel needs an initialised process group (see init)")
        check_device(device)
        self.model = model
        self.rank, self.world = rank(), world_size()
        ids = [device.index] if device.type == "cuda" else None
        self.ddp = DDP(_Fields(model), device_ids=ids)

    def __call__(self, t: Tensor, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Velocity (and score, growth) on this process's rows, through DDP's gradient
        hooks."""
        return self.ddp(t, x)

    def shard(self, *tensors: Tensor | None) -> tuple[Tensor | None, ...]:
        """This process's equal, contiguous slice of each tensor."""
        return tuple(shard(x, self.rank, self.world) for x in tensors)

    def mean(self, value: Tensor) -> Tensor:
        """Mean of ``value`` over the processes (a new tensor)."""
        out = value.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out / self.world
