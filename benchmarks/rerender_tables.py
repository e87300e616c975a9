"""Render the ``scflow benchmark`` tables again from their JSON records (no rerun).

For a change of presentation only (column names, time labels): every
``benchmarks/results/{benchmark,rollout,rollout_holdout}_*.json`` written by
:func:`scflow.benchmark.report.run_benchmark` is rendered with
:func:`scflow.benchmark.report.render`, with the data set's time labels (read from
``SCFLOW_DATA_DIR``), and its ``.md`` rewritten. The numbers are those of the record. Run::

    SCFLOW_DATA_DIR=../shared/data python benchmarks/rerender_tables.py
    python benchmarks/report.py   # gather BENCHMARKS.md
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    from scflow import datasets
    from scflow._adata.time_labels import dataset_time_labels
    from scflow.benchmark.report import render
    from scflow.cli import REAL_DATASETS

    labels: dict[str, dict] = {}
    for path in sorted((HERE / "results").glob("*.json")):
        if not path.stem.startswith(("benchmark_", "rollout_")):
            continue
        record = json.loads(path.read_text())
        if "config" not in record or "protocol" not in record.get("config", {}):
            continue
        name = record["config"]["dataset"]
        if name not in labels:
            labels[name] = (dataset_time_labels(getattr(datasets, name)())
                            if name in REAL_DATASETS else {})
        record["time_labels"] = {str(k): v for k, v in labels[name].items()}
        path.write_text(json.dumps(record, indent=1, default=str))
        path.with_suffix(".md").write_text(render(record))
        print(f"rendered {path.with_suffix('.md').name}")


if __name__ == "__main__":
    main()
