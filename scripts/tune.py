"""Hyper-parameter study on VALIDATION only (Optuna): the test part is never scored.

    python scripts/tune.py configs/tuning/lightgcn_musical_instruments.yaml
    python scripts/tune.py configs/tuning/lightgcn_musical_instruments.yaml --trials 10
    # more workers, on this or other machines, join the same study through one RDB URL:
    python scripts/tune.py STUDY.yaml --storage postgresql://host/db --worker 1 &
    python scripts/tune.py STUDY.yaml --storage postgresql://host/db --worker 2 &

The study file format is documented in ``mmseq/train/tune.py``; the grid files of
``configs/tuning/`` are study files with the (default) grid sampler, so they run as before: every
combination once, a finished one read back instead of retrained. The script prints the finished
trials ranked by the validation metric, writes the same table to ``<out>/<study>/summary.md``,
and prints the best trial as ``--set`` overrides.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mmseq.errors import MmseqError
from mmseq.train.tune import finished_rows, load_study_spec, run_study, to_markdown

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path, help="study YAML (configs/tuning/*.yaml)")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "runs" / "tuning",
        help="folder for the study's runs (default runs/tuning)",
    )
    parser.add_argument(
        "--storage",
        default=None,
        help="RDB URL of the study (default sqlite:///<out>/<study>/study.db)",
    )
    parser.add_argument(
        "--worker", type=int, default=0, help="this worker's number (seeds its sampler; default 0)"
    )
    parser.add_argument(
        "--trials",
        "--max-runs",
        dest="trials",
        type=int,
        default=0,
        help="trials for this worker (0 = the study file's; grid: all points)",
    )
    args = parser.parse_args(argv)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    try:
        spec = load_study_spec(args.study, REPO)
        out = args.out / spec.name
        study = run_study(spec, out, storage=args.storage, worker=args.worker, trials=args.trials)
    except MmseqError as err:
        where = "" if args.study.stem in str(err) else f"study {args.study.stem}: "
        print(f"error: {where}{err}", file=sys.stderr)
        return 2
    table = to_markdown(spec, study, REPO)
    (out / "summary.md").write_text(table)
    print(table)
    rows = finished_rows(study)
    if rows:
        best = max(rows, key=lambda r: r["value"])
        print("best on validation: " + " ".join(f"--set {s}" for s in best["set"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
