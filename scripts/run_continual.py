"""Compare fine-tuning, joint retraining and ADER over time periods (methods.md section 6).

    python scripts/run_continual.py --config configs/continual/ader_musical_instruments.yaml
    python scripts/run_continual.py --config ... --set train.epochs=2 \
        --results-md docs/results_ader.md

Prints the periods, one table per metric (rows: strategies; columns: train period -> scored
period; Recall@K / NDCG@K of next-item prediction with full ranking over the items seen so far)
and, as the LAST line, one JSON object with every number. ``--results-md`` also writes a markdown
section (docs/results_ader.md is linked from docs/results.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from mmseq.data.load import load_dataset
from mmseq.errors import MmseqError
from mmseq.train.continual.config import load_continual_config, resolve_continual_data_path
from mmseq.train.continual.report import (
    format_periods,
    format_table,
    markdown_section,
    paper_finding,
)
from mmseq.train.continual.strategies import run_comparison


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="continual YAML (configs/continual/*.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=2 (repeatable)")
    parser.add_argument("--results-md", type=Path, help="also write a markdown section here")
    parser.add_argument("--title", default="", help="section title for --results-md")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    try:
        cfg = load_continual_config(args.config, args.set)
        data = load_dataset(cfg.data, resolve_continual_data_path(cfg))
        result = run_comparison(cfg, data)
    except MmseqError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    metrics = [f"{m}@{k}" for k in sorted(set(cfg.ks)) for m in ("recall", "ndcg")]
    print(f"data: {cfg.data.path} ({len(data)} interactions, {data.num_users} users, "
          f"{data.num_items} items)")
    print(format_periods(result))
    for metric in metrics:
        print()
        print(format_table(result, metric))
    finding = paper_finding(result, metrics[0])
    print(f"\nADER >= joint > finetune on {metrics[0]}: {finding}")
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))
    if args.results_md is not None:
        title = args.title or f"ADER vs joint vs fine-tune — {Path(cfg.data.path).name}"
        args.results_md.parent.mkdir(parents=True, exist_ok=True)
        args.results_md.write_text(markdown_section(result, title=title, metrics=metrics),
                                   encoding="utf-8")
    summary = {
        "config": str(args.config),
        "periods": result.periods,
        "metrics": {n: {m: result.series(n, m) for m in [*metrics, "mrr"]}
                    for n in result.strategies},
        "means": {n: {m: result.mean(n, m) for m in metrics} for n in result.strategies},
        "info": {n: [r["info"] | {"counts": r["counts"]} for r in rows]
                 for n, rows in result.strategies.items()},
        "paper_finding": finding,
        "seconds": result.seconds,
    }
    print(json.dumps(summary, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
