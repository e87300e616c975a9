"""Published numbers to print beside scflow's, on the same protocols and files.

Leave one timepoint out (TorchCFM's protocol; W1, 5 whitened PCs, mean over held-out
timepoints): Tong et al. (2024) *Improving and generalizing flow-based generative models
with minibatch optimal transport*, TMLR, Table 4; best known: Kapusniak et al. (2024)
*Metric Flow Matching*.

Roll-out from the first timepoint (raw units, index time, W1 at each later timepoint):
Var-RUOT and CytoBridge (NeurIPS 2025), on the exact EMT 10-D (``emt.csv``) and mouse 2-D
(``mouse_hematopoiesis.csv``) files that :func:`scflow.datasets.emt` and
:func:`scflow.datasets.weinreb` load.
"""

from __future__ import annotations

__all__ = ["LEAVE_ONE_OUT", "ROLLOUT", "ROLLOUT_HOLDOUT"]

#: data set -> method -> mean held-out W1 (5 whitened PCs)
LEAVE_ONE_OUT: dict[str, dict[str, float]] = {
    "eb": {"otcfm": 0.790, "icfm": 0.872, "sbcfm": 1.221, "Metric FM (best known)": 0.713},
    "cite": {"otcfm": 0.882, "icfm": 0.965, "sbcfm": 1.067, "Metric FM (best known)": 0.724},
    "multi": {"otcfm": 0.937, "icfm": 1.085, "sbcfm": 1.129, "Metric FM (best known)": 0.890},
}

#: data set -> method -> W1 at timepoints 1, 2, ... (train on all, roll out from t0)
ROLLOUT: dict[str, dict[str, tuple[float, ...]]] = {
    "emt": {"OT-CFM": (.2557, .2701, .2799), "SF2M": (.2566, .2811, .2900),
            "MIOFlow": (.2439, .2665, .2841), "TIGON": (.2433, .2661, .2847),
            "DeepRUOT": (.2902, .3193, .3291), "Var-RUOT": (.2540, .2670, .2683)},
    "weinreb": {"OT-CFM": (.3674, .3222), "SF2M": (.1706, .1602),
                "MIOFlow": (.3546, .2772), "TIGON": (.4498, .4368),
                "DeepRUOT": (.1456, .1469), "Var-RUOT": (.1200, .1431)},
}

#: data set -> method -> W1 at the held-out timepoint 1, 2, ... (hold-one-out roll-out)
ROLLOUT_HOLDOUT: dict[str, dict[str, tuple[float, ...]]] = {
    "emt": {"Var-RUOT": (.3018, .3375, .4082)},
    "weinreb": {"Var-RUOT": (.2696, .2594)},
}
