"""Plots: read only from AnnData or result tables; accept ``ax=``, ``show=``, ``return_fig=``."""

from ._benchmark import leave_one_out

__all__ = ["leave_one_out"]
