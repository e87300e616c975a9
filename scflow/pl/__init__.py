"""Plots: read only from AnnData or result tables; accept ``ax=``, ``show=``, ``return_fig=``.

Computing and plotting are separate: run the matching ``scflow.tl`` function first; a plot
whose input is missing raises a ``KeyError`` naming it.
"""

from ._benchmark import error_budget, leave_one_out
from ._fate import fate
from ._fit import holdout, loss
from ._flow import trajectories, velocity_stream
from ._trends import gene_trends

__all__ = ["error_budget", "fate", "gene_trends", "holdout", "leave_one_out", "loss",
           "trajectories", "velocity_stream"]
