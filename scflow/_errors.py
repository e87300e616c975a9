"""Exceptions of scflow's own (shared by the training loop and its checkpoints)."""

from __future__ import annotations

__all__ = ["TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """Training stopped because the loss (or the weights) stopped being finite, or exploded.

    Raised by :func:`scflow.fit_flow` (and so by :func:`scflow.tl.fit`, the command line and
    the benchmarks) instead of returning, saving or checkpointing a model of NaN weights.

    Attributes
    ----------
    step
        The first training step (1-based) whose loss was not finite or exploded; ``None``
        when only the weights were found non-finite.
    loss
        That step's loss (``nan``, ``inf`` or the exploded value), or ``None``.
    """

    def __init__(self, message: str, *, step: int | None = None,
                 loss: float | None = None) -> None:
        super().__init__(message)
        self.step, self.loss = step, loss
