"""Tools on AnnData, scanpy style."""

from ._benchmark import leave_one_out

__all__ = ["leave_one_out"]
