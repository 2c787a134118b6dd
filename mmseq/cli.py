"""``python -m mmseq`` / ``mmseq``: train, evaluate, recommend, report, inspect data.

Errors that mmseq raises on purpose (bad data, bad config, missing artifacts) end the command with
one line on stderr and exit status 2, never a traceback; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmseq.errors import MmseqError

log = logging.getLogger("mmseq")


def _cmd_train(args: argparse.Namespace) -> int:
    from mmseq.config import load_experiment
    from mmseq.train.experiment import run_experiment

    cfg = load_experiment(args.config, args.set)
    results = run_experiment(
        cfg,
        run_dir=Path(args.run_dir) if args.run_dir else None,
        resume=not args.no_resume,
        continue_from=Path(args.continue_from) if args.continue_from else None,
        announce=lambda line: print(line, flush=True),
    )
    print(f"run: {results['run_dir']}")
    print(
        f"best epoch {results['best_epoch']} (of {results['epochs_run']}); "
        f"valid {_fmt(results['valid'])}"
    )
    print(f"test [{cfg.split.protocol}] {_fmt(results['test'])}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from mmseq.train.experiment import evaluate_run

    metrics = evaluate_run(Path(args.run), stage=args.stage)
    print(
        json.dumps(metrics, indent=2, sort_keys=True)
        if args.json
        else f"{args.stage} {_fmt(metrics)}"
    )
    return 0


def _cmd_data_stats(args: argparse.Namespace) -> int:
    import dataclasses

    from mmseq.config import DataConfig, load_experiment, resolve_data_path
    from mmseq.data.load import apply_pipeline, read_raw
    from mmseq.data.split import split_interactions
    from mmseq.data.stats import format_stages, format_stats, pipeline_stages
    from mmseq.errors import ConfigError

    protocol = args.protocol
    if args.config:
        cfg = load_experiment(args.config, args.set)
        data_cfg, protocol = cfg.data, protocol or cfg.split.protocol
        path = Path(args.file) if args.file else resolve_data_path(cfg)
        if args.kcore is not None:
            data_cfg = dataclasses.replace(data_cfg, kcore=args.kcore)
    else:
        if not args.file:
            raise ConfigError("mmseq data stats: give a data FILE, or --config with a data.path")
        if args.kcore is not None and args.kcore < 0:
            raise ConfigError(f"--kcore: expected an integer >= 0 (got {args.kcore})")
        data_cfg = DataConfig(path=args.file, format=args.format, kcore=args.kcore or 0)
        path = Path(args.file)
    raw = read_raw(data_cfg, path)
    print(format_stats(raw))
    if args.config or args.dedup or args.kcore is not None or protocol:
        data = apply_pipeline(raw, data_cfg)
        split = split_interactions(data, protocol) if protocol else None
        print()
        print(format_stages(pipeline_stages(data, split)))
    return 0


def _cmd_data_formats(args: argparse.Namespace) -> int:
    from mmseq.data.readers import READERS

    print("\n".join(READERS.names()))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from mmseq.models import MODELS

    print("\n".join(MODELS.names()))
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from mmseq.config import load_experiment
    from mmseq.explain import explain_from_config, format_explanation

    cfg = load_experiment(args.config, args.set)
    expl = explain_from_config(
        cfg,
        args.user,
        args.item,
        run_dir=Path(args.run) if args.run else None,
        rank_by=args.rank_by,
        top=args.top,
    )
    print(json.dumps(expl.to_dict(), indent=2) if args.json else format_explanation(expl))
    return 0


def _cmd_recommend(args: argparse.Namespace) -> int:
    from mmseq.errors import ConfigError
    from mmseq.recommend import load_run

    if args.all == bool(args.user):
        raise ConfigError("Give either --user U (repeatable) or --all --out FILE")
    if args.all and not args.out:
        raise ConfigError("--all needs --out FILE.parquet or FILE.csv")
    if args.out:
        from mmseq.export import export_format

        export_format(args.out)  # a bad suffix fails before the run is loaded
    run = load_run(args.run, device=args.device)
    if args.explain and not run.has_topics:
        raise ConfigError(
            f"--explain needs topic hypergraphs, but the graphs of run {args.run} are "
            f"{sorted(run.graph_parts()) or 'none'}; explanations come with SD-MTMP-family runs"
        )
    if args.all:
        from mmseq.export import write_recommendations

        rows = write_recommendations(
            run, args.out, k=args.k, exclude=args.exclude, batch_size=args.batch_size
        )
        print(f"{rows} recommendations for {len(run.user_ids)} users written to {args.out}")
        return 0
    recs = run.recommend(args.user, args.k, exclude=args.exclude)
    payload: list[dict[str, Any]] = []
    for user, row_items, row_scores in zip(recs.users, recs.items, recs.scores):
        items: list[dict[str, Any]] = []
        for rank, (item, score) in enumerate(zip(row_items, row_scores), 1):
            if item is None:  # fewer than k items left to recommend
                break
            entry: dict[str, Any] = {"rank": rank, "item": str(item), "score": float(score)}
            if args.explain:
                entry["explanation"] = run.explain(user, item, top=args.topics).to_dict()
            items.append(entry)
        payload.append({"user": str(user), "items": items})
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    for block in payload:
        print(f"user {block['user']}: top {len(block['items'])} (history excluded: {args.exclude})")
        for rec in block["items"]:
            line = f"{rec['rank']:>4}. {rec['item']}  {rec['score']:.4f}"
            if args.explain:
                links = rec["explanation"]["links"]
                line += "  topics: " + (", ".join(link["label"] for link in links) or "none shared")
            print(line)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from mmseq.report.build import write_report

    report = write_report(args.run, args.out, users=args.users, k=args.k)
    print(
        f"report: {report.html} ({len(report.figures)} figures in "
        f"{report.html.with_name(report.html.stem + '_figures')})"
    )
    for note in report.notes:
        print(f"note: {note}")
    return 0


def _fmt(metrics: dict) -> str:
    return "  ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if isinstance(v, float))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmseq", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train and evaluate a model from an experiment YAML")
    train.add_argument(
        "--config", required=True, help="experiment YAML (configs/experiments/*.yaml)"
    )
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=5 (repeatable)",
    )
    train.add_argument(
        "--run-dir", help="where results and checkpoints go (default: output_dir/<run name>)"
    )
    train.add_argument(
        "--no-resume",
        action="store_true",
        help="start fresh: remove this run directory's earlier run files and train from scratch",
    )
    train.add_argument(
        "--continue-from",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR (same config, fewer train.epochs) for more epochs",
    )
    train.set_defaults(func=_cmd_train)

    ev = sub.add_parser("evaluate", help="re-score a finished run from its saved weights")
    ev.add_argument("--run", required=True, help="run directory written by 'mmseq train'")
    ev.add_argument("--stage", choices=["valid", "test"], default="test")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=_cmd_evaluate)

    data = sub.add_parser("data", help="inspect data sets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    stats = dsub.add_parser("stats", help="print statistics of a data file")
    stats.add_argument("file", nargs="?", help="data file (default with --config: its data.path)")
    stats.add_argument("--format", default="auto", help="reader name (see 'mmseq data formats')")
    stats.add_argument(
        "--config", help="experiment YAML: run its data pipeline and split, stage by stage"
    )
    stats.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    stats.add_argument("--dedup", action="store_true", help="show raw -> dedup counts")
    stats.add_argument("--kcore", type=int, help="show raw -> dedup -> k-core counts")
    stats.add_argument(
        "--protocol",
        choices=["ratio-80-20", "loo-full", "loo-sampled99"],
        help="add the split stage (default with --config: its split.protocol)",
    )
    stats.set_defaults(func=_cmd_data_stats)
    fmts = dsub.add_parser("formats", help="list the readers")
    fmts.set_defaults(func=_cmd_data_formats)

    explain = sub.add_parser("explain", help="review topics that connect a user and an item")
    explain.add_argument("--config", required=True, help="experiment YAML whose graphs were built")
    explain.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    explain.add_argument("--user", required=True, help="raw user id (or dense index)")
    explain.add_argument("--item", required=True, help="raw item id (or dense index)")
    explain.add_argument("--run", help="a trained SD-MTMP run directory: adds model affinities")
    explain.add_argument("--rank-by", choices=["membership", "model"], default="membership")
    explain.add_argument("--top", type=int, default=10, help="links shown (0 = all)")
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(func=_cmd_explain)

    rec = sub.add_parser("recommend", help="top-k items of a trained run for users")
    rec.add_argument("--run", required=True, help="run directory written by 'mmseq train'")
    rec.add_argument("--user", action="append", default=[], help="raw user id (repeatable)")
    rec.add_argument("--all", action="store_true", help="every user (needs --out)")
    rec.add_argument("--out", help="with --all: FILE.parquet or FILE.csv (user, rank, item, score)")
    rec.add_argument("-k", type=int, default=10, help="items per user (default: 10)")
    rec.add_argument(
        "--exclude",
        choices=["all", "eval"],
        default="all",
        help="items not recommended: all the user's known items (default), or the "
        "test stage's history as evaluation masks it",
    )
    rec.add_argument(
        "--explain",
        action="store_true",
        help="the review topics that connect each user and item (topic models)",
    )
    rec.add_argument("--topics", type=int, default=3, help="topics shown per item with --explain")
    rec.add_argument("--batch-size", type=int, default=None, help="users per scoring batch")
    rec.add_argument("--device", default=None, help="override the run's train.device")
    rec.add_argument("--json", action="store_true")
    rec.set_defaults(func=_cmd_recommend)

    rep = sub.add_parser("report", help="one self-contained HTML report of a trained run")
    rep.add_argument("--run", required=True, help="run directory written by 'mmseq train'")
    rep.add_argument("--out", help="HTML path (default: <run>/report.html)")
    rep.add_argument("--users", type=int, default=3, help="users whose recommendations are shown")
    rep.add_argument("-k", type=int, default=5, help="recommendations per user")
    rep.set_defaults(func=_cmd_report)

    models = sub.add_parser("models", help="list the registered models")
    models.set_defaults(func=_cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except MmseqError as exc:
        if args.debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the system refused (disk full, permissions): not a bug of mmseq
        if args.debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - no traceback reaches a user without --debug
        if args.debug:
            raise
        print(
            f"error: unexpected {type(exc).__name__}: {_one_line(exc)} (a bug in mmseq: rerun "
            "with --debug for the traceback and report it)",
            file=sys.stderr,
        )
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
