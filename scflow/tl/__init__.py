"""Tools on AnnData, scanpy style: fit a flow, then read velocities, paths and fates off it.

Every tool takes ``adata`` first and keyword-only options; the ones that write return
``None`` (or the modified copy with ``copy=True``) and validate everything before writing.
"""

from .._adata.store import load_model
from ._benchmark import error_budget, leave_one_out
from ._drivers import fate_drivers
from ._fate import fate
from ._fate_compute import fate_readouts
from ._fit import fit
from ._gene_trends import gene_trends
from ._growth import growth
from ._growth_prior import growth_prior
from ._trajectories import predict, trajectories
from ._transitions import transition_matrix
from ._velocity import velocity

__all__ = ["error_budget", "fate", "fate_drivers", "fate_readouts", "fit", "gene_trends", "growth",
           "growth_prior", "leave_one_out", "load_model", "predict", "trajectories",
           "transition_matrix", "velocity"]
