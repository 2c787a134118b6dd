"""Regenerate docs/results.md: every (data set, model) cell trained over several seeds.

    python scripts/make_results.py                  # every table in configs/results/
    python scripts/make_results.py --only toys_loo  # one table
    python scripts/make_results.py --seeds 0 1 2 --max-epochs 30

    python scripts/make_results.py --only 60_distill_beauty --no-train  # from the store only
    python scripts/make_results.py --only 60_distill_toys --jobs 2     # two runs at a time

Tables are the files under configs/results/ (one YAML each, ordered by file name). Every (row,
seed) is looked up in the results store (docs/store/, mmseq/results_store.py: keyed by the run's
config identity and the code hash); only what is missing is trained, through the same code path as
``mmseq train`` (``run_experiment``, run directory under ``runs/results/``; ``--rows`` and
``--train-seeds`` narrow what may be trained), and its result is
stored at once (each run is announced, then prints one line per epoch: long runs show where they
are). A run checkpoints every epoch in its run directory (named by config identity and code hash):
cut off (a session's end), it resumes there when the same command runs again, with the same
result; its stored ``wall_s`` counts every part and its provenance says where it resumed
(``--fresh`` starts it over). So a table fills over several sessions and machines, even with
runs longer than a session, and ``--no-train`` rebuilds the markdown from the store alone.
``--jobs N`` trains the missing cells in N worker processes of this script (``--cells-only``),
logs under ``<runs>/logs/``; each cell trains under a lock on its run directory, so two commands
never train one cell twice. A
stored result of another config or code is never used. Cells are mean ± std per metric, with the
budget each number had. Test metrics of the epoch chosen on VALIDATION are reported: nothing here
is tuned on test.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mmseq import results_store
from mmseq.config import ExperimentConfig, from_dict, load_experiment, load_yaml
from mmseq.data.schema import settings_hash
from mmseq.eval.report import load_results, provenance
from mmseq.lock import LockTimeoutError, file_lock
from mmseq.report.results_chart import ChartRow, chart_path, write_results_chart
from mmseq.results_store import StoreKey
from mmseq.train.callbacks import Callback, EpochLine
from mmseq.train.experiment import run_experiment
from mmseq.train.run_dir import CHECKPOINT_DIR

REPO = Path(__file__).resolve().parents[1]

RESULTS_DIR = REPO / "configs" / "results"
#: One JSON per finished run, keyed by config identity and code hash (mmseq/results_store.py).
STORE_DIR = REPO / "docs" / "store"


@dataclass(frozen=True)
class RowSpec:
    """One trained row: a label and ``key=value`` overrides of the experiment config."""

    label: str
    set: tuple[str, ...] = ()


@dataclass(frozen=True)
class PaperRow:
    """Reference numbers printed beside (never trained)."""

    label: str
    values: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TableSpec:
    """One table of docs/results.md (a file under configs/results/)."""

    caption: str
    config: str
    columns: tuple[str, ...]
    rows: tuple[RowSpec, ...]
    paper: tuple[PaperRow, ...] = ()
    notes: str = ""  # what the numbers mean (budget effects, gaps to papers), printed below
    seeds: tuple[int, ...] = ()  # () = the --seeds of the command line
    max_epochs: int = 0  # 0 = the config's own; --max-epochs caps further
    set: tuple[str, ...] = ()  # overrides applied to every row first (the table's budget rule)
    curves: bool = False  # also print each row's validation curve (mean over its seeds)


def load_tables(folder: Path = RESULTS_DIR) -> dict[str, TableSpec]:
    return {
        p.stem: from_dict(TableSpec, load_yaml(p), where=str(p))
        for p in sorted(Path(folder).glob("*.yaml"))
    }


def _git_sha() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            text=True,
            capture_output=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _dir_key(cfg: ExperimentConfig) -> str:
    """A run directory's key: the config identity and the code hash (8 hex chars each), so that
    a checkpoint is only ever resumed by the same config under the same result versions."""
    key = StoreKey.of(cfg)
    return f"{key.identity[:8]}-{key.code[:8]}"


class RunParts(Callback):
    """Records each process that trained a run: ``<run_dir>/parts.json`` holds one
    ``{"from_epoch", "git_sha", "started_utc"}`` per part (a fresh start resets the list)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "parts.json"
        self.start_epoch = 1
        self.parts: list[dict] = []

    def on_fit_start(self, model: torch.nn.Module, start_epoch: int) -> None:
        self.start_epoch = start_epoch
        earlier: list[dict] = []
        if start_epoch > 1:  # resumed: the earlier parts, or an unrecorded one (no parts.json)
            unknown = [{"from_epoch": 1, "git_sha": None, "started_utc": None}]
            earlier = json.loads(self.path.read_text()) if self.path.is_file() else unknown
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        part = {"from_epoch": start_epoch, "git_sha": _git_sha(), "started_utc": now}
        self.parts = [*earlier, part]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.parts, indent=1))
        if start_epoch > 1:
            print(f"resuming from the checkpoint of epoch {start_epoch - 1}", flush=True)


def train_resumable(
    cfg: ExperimentConfig, run_dir: Path, *, fresh: bool = False
) -> tuple[dict, list[dict]]:
    """Train ``cfg`` in ``run_dir`` with a checkpoint after every epoch, so that a run cut off
    (a session's end, a crash) continues there when the same command runs again (bit-for-bit,
    :func:`mmseq.train.loop.fit`); ``fresh`` starts it over.

    Returns ``run_experiment``'s results, with ``wall_s`` = this process's seconds plus the
    recorded seconds of the epochs trained before it, and the parts (:class:`RunParts`).
    """
    start = time.perf_counter()
    # One line per epoch (bars off: several runs share one terminal or log).
    lines, parts = EpochLine(cfg.train.epochs, stream=sys.stdout), RunParts(run_dir)
    out = run_experiment(cfg, run_dir=run_dir, resume=not fresh, callbacks=[lines, parts])
    earlier = sum(
        h.get("seconds", 0.0) for h in out["history"] if h.get("epoch", 0) < parts.start_epoch
    )
    out["wall_s"] = time.perf_counter() - start + earlier
    return out, parts.parts


def _imported(run_dir: Path, cfg: ExperimentConfig, store: Path) -> dict | None:
    """A finished run directory's result, put into the store, when its recorded config is this
    row's (same config identity); else None. Its code is taken to be today's (``--reuse``)."""
    path = run_dir / "results.json"
    if not path.is_file():
        return None
    saved = load_results(path)
    recorded = from_dict(ExperimentConfig, saved["config"], where=str(path))
    if StoreKey.of(recorded).identity != StoreKey.of(cfg).identity:
        print(f"--reuse: {path} was run with another config: not used", flush=True)
        return None
    results = {"test": saved["metrics"], **saved.get("extra", {})}
    provenance = {
        **saved.get("provenance", {}),
        "imported_from": str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path),
    }
    entry = results_store.entry_from_results(cfg, results, provenance=provenance)
    results_store.save(store, cfg, entry)
    return entry


def _safe(label: str) -> str:
    """A row label as a file-name part."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def _epoch_cap(spec: TableSpec, max_epochs: int | None) -> list[str]:
    """The epoch cap as an override (the smaller of --max-epochs and the table's), or none."""
    caps = [c for c in (max_epochs, spec.max_epochs or None) if c]
    return [f"train.epochs={min(caps)}"] if caps else []


def table_cells(
    name: str, spec: TableSpec, seeds: list[int], max_epochs: int | None, out_root: Path,
    only_rows: tuple[str, ...] = (),
) -> Iterator[tuple[RowSpec, int, list[str], ExperimentConfig, Path]]:
    """Each (row, seed) of a table in table order: its overrides, config and run directory."""
    cap = _epoch_cap(spec, max_epochs)
    for row in spec.rows:
        if only_rows and row.label not in only_rows:
            continue
        for seed in list(spec.seeds) or seeds:
            overrides = [*spec.set, *row.set, f"seed={seed}", "train.progress=false", *cap]
            cfg = load_experiment(REPO / spec.config, overrides)
            run_dir = out_root / name / f"{_safe(row.label)}-seed{seed}-{_dir_key(cfg)}"
            yield row, seed, overrides, cfg, run_dir


def run_table(
    name: str,
    spec: TableSpec,
    seeds: list[int],
    max_epochs: int | None,
    out_root: Path,
    reuse: bool = False,
    only_rows: tuple[str, ...] = (),
    store: Path = STORE_DIR,
    train: bool = True,
    train_seeds: tuple[int, ...] = (),
    fresh: bool = False,
) -> dict:
    """Every (row, seed) of a table from the store; what is missing is trained (unless
    ``train`` is False) and stored. An interrupted run resumes from its last epoch's checkpoint
    in its run directory (``fresh``: start it over). A cell that another process is training
    (it holds the lock on the run directory) is left to it, not trained twice. Returns the
    table for :func:`to_markdown`."""
    seeds = list(spec.seeds) or seeds
    budget = [*spec.set, *_epoch_cap(spec, max_epochs)]
    rows: dict[str, list[dict]] = {
        row.label: [] for row in spec.rows if not only_rows or row.label in only_rows
    }
    for row, seed, overrides, cfg, run_dir in table_cells(
        name, spec, seeds, max_epochs, out_root, only_rows
    ):
        res = results_store.lookup(store, cfg)
        if res is None and reuse:
            # Run directories named before the code hash was part of the name.
            legacy = f"{_safe(row.label)}-seed{seed}-{settings_hash(spec.config, overrides)[:8]}"
            legacy_dir = out_root / name / legacy
            res = _imported(run_dir, cfg, store) or _imported(legacy_dir, cfg, store)
        if res is None and train and (not train_seeds or seed in train_seeds):
            res = _train_cell(name, row.label, seed, spec.config, overrides, cfg, run_dir,
                              store, fresh)
        if res is None:
            print(f"[{name}] {row.label} seed {seed}: not in the store", flush=True)
            continue
        rows[row.label].append(res)
        print(
            f"[{name}] {row.label} seed {seed}: "
            + " ".join(f"{c}={res['test'].get(c, float('nan')):.4f}" for c in spec.columns)
            + f" (best epoch {res['best_epoch']}/{res['epochs_run']}, {res['wall_s']:.0f} s)",
            flush=True,
        )
    rows_out = [{"model": label, "runs": runs} for label, runs in rows.items()]
    base_cfg = load_experiment(REPO / spec.config, budget)
    return {
        "name": name,
        "caption": spec.caption,
        "columns": list(spec.columns),
        "rows": rows_out,
        "config": spec.config,
        "paper": spec.paper,
        "seeds": seeds,
        "notes": spec.notes,
        "curves": spec.curves,
        "monitor": base_cfg.train.monitor,
        "epochs_cap": base_cfg.train.epochs,
        "patience": base_cfg.train.patience,
        "eval_every": base_cfg.train.eval_every,
        "threads": base_cfg.train.threads,
    }


def _train_cell(
    name: str, label: str, seed: int, config: str, overrides: list[str], cfg: ExperimentConfig,
    run_dir: Path, store: Path, fresh: bool,
) -> dict | None:
    """Train one cell in ``run_dir`` under its lock and store the result; None (nothing
    trained) when another process holds the lock, i.e. is training this cell now."""
    try:
        with file_lock(run_dir, timeout=0):
            res = results_store.lookup(store, cfg)  # stored meanwhile by the lock's last holder
            if res is not None:
                return res
            _ensure_graphs(config, overrides, cfg)
            print(f"[{name}] {label} seed {seed}: training in {run_dir}", flush=True)
            out, parts = train_resumable(cfg, run_dir, fresh=fresh)
            resumed = [p["from_epoch"] for p in parts[1:]]
            extra = {"resumed_at_epochs": resumed, "parts": parts} if resumed else {}
            res = results_store.entry_from_results(cfg, out, provenance={**provenance(), **extra})
            results_store.save(store, cfg, res)
            # Stored: the run's checkpoint (optimizer state and all) is not needed any more.
            shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)
            return res
    except LockTimeoutError:
        print(f"[{name}] {label} seed {seed}: another process is training it ({run_dir} is "
              "locked); left to it", flush=True)
        return None


def missing_cells(
    tables: dict[str, TableSpec], names: list[str], seeds: list[int], max_epochs: int | None,
    out_root: Path, store: Path, only_rows: tuple[str, ...] = (), train_seeds: tuple[int, ...] = (),
) -> list[tuple[str, str, int]]:
    """The (table, row label, seed) cells the store lacks and this command would train."""
    return [
        (n, row.label, seed)
        for n in names
        for row, seed, _, cfg, _ in table_cells(n, tables[n], seeds, max_epochs, out_root,
                                                only_rows)
        if (not train_seeds or seed in train_seeds) and results_store.lookup(store, cfg) is None
    ]


def train_in_workers(
    cells: list[tuple[str, str, int]], jobs: int, worker_args: list[str], log_dir: Path,
    poll_s: float = 1.0,
) -> list[Path]:
    """Train each cell in its own process of this script (``--cells-only``), at most ``jobs``
    at a time, in the order given; each worker's output goes to a log under ``log_dir``.
    ``worker_args`` are the options every worker gets (tables folder, store, runs, budget).
    Returns the logs of the workers that failed (non-zero exit)."""
    if not cells:
        print("nothing to train: the store has every cell asked for", flush=True)
        return []
    log_dir.mkdir(parents=True, exist_ok=True)
    pending, running, failed = list(cells), {}, []
    print(f"{len(cells)} cell(s) to train, {min(jobs, len(cells))} at a time; logs in {log_dir}",
          flush=True)
    while pending or running:
        while pending and len(running) < jobs:
            table, label, seed = pending.pop(0)
            log = log_dir / f"{table}-{_safe(label)}-seed{seed}.log"
            cmd = [sys.executable, str(Path(__file__).resolve()), *worker_args, "--only", table,
                   "--rows", label, "--train-seeds", str(seed), "--cells-only"]
            with log.open("w", encoding="utf-8") as out:
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
            running[proc] = (table, label, seed, log, time.perf_counter())
            print(f"[{table}] {label} seed {seed}: started (pid {proc.pid}, log {log.name})",
                  flush=True)
        time.sleep(poll_s)
        for proc in [p for p in running if p.poll() is not None]:
            table, label, seed, log, start = running.pop(proc)
            took = time.perf_counter() - start
            if proc.returncode == 0:
                print(f"[{table}] {label} seed {seed}: worker done in {took:.0f} s", flush=True)
                continue
            failed.append(log)
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
            print(f"[{table}] {label} seed {seed}: worker FAILED (exit {proc.returncode}) after "
                  f"{took:.0f} s; last lines of {log}:\n  " + "\n  ".join(tail), flush=True)
    return failed


def _ensure_graphs(cfg_file: str, overrides: list[str], cfg) -> None:  # noqa: ANN001
    from mmseq.models import MODELS

    if not MODELS.get(cfg.model.name).requires_graphs:
        return
    from mmseq.data.prepare import graph_bundle_file, prepare_data

    if graph_bundle_file(cfg, prepare_data(cfg).split).is_file():
        return
    import build_graphs  # noqa: PLC0415 - scripts/ is on sys.path when this file runs as a script

    args = ["--config", str(REPO / cfg_file), "--no-progress"]
    for o in overrides:
        args += ["--set", o]
    if build_graphs.main(args) != 0:
        raise SystemExit(f"building graphs for {cfg_file} failed")


def _mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    mean = statistics.fmean(values)
    if len(values) == 1:  # one seed: no spread to report (a "± 0" would claim one)
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {statistics.stdev(values):.4f}"


def validation_curves(rows: list[dict], metric: str, points: int = 10) -> list[str]:
    """Markdown table of each row's validation ``metric`` by epoch (mean over its runs), at up to
    ``points`` epochs spread over the validated ones (the stored history keeps them)."""
    curves = {}
    for row in rows:
        by_epoch: dict[int, list[float]] = {}
        for run in row["runs"]:
            for h in run.get("history") or []:
                if metric in (h.get("valid") or {}):
                    by_epoch.setdefault(h["epoch"], []).append(h["valid"][metric])
        if by_epoch:
            curves[row["model"]] = {e: statistics.fmean(v) for e, v in by_epoch.items()}
    if not curves:
        return []
    epochs = sorted({e for c in curves.values() for e in c})
    step = max(1, -(-len(epochs) // points))
    shown = sorted({*epochs[step - 1 :: step], epochs[-1]})
    lines = [
        f"Validation {metric} by epoch (mean over the row's seeds):",
        "",
        "| model | " + " | ".join(str(e) for e in shown) + " |",
        "|---|" + "---|" * len(shown),
    ]
    for label, curve in curves.items():
        cells = [f"{curve[e]:.4f}" if e in curve else "–" for e in shown]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


#: Companion result files written by separate ``--out`` runs (file name -> section heading).
COMPANIONS = {
    "results_sdmtmp.md": "SD-MTMP, its ablations, the fused model and baselines on review data",
    "results_peerrec.md": "PeerRec against BERT4Rec (loo-sampled99), with the paper's numbers",
    "results_modalities.md": "New modalities (item semantic graph, item attribute hypergraph)",
    "results_distill.md": "Every distillation method against its backbone, from the results store",
}


def _threads_text(threads: int) -> str:
    """The runs' ``train.threads`` in words (0 leaves torch's default)."""
    if not threads:
        return "torch's default thread count per run"
    return f"{threads} torch thread{'s' if threads > 1 else ''} per run"


def to_markdown(tables: list[dict], seeds: list[int], total_s: float, out_name: str = "") -> str:
    threads = torch.get_num_threads()
    lines = [
        "# Results",
        "",
        "Generated by `python scripts/make_results.py` — do not edit by hand. Every number is a "
        "run in the results store (docs/store/, docs/results_store.md), whose entry records the "
        "machine and threads it ran on (each table states its runs' thread count). Page "
        "generated at:",
        f"Commit `{_git_sha()}`, {platform.processor() or platform.machine()}, "
        f"{threads} torch threads in the generating process, no GPU"
        if not torch.cuda.is_available()
        else f"Commit `{_git_sha()}`, GPU {torch.cuda.get_device_name(0)}",
        f"Seeds {seeds} unless a table says otherwise; test metrics at the epoch chosen on "
        f"validation NDCG@10; mean ± sample std over seeds. Training + evaluation time of the "
        f"runs: {total_s / 60:.1f} min.",
        "",
    ]
    for t in tables:
        lines += [
            f"## {t['caption']}",
            "",
            f"Config `{t['config']}`; budget: at most {t['epochs_cap']} epochs, validation every "
            f"{t.get('eval_every', 1)} epoch(s), early stopping patience {t['patience']} "
            f"validations; {_threads_text(t.get('threads', 0))}; seeds {t['seeds']}.",
            "",
        ]
        header = ["model", *t["columns"], "epochs (chosen/run)", "s/run"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in t["rows"]:
            runs = row["runs"]
            cells = [
                _mean_std([r["test"][c] for r in runs if c in r["test"]]) for c in t["columns"]
            ]
            epochs = ", ".join(f"{r['best_epoch']}/{r['epochs_run']}" for r in runs) or "–"
            secs = f"{statistics.fmean(r['wall_s'] for r in runs):.0f}" if runs else "–"
            label = row["model"]
            if len(runs) < len(t["seeds"]):  # a partly filled row says so
                label += f" ({len(runs)}/{len(t['seeds'])} seeds)"
            lines.append("| " + " | ".join([label, *cells, epochs, secs]) + " |")
        for ref in t["paper"]:
            cells = [f"{ref.values[c]:.4f}" if c in ref.values else "–" for c in t["columns"]]
            lines.append("| " + " | ".join([f"*{ref.label}*", *cells, "–", "–"]) + " |")
        lines.append("")
        if out_name:  # the chart main() writes beside the markdown (mmseq.report.results_chart)
            lines += [f"![{t['name']}: mean, seed spread]({chart_path(out_name, t['name'])})", ""]
        if t.get("curves"):
            lines += validation_curves(t["rows"], t["monitor"])
        if t["notes"]:
            lines += [t["notes"].strip(), ""]
    for file, heading in COMPANIONS.items():
        if file != out_name and (REPO / "docs" / file).is_file():
            lines += [
                f"## {heading}",
                "",
                "Generated by `python scripts/make_results.py --only <tables> --out "
                f"docs/{file}`: see [{file}]({file}).",
                "",
            ]
    if out_name != "results_ader.md" and (REPO / "docs" / "results_ader.md").is_file():
        lines += [
            "## Continual learning (ADER vs fine-tune vs joint)",
            "",
            "Produced by `scripts/run_continual.py` (a different training regime): see "
            "[results_ader.md](results_ader.md).",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--tables", default=str(RESULTS_DIR))
    tables_dir = Path(pre.parse_known_args(argv)[0].tables)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tables_spec = load_tables(tables_dir)
    parser.add_argument("--tables", default=str(RESULTS_DIR),
                        help="the folder of table files (default configs/results/)")
    parser.add_argument("--only", nargs="*", choices=sorted(tables_spec), help="tables to run")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=None, help="cap epochs (budget)")
    parser.add_argument("--out", default=str(REPO / "docs" / "results.md"))
    parser.add_argument("--runs", default=str(REPO / "runs" / "results"))
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="import finished runs found under --runs into the store (only those whose "
        "recorded config is the row's) instead of re-training them",
    )
    parser.add_argument("--rows", nargs="*", default=[], help="only the rows with these labels")
    parser.add_argument("--store", default=str(STORE_DIR), help="the results store folder")
    parser.add_argument(
        "--no-train",
        action="store_true",
        help="build the tables from the store only (missing runs are left out and counted)",
    )
    parser.add_argument(
        "--train-seeds",
        nargs="*",
        type=int,
        default=[],
        help="train missing cells of these seeds only (the others come from the store)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start interrupted runs over (default: each resumes from its last checkpoint)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="train missing cells in this many worker processes at once (each run keeps its "
        "table's torch threads); the tables are built when all have ended",
    )
    parser.add_argument(
        "--cells-only",
        action="store_true",
        help="train and store the missing cells only: write no markdown, chart or summary",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1 (got {args.jobs})")
    names = args.only or list(tables_spec)
    labels = {row.label for n in names for row in tables_spec[n].rows}
    unknown = [r for r in args.rows if r not in labels]
    if unknown:
        parser.error(f"--rows: no row labelled {unknown} in the tables {names} (their rows: "
                     f"{sorted(labels)})")
    failed: list[Path] = []
    if args.jobs > 1 and not args.no_train:
        cells = missing_cells(tables_spec, names, args.seeds, args.max_epochs, Path(args.runs),
                              Path(args.store), tuple(args.rows), tuple(args.train_seeds))
        worker_args = ["--tables", str(tables_dir), "--store", args.store, "--runs", args.runs,
                       "--seeds", *map(str, args.seeds)]
        worker_args += ["--max-epochs", str(args.max_epochs)] if args.max_epochs else []
        worker_args += ["--fresh"] * args.fresh + ["--reuse"] * args.reuse
        failed = train_in_workers(cells, args.jobs, worker_args, Path(args.runs) / "logs")
        args.no_train = True  # every missing cell has had its worker: tables from the store
    tables = [
        run_table(
            n,
            tables_spec[n],
            args.seeds,
            args.max_epochs,
            Path(args.runs),
            args.reuse,
            tuple(args.rows),
            Path(args.store),
            not args.no_train,
            tuple(args.train_seeds),
            args.fresh,
        )
        for n in names
    ]
    if args.cells_only:
        return 0
    # Sum of the runs' own wall times, so that a --reuse aggregation still reports the real cost.
    total = sum(r["wall_s"] for t in tables for row in t["rows"] for r in row["runs"])
    Path(args.out).write_text(
        to_markdown(tables, args.seeds, total, Path(args.out).name), encoding="utf-8"
    )
    for t in tables:  # each table as a bar chart with the seed spread, beside the markdown
        rows = [ChartRow(r["model"], {c: [x["test"][c] for x in r["runs"] if c in x["test"]]
                                      for c in t["columns"]}) for r in t["rows"]]
        rows += [ChartRow(p.label, {c: [v] for c, v in p.values.items()}, True) for p in t["paper"]]
        write_results_chart(rows, t["columns"], t["caption"], chart_path(args.out, t["name"]))
    summary = {
        t["name"]: {
            r["model"]: {c: statistics.fmean(x["test"][c] for x in r["runs"]) for c in t["columns"]}
            for r in t["rows"]
            if r["runs"]
        }
        for t in tables
    }
    Path(args.runs).mkdir(parents=True, exist_ok=True)
    (Path(args.runs) / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({"tables": names, "seeds": args.seeds, "total_s": round(total, 1)}))
    if failed:
        print(f"{len(failed)} worker(s) failed: " + ", ".join(str(f) for f in failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
