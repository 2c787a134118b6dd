"""Build the topic and graph artifacts an experiment needs, then print what was built.

    python scripts/build_graphs.py --config configs/experiments/demo.yaml

Reads the experiment YAML, loads and splits the data exactly as training will, runs the topic stage
on the FIT (training) rows only when a builder needs topics, runs every graph builder listed under
``graphs:``, and saves the GraphBundle where ``mmseq train`` looks for it. Cached: a second run with
the same inputs and settings reuses the artifacts.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from graphs.compose import build_all, parse_specs, summary_rows
from mmseq.config import load_experiment
from mmseq.data.prepare import graph_bundle_file, prepare_data
from mmseq.errors import MmseqError
from mmseq.lock import file_lock
from topics.config import TopicConfig
from topics.extract import extract_topics
from topics.report import format_topic_table


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
    from mmseq.config import from_dict

    cfg = load_experiment(args.config, args.set)
    prepared = prepare_data(cfg)
    fit = prepared.split.fit
    print(f"data: {cfg.data.path}  protocol {cfg.split.protocol}  "
          f"fit rows {len(fit)} of {len(prepared.data)}  ({prepared.seconds:.1f} s)")
    specs = list(cfg.graphs)
    parsed = parse_specs(specs, where=f"{args.config}: graphs")  # strict: before any work
    needs_topics = args.topics_only or any("topics" in cls.requires for _, cls, _ in parsed)
    topics = None
    artifacts = Path(cfg.artifacts_dir)
    if needs_topics:
        topic_cfg = from_dict(TopicConfig, cfg.topics, where=f"{args.config}: topics")
        start = time.perf_counter()
        topics = extract_topics(fit, topic_cfg, cache_dir=artifacts / "topics",
                                progress=not args.no_progress)
        print(f"topics ({time.perf_counter() - start:.1f} s):")
        print(format_topic_table(topics))
    if args.topics_only:
        return 0
    start = time.perf_counter()
    bundle = build_all(specs, fit, topics=topics, cache_dir=artifacts / "graphs")
    target = graph_bundle_file(cfg, prepared.split)
    with file_lock(target.parent):  # a concurrent run must not pair our file with its checksum
        path = bundle.save(target)
    print(f"graphs ({time.perf_counter() - start:.1f} s) -> {path}")
    print(_table(summary_rows(bundle)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
