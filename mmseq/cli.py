"""``python -m mmseq`` / ``mmseq``: train, evaluate, inspect data, list models.

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
