"""Gather the sections written under ``benchmarks/results/*.md`` into ``BENCHMARKS.md``."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["benchmark_emt_umap", "benchmark_emt", "benchmark_emt_5d", "benchmark_weinreb",
         "benchmark_bargaje", "benchmark_simulate", "nested_selection", "metric_flow",
         "peers_loo", "growth", "peers_growth", "growth_move_check", "error_budget",
         "larry_fate", "peers_larry",
         "larry_sensitivity", "fate_dynamics", "fate_simulation", "fate_simulation_labels",
         "peer_torchcfm", "rollout_emt", "rollout_weinreb",
         "rollout_emt_umap", "rollout_bargaje", "rollout_holdout_emt",
         "rollout_holdout_weinreb", "rollout_holdout_emt_umap", "rollout_holdout_bargaje",
         "speed", "speed_like_for_like", "scale", "peers_cost"]
#: stage outputs that a gathered section already holds (``growth.md`` gathers these)
GATHERED = ("growth_clones", "growth_mouse", "growth_sampling_", "growth_sim", "growth_weights",
            "growth_prior")


def main() -> None:
    parts = {p.stem: p.read_text() for p in sorted((HERE / "results").glob("*.md"))
             if not p.stem.startswith(GATHERED)}
    intro = (HERE / "INTRO.md").read_text() if (HERE / "INTRO.md").exists() else ""
    body = [parts.pop(k) for k in ORDER if k in parts] + list(parts.values())
    if (HERE / "STUDIES.md").exists():  # what was tried, and which defaults won
        body.append((HERE / "STUDIES.md").read_text())
    (HERE.parent / "BENCHMARKS.md").write_text("# Benchmarks\n\n" + intro + "\n"
                                               + "\n".join(body))
    print(f"wrote {HERE.parent / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
