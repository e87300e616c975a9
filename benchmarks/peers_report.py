"""The leave-one-out table of ``benchmarks/peers.py``, re-scored from the caches.

Every cloud of one held-out timepoint (moscot's, scflow's default, static OT) is scored on
the same bootstrap draws (:func:`peers_core.score_rows`), so the differences between rows
are paired. scflow's row is the one of ``tl.fit``'s default *now* (read from its
signature): when the default changed since the caches were made, the table says that its
row is missing and which command fills it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import peers_core as core

from scflow.protocols.intervals import format_w1

LABELS = {"moscot_default": "moscot, default epsilon",
          "moscot_nested": "moscot, epsilon chosen without k"}


def _rows_order(default_row: str) -> list[str]:
    return ["moscot_default", "moscot_nested", default_row, "scflow_static_ot"]


def _holdouts(name: str, folder) -> list[int]:
    ks = []
    for p in folder.glob(f"loo_{name}_k*.npz"):
        m = re.fullmatch(rf"loo_{re.escape(name)}_k(\d+)", p.stem)
        if m:
            ks.append(int(m.group(1)))
    return sorted(ks)


def score_set(name: str, load_set: Callable, *, n_boot: int, folder=core.CACHE) -> list[dict]:
    """Every cached held-out timepoint of ``name``, scored (one entry per ``k``)."""
    default_row = f"scflow_{core.scflow_default()}"
    out = []
    for k in _holdouts(name, folder):
        clouds, facts = core.load_cache(name, k, folder)
        tc = load_set(name, k)
        if core.digest(tc.xs[k]) != facts.get("real_digest"):
            raise ValueError(f"the cache of {name} k={k} was made for other held-out cells; "
                             "re-run `peers.py loo` for it")
        pairs = [(default_row, "moscot_default"), (default_row, "moscot_nested"),
                 (default_row, "scflow_static_ot"), ("moscot_nested", "scflow_static_ot")]
        npz = core.cache_paths(name, k, folder)[0]
        # scored once per cache content, number of draws and default (re-scored on change)
        tag = hashlib.sha256(npz.read_bytes() + f"{n_boot}{pairs}".encode()).hexdigest()
        memo = npz.with_suffix(".scores.json")
        old = json.loads(memo.read_text()) if memo.is_file() else {}
        if old.get("tag") == tag:
            scored = old["scored"]
        else:
            scored = core.score_rows(clouds, tc.xs[k].numpy(), n_boot=n_boot, pairs=pairs)
            memo.write_text(json.dumps({"tag": tag, "scored": scored}, default=_plain) + "\n")
        from scflow.metrics import sampling_floor

        out.append({"dataset": name, "holdout_index": k, "holdout": str(tc.labels[k]),
                    "n_real": len(tc.xs[k]), "floor": float(sampling_floor(tc.xs[k])),
                    "default_row": default_row, "missing": [r for r in _rows_order(
                        default_row) if r not in clouds], **scored,
                    "facts": facts["rows"]})
    return out


def _fmt(rows: Mapping, name: str, facts: Mapping | None = None) -> str:
    if name not in rows:
        status = (facts or {}).get(name, {}).get("status")
        return f"not scored: {status}" if status else "missing"
    row = rows[name]
    return format_w1(row["w1"], row["lo"], row["hi"])


def _diff(d: Mapping | None) -> str:
    if d is None:
        return "–"
    mark = " **" + ("scflow better" if d["hi"] < 0 else "scflow worse") + "**" \
        if d["separated"] else ""
    return f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]{mark}"


def _eps(facts: Mapping) -> str:
    eps = facts.get("epsilon")
    conv = "" if facts.get("converged", True) else " (did not converge)"
    return "–" if eps is None else f"{eps:g}{conv}"


def markdown(entries: Sequence[dict], command: str) -> str:
    lines = ["## scflow beside moscot: leave one timepoint out (same cells, same run)", "",
             f"`{command}` (clouds cached under `benchmarks/results/peers/`; `python "
             "benchmarks/peers.py report` re-scores them)", "",
             "Whitened by a scaler fitted on the kept cells only (Schiebinger: its 30 PCs "
             "too), index time, held-out timepoint k predicted from k-1 and k+1 (every cell of "
             "k-1 pushed, or as many drawn from moscot's coupling), exact W1 against all cells "
             "of k. W1 is the mean over seeds (scflow's default and moscot: seeds 0, 1, 2 of "
             "the fit or of moscot's sampling; static OT: deterministic) with a 95% bootstrap "
             "interval over cells; every row of one held-out time is scored on the same "
             "bootstrap draws, so the differences are paired (their 95% interval; bold where "
             "it excludes 0). moscot: `TemporalProblem` on the kept neighbours, solved with "
             "its defaults (tau 1, scale_cost 'mean'), cells drawn by its own "
             "interpolation (`_interpolate_gex_with_ot`, the code of "
             "`compute_interpolated_distance`); epsilon: moscot's default 0.001, and the "
             "value of (0.001, 0.01, 0.05, 0.1) with the lowest mean W1 over an inner "
             "leave-one-out on the kept timepoints (k never read; with two kept timepoints, "
             "chosen on a development simulation).", "",
             "| data | held-out (index) | scflow default | W1 scflow default | W1 moscot "
             "default eps | W1 moscot chosen eps (eps) | W1 static_ot | scflow default - "
             "moscot default | scflow default - moscot chosen | floor |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        r, d, f = e["rows"], e["diffs"], e["facts"]
        dr = e["default_row"]
        lines.append(
            f"| {e['dataset']} | {e['holdout']} ({e['holdout_index']}) | "
            f"{dr.removeprefix('scflow_')} | {_fmt(r, dr)} | {_fmt(r, 'moscot_default', f)}"
            f"{'' if f.get('moscot_default', {}).get('converged', True) else ' (not converged)'}"
            f" | {_fmt(r, 'moscot_nested', f)} ({_eps(f.get('moscot_nested', {}))}) | "
            f"{_fmt(r, 'scflow_static_ot')} | {_diff(d.get(f'{dr} - moscot_default'))} | "
            f"{_diff(d.get(f'{dr} - moscot_nested'))} | {e['floor']:.3f} |")
    missing = [f"{e['dataset']} k={e['holdout_index']}: {', '.join(e['missing'])}"
               for e in entries if e["missing"]]
    if missing:
        lines += ["", "Rows missing from the caches (scflow's default changed since they were "
                  "made? run `python benchmarks/peers.py loo --scflow-only --datasets ...`): "
                  + "; ".join(missing) + "."]
    lines += ["", "How moscot's epsilon was chosen, per held-out time:", ""]
    for e in entries:
        f = e["facts"].get("moscot_nested", {})
        lines.append(f"- {e['dataset']} k={e['holdout_index']}: epsilon {_eps(f)}: "
                     f"{f.get('why', '–')}")
    return "\n".join(lines) + "\n"


def write_loo_report(sets: Sequence[str], load_set: Callable, *, n_boot: Mapping[str, int],
                     command: str, folder=core.CACHE, out=core.RESULTS) -> list[dict]:
    """Score every cached set, write ``peers_loo.json`` and ``peers_loo.md``."""
    entries = []
    for name in sets:
        entries += score_set(name, load_set, n_boot=n_boot.get(name, 100), folder=folder)
    if not entries:
        raise ValueError(f"no cached predictions under {folder}: run `peers.py loo` first")
    result = {"command": command, "versions_report": core.versions(), "commit": core.commit(),
              "scflow_default": core.scflow_default(), "entries": entries}
    out.mkdir(parents=True, exist_ok=True)
    (out / "peers_loo.json").write_text(json.dumps(result, indent=1, default=_plain) + "\n")
    (out / "peers_loo.md").write_text(markdown(entries, command))
    print(markdown(entries, command))
    return entries


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
