"""Build the topic and graph artifacts an experiment needs, then print what was built.

    python scripts/build_graphs.py --config configs/experiments/demo.yaml

Reads the experiment YAML, loads and splits the data exactly as training will, runs the artifact
stages (topics, item text, ...) that the listed builders require on the FIT (training) rows only,
runs every graph builder listed under ``graphs:``, and saves the GraphBundle where ``mmseq train``
looks for it. Cached: a second run with the same inputs and settings reuses the artifacts.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from graphs.compose import build_all, parse_specs, required_stages, run_stages, summary_rows
from mmseq.config import load_experiment, section_value
from mmseq.data.prepare import graph_bundle_file, prepare_data
from mmseq.errors import MmseqError
from mmseq.lock import file_lock
from mmseq.stages import STAGES, stage_configs


def _table(rows: list[dict]) -> str:
    if not rows:
        return "(nothing built)"
    cols = list(rows[0])
    width = {c: max(len(str(c)), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    line = "  ".join(str(c).ljust(width[c]) for c in cols)
    sep = "  ".join("-" * width[c] for c in cols)
    body = ["  ".join(str(r.get(c, "")).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join([line, sep, *body])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/experiments/demo.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--topics-only", action="store_true", help="run the topic stage and stop")
    parser.add_argument(
        "--stages-only", action="store_true", help="run the stages the builders need and stop"
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except MmseqError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    cfg = load_experiment(args.config, args.set)
    prepared = prepare_data(cfg)
    fit = prepared.split.fit
    print(f"data: {cfg.data.path}  protocol {cfg.split.protocol}  "
          f"fit rows {len(fit)} of {len(prepared.data)}  ({prepared.seconds:.1f} s)")
    specs = section_value(cfg, "graphs")
    parsed = parse_specs(specs, where=f"{args.config}: graphs")  # strict: before any work
    needed = required_stages([cls for _, cls, _ in parsed])
    if args.topics_only:
        needed = ["topics"]
    configs = stage_configs(cfg, needed)
    artifacts_dir = Path(cfg.artifacts_dir)
    artifacts = {}
    for name in needed:
        start = time.perf_counter()
        artifacts |= run_stages([name], fit, configs=configs, cache_root=artifacts_dir,
                                progress=not args.no_progress)
        print(f"stage {name} ({time.perf_counter() - start:.1f} s)")
        summary = STAGES.get(name)().describe(artifacts[name])
        if summary:
            print(summary)
    if args.topics_only or args.stages_only:
        return 0
    start = time.perf_counter()
    bundle = build_all(specs, fit, artifacts=artifacts, stage_configs=configs,
                       cache_dir=artifacts_dir / "graphs", stage_cache_root=artifacts_dir)
    target = graph_bundle_file(cfg, prepared.split)
    with file_lock(target.parent):  # a concurrent run must not pair our file with its checksum
        path = bundle.save(target)
    print(f"graphs ({time.perf_counter() - start:.1f} s) -> {path}")
    print(_table(summary_rows(bundle)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
