"""Single-cell time courses as AnnData: real data, published benchmark files, simulations.

- Real data read from ``$SCFLOW_DATA_DIR`` and checked by sha256: :func:`emt` (10-D),
  :func:`emt_umap` (3-D), :func:`weinreb` (2-D), :func:`bargaje` (4-D),
  :func:`schiebinger_subset` (genes); :func:`larry` (LARRY in vitro, 2-D) with its clonal
  fate truth apart in :func:`larry_truth`.
- The TorchCFM benchmark files, from a path you give (or downloaded on request) and checked
  by sha256: :func:`eb`, :func:`cite`, :func:`multi`.
- :func:`simulate`: a bifurcating stochastic process with the true paths kept
  (:func:`true_paths`) and the true fate probability of every cell (:func:`true_fate`).

Every loader returns AnnData with ``obs["day"]`` (float) and
``uns["scflow_dataset"]["use_rep"]``, the ``obsm`` key to pass as ``use_rep``; the same
keys are in :data:`DEFAULT_REP`.
"""

from ._larry import PUBLISHED_FATE_METHODS, larry, larry_cospar, larry_truth
from ._published import cite, eb, multi
from ._real import DEFAULT_REP, bargaje, data_dir, emt, emt_umap, schiebinger_subset, weinreb
from ._simulate import simulate, true_fate, true_paths

__all__ = [
    "PUBLISHED_FATE_METHODS",
    "DEFAULT_REP",
    "bargaje",
    "cite",
    "data_dir",
    "eb",
    "emt",
    "emt_umap",
    "larry",
    "larry_cospar",
    "larry_truth",
    "multi",
    "schiebinger_subset",
    "simulate",
    "true_fate",
    "true_paths",
    "weinreb",
]
