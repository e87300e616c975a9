"""Training: one loop for every method (:mod:`~scflow.training.loop`, :func:`fit_flow`),
what it draws each step (:mod:`~scflow.training.data`), the options
(:mod:`~scflow.training.config`, :class:`~scflow.TrainConfig`), checkpoints
(:mod:`~scflow.training.checkpoint`) and data-parallel training
(:mod:`~scflow.training.distributed`).

The loop is imported from its module (``scflow.training.loop``, or ``scflow.fit_flow``):
methods sit between the training data they build and the loop that trains them.
"""
