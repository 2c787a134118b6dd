"""Grid search on VALIDATION only: the test part is never scored, so no choice can see it.

    python scripts/tune.py configs/tuning/sdmtmp_musical_instruments.yaml
    python scripts/tune.py configs/tuning/sdmtmp_musical_instruments.yaml --max-runs 10

A grid file names a base experiment config, fixed overrides, and the values of each swept key:

    config: configs/experiments/sdmtmp_musical_instruments.yaml
    metric: ndcg@10            # the validation metric that ranks the grid
    seed: 0
    set: [train.threads=1]     # fixed overrides, applied before the grid's
    grid:
      model.params.embedding_dim: [64, 128]
      model.params.num_layers: [1, 2, 3]

Every combination goes through ``run_experiment(..., score_test=False)``: the same code path as
``mmseq train``, minus the test stage. Runs land under ``runs/tuning/<grid name>/<combination
hash>/``; a finished combination is read back instead of retrained. The script prints the grid
ranked by the metric (validation value at the epoch early stopping chose), writes the same table
to ``runs/tuning/<grid name>/summary.md``, and prints the best combination as ``--set`` overrides.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from mmseq.config import load_experiment, load_yaml
from mmseq.errors import ConfigError, MmseqError
from mmseq.identity import config_identity
from mmseq.train.experiment import run_experiment

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class GridSpec:
    """A validation grid: base config, fixed overrides and the swept values per key."""

    name: str
    config: Path
    metric: str
    seed: int
    fixed: tuple[str, ...]
    grid: tuple[tuple[str, tuple[Any, ...]], ...]

    def combinations(self) -> list[tuple[str, ...]]:
        """Every combination as ``key=value`` overrides, in the grid's order."""
        keys = [k for k, _ in self.grid]
        values = [v for _, v in self.grid]
        return [
            tuple(f"{k}={_yaml_value(v)}" for k, v in zip(keys, combo))
            for combo in itertools.product(*values)
        ]


def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def load_grid(path: Path) -> GridSpec:
    """Read and check a grid file (clear errors naming the file and key)."""
    raw = load_yaml(path)
    where = str(path)
    unknown = set(raw) - {"config", "metric", "seed", "set", "grid"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; expected config, metric, "
                          "seed, set, grid")
    if "config" not in raw or "grid" not in raw:
        raise ConfigError(f"{where}: needs 'config' and 'grid'")
    grid = raw["grid"]
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"{where}: 'grid' must map config keys to lists of values")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid.{key} must be a non-empty list, got {values!r}")
    config = Path(raw["config"])
    return GridSpec(
        name=path.stem,
        config=config if config.is_absolute() else REPO / config,
        metric=str(raw.get("metric", "ndcg@10")),
        seed=int(raw.get("seed", 0)),
        fixed=tuple(str(s) for s in raw.get("set", [])),
        grid=tuple((str(k), tuple(v)) for k, v in grid.items()),
    )


def run_grid(spec: GridSpec, out: Path, *, max_runs: int = 0) -> list[dict[str, Any]]:
    """Train every combination (validation only); returns one row per finished combination."""
    combos = spec.combinations()
    if max_runs:
        combos = combos[:max_runs]
    rows: list[dict[str, Any]] = []
    for combo in tqdm(combos, desc=f"grid {spec.name}", unit="run"):
        overrides = [*spec.fixed, f"seed={spec.seed}", *combo]
        cfg = load_experiment(spec.config, overrides)
        run_dir = out / config_identity(cfg)  # a results.json there belongs to this config
        done = run_dir / "results.json"
        start = time.perf_counter()
        if done.is_file():
            extra = json.loads(done.read_text())["extra"]
        else:
            extra = run_experiment(cfg, run_dir=run_dir, resume=True, score_test=False)
        valid = extra["valid"]
        if spec.metric not in valid:
            raise ConfigError(f"grid {spec.name}: metric {spec.metric!r} is not among the "
                              f"validation metrics {sorted(valid)}")
        rows.append({
            "set": list(combo), "valid": valid, "best_epoch": extra["best_epoch"],
            "epochs_run": extra["epochs_run"], "seconds": round(time.perf_counter() - start, 1),
            "run_dir": str(run_dir),
        })
    return rows


def to_markdown(spec: GridSpec, rows: list[dict[str, Any]]) -> str:
    """The grid ranked by the validation metric (best first)."""
    ranked = sorted(rows, key=lambda r: -r["valid"][spec.metric])
    keys = [k for k, _ in spec.grid]
    head = [*(k.rsplit(".", 1)[-1] for k in keys), f"valid {spec.metric}", "best epoch / run"]
    lines = [
        f"Grid `{spec.name}` on `{spec.config.relative_to(REPO)}`, seed {spec.seed}, fixed "
        f"overrides {list(spec.fixed) or 'none'}; validation only (test never scored).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in ranked:
        values = [s.split("=", 1)[1] for s in r["set"]]
        lines.append("| " + " | ".join([*values, f"{r['valid'][spec.metric]:.4f}",
                                        f"{r['best_epoch']} / {r['epochs_run']}"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", type=Path, help="grid YAML (configs/tuning/*.yaml)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "tuning",
                        help="folder for the grid's runs (default runs/tuning)")
    parser.add_argument("--max-runs", type=int, default=0,
                        help="stop after this many combinations (0 = all)")
    args = parser.parse_args(argv)
    try:
        spec = load_grid(args.grid)
        out = args.out / spec.name
        rows = run_grid(spec, out, max_runs=args.max_runs)
    except MmseqError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = to_markdown(spec, rows)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(table)
    print(table)
    best = max(rows, key=lambda r: r["valid"][spec.metric])
    print("best on validation: " + " ".join(f"--set {s}" for s in best["set"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
