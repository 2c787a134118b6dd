"""mmseq and RecBole 1.2.1 side by side on the same split: metrics, speed, memory.

    nice -n 10 python scripts/bench_vs_recbole.py --epochs 3 --patience 2
    python scripts/bench_vs_recbole.py --only musical_instruments:lightgcn

For every (data set, model) pair it
1. splits the data set as mmseq does and exports the split as RecBole atomic pre-split files
   (``<name>.{train,valid,test}.inter``, ``benchmark_filename``), so that both frameworks train,
   validate and test on exactly the same interactions. General models read the plain rows (written
   by mmseq's own ``write_recbole_inter``); sequential ones read one row per training target with
   its ``item_id_list`` (the previous items, at most ``max_len``), as RecBole expects of
   pre-split sequential files. The plain rows are written beside them for the test stage.
2. trains mmseq's model in a child process (this script with ``--worker``) and RecBole's in a
   child process of RecBole's OWN virtual environment (``scripts/recbole_driver.py``; the venv is
   created on first use, see :func:`ensure_recbole_venv`), both with 1 torch thread and matched
   hyper-parameters (d, layers, heads, dropout, lr, batch size, epochs, patience, max_len).
3. prints one table: test metrics under the SAME definitions on both sides (HR@K, NDCG@K,
   RecBole's Recall@K = hits / |test| as ``recall_rb@K``, MRR@K; full ranking of every item not
   in the user's training history, pessimistic ties), seconds per training epoch, time until
   validation NDCG@10 first reaches the other framework's best, seconds of one validation pass
   (each framework's own evaluator), the eval floor (bare ``U @ I.T`` + history mask + top-k over
   the same users, batch and width), peak RSS of each main process and of each child's whole
   process tree (median over ``--repeats`` fresh process pairs, run back to back), and every
   ratio mmseq / RecBole.
   The last line is one JSON object with everything.

Validation NDCG@10 is each framework's own: for LightGCN both mask the history and group by user;
RecBole's sequential validation scores each row without a history mask, so for SASRec/BERT4Rec the
"time to the other's best" compares slightly different curves (the test rows do not).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RECBOLE_VENV = Path(os.environ.get("RECBOLE_VENV", "/work/recbole-venv"))
TORCH_WHEEL_DIR = Path("/opt/wheels")  # torch==2.13.0 CPU wheel lies here (environment.md)
KS = (10, 20)
METRICS = tuple(f"{m}@{k}" for k in KS for m in ("hr", "ndcg", "recall_rb", "mrr"))

DATASETS = {
    "musical_instruments": "configs/experiments/musical_instruments.yaml",  # ratio-80-20
    "toys": "configs/experiments/toys_loo.yaml",  # loo-full
}
# mmseq name -> (RecBole name, sequential?)
MODELS = {
    "lightgcn": ("LightGCN", False),
    "sasrec": ("SASRec", True),
    "bert4rec": ("BERT4Rec", True),
}
DEFAULT_PAIRS = (
    "musical_instruments:lightgcn",
    "musical_instruments:sasrec",
    "musical_instruments:bert4rec",
    "toys:lightgcn",
    "toys:sasrec",
    "toys:bert4rec",
)


# ------------------------------------------------------------------------- matched settings
def matched_settings(
    model: str, args: argparse.Namespace, num_users: int = 0, num_items: int = 0
) -> tuple[dict, dict]:
    """(mmseq model.params, RecBole model settings) with the same architecture.

    LightGCN's initial scale is matched too (unless ``--paper-init``): RecBole draws the
    embedding tables with ``xavier_uniform`` (std ``sqrt(2 / (n + d))`` for an (n, d) table),
    mmseq from a normal with one ``init_std`` (default 0.1, the LightGCN authors' code). The bench
    gives mmseq the xavier std of a table of the mean size ``(num_users + num_items) / 2``; with
    the 0.1 default, mmseq's validation NDCG@10 on Musical Instruments climbs about 3x slower per
    epoch at lr 1e-3 (docs/benchmarks.md).
    """
    if model == "lightgcn":
        ours = {"embedding_dim": 64, "num_layers": 3, "reg_weight": 1e-4}
        if not args.paper_init and num_users and num_items:
            ours["init_std"] = round(math.sqrt(2.0 / ((num_users + num_items) / 2 + 64)), 5)
        theirs = {
            "embedding_size": 64,
            "n_layers": 3,
            "reg_weight": 1e-4,
            "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
        }
    elif model == "sasrec":
        ours = {
            "embedding_dim": 64,
            "num_layers": 2,
            "num_heads": 1,
            "dropout": 0.2,
            "max_len": args.max_len,
        }
        theirs = {
            "hidden_size": 64,
            "inner_size": 64,
            "n_layers": 2,
            "n_heads": 1,
            "hidden_dropout_prob": 0.2,
            "attn_dropout_prob": 0.2,
            "loss_type": "CE",
            "hidden_act": "gelu",
            "train_neg_sample_args": None,
        }
    else:
        ours = {
            "embedding_dim": 64,
            "num_layers": 2,
            "num_heads": 2,
            "ffn_dim": 256,
            "dropout": 0.1,
            "mask_prob": 0.2,
            "max_len": args.max_len,
        }
        theirs = {
            "hidden_size": 64,
            "inner_size": 256,
            "n_layers": 2,
            "n_heads": 2,
            "hidden_dropout_prob": 0.1,
            "attn_dropout_prob": 0.1,
            "mask_ratio": 0.2,
            "loss_type": "CE",
            "hidden_act": "gelu",
            "train_neg_sample_args": None,
        }
    return ours, theirs


def batch_size(model: str) -> int:
    return 2048 if model == "lightgcn" else 256


# ------------------------------------------------------------------------- export
def export_split(split: Any, folder: Path, name: str, *, max_len: int | None = None) -> Path:
    """Write ``split`` as RecBole pre-split atomic files in ``folder`` (created).

    Always writes the plain rows ``<name>.plain.{train,valid,test}.inter`` (mmseq's
    ``write_recbole_inter``: user, item, rating, timestamp). The benchmark files
    ``<name>.{train,valid,test}.inter`` RecBole loads are the plain rows when ``max_len`` is None
    (general models); otherwise one row per target with its previous items (``item_id_list``, the
    last ``max_len``, space separated): every fit item after a user's first (train), each valid
    item after the fit rows, each test item after fit + valid. Per user, file order is time order.

    Returns:
        ``folder``.
    """
    from mmseq.data.readers.recbole import write_recbole_inter

    folder.mkdir(parents=True, exist_ok=True)
    parts = {"train": split.fit, "valid": split.valid, "test": split.test}
    for part, rows in parts.items():
        write_recbole_inter(rows, folder / f"{name}.plain.{part}.inter")
        if max_len is None:
            write_recbole_inter(rows, folder / f"{name}.{part}.inter")
    if max_len is not None:
        for part, text in sequence_files(split, max_len).items():
            (folder / f"{name}.{part}.inter").write_text(text, encoding="utf-8")
    return folder


def sequence_files(split: Any, max_len: int) -> dict[str, str]:
    """``{part: file text}`` of RecBole's sequential pre-split format (see :func:`export_split`)."""
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    users = split.fit.user_ids
    items = split.fit.item_ids
    history: dict[int, list[str]] = {}
    out = {}
    for part, rows in (("train", split.fit), ("valid", split.valid), ("test", split.test)):
        lines = []
        user, item = rows.user.tolist(), items[rows.item].tolist()
        # Targets of valid/test all follow the same history (fit, resp. fit + valid), as in
        # mmseq's scoring; training targets follow their own prefix.
        frozen = {u: list(h) for u, h in history.items()}
        for u, i in zip(user, item):  # one pass over rows: writing a file, not a hot path
            prefix = (history if part == "train" else frozen).get(u, [])
            if prefix:
                lines.append(f"{users[u]}\t{' '.join(prefix[-max_len:])}\t{i}\n")
            if part != "test":
                history.setdefault(u, []).append(i)
        out[part] = header + "".join(lines)
    return out


def prepare(dataset: str, seed: int) -> Any:
    from mmseq.config import load_experiment
    from mmseq.train.experiment import prepare_data

    cfg = load_experiment(REPO / DATASETS[dataset], [f"seed={seed}"])
    return cfg, prepare_data(cfg)


# ------------------------------------------------------------------------- RecBole venv
def ensure_recbole_venv(venv: Path = RECBOLE_VENV) -> Path:
    """RecBole's own interpreter, creating ``venv`` on first use (never mmseq's .venv).

    ``pip install recbole==1.2.1 torch==2.13.0 "setuptools<81"``: torch is held to the CPU wheel
    on disk; setuptools < 81 still ships ``pkg_resources``, which RecBole's dependencies import.
    """
    python = venv / "bin" / "python"
    if python.is_file():
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--find-links",
            str(TORCH_WHEEL_DIR),
            "recbole==1.2.1",
            "torch==2.13.0",
            "setuptools<81",
        ],
        check=True,
    )
    return python


# ------------------------------------------------------------------------- mmseq worker
def eval_floor(task: Any, num_items: int, dim: int, batch: int, repeats: int = 3) -> float:
    """Median seconds of bare scoring: random ``U @ I.T`` + history mask + top-20, same batches."""
    import torch

    from mmseq.eval.protocol import mask_rows

    gen = torch.Generator().manual_seed(0)
    users = torch.randn(task.num_users, dim, generator=gen)
    items = torch.randn(num_items, dim, generator=gen)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for lo in range(0, task.num_users, batch):  # a loop over user batches
            hi = min(lo + batch, task.num_users)
            scores = mask_rows(
                users[lo:hi] @ items.T, task.history_indptr, task.history_indices, lo, hi
            )
            scores.topk(max(KS), dim=1)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peer_test_metrics(model: Any, inputs: Any, task: Any, batch: int) -> dict[str, float]:
    """Test metrics under the bench's definitions (mmseq.eval.metrics.peer_per_user_metrics)."""
    import torch

    from mmseq.eval.metrics import peer_per_user_metrics, pessimistic_rank
    from mmseq.eval.protocol import _csr_rows, mask_rows

    counts = task.target_indptr[1:] - task.target_indptr[:-1]
    chunks = []
    model.train(False)
    with torch.no_grad():
        model.begin_eval(inputs)
        for lo in range(0, task.num_users, batch):  # a loop over user batches
            hi = min(lo + batch, task.num_users)
            scores = model.score_all(task.users[lo:hi], inputs)
            scores = mask_rows(scores, task.history_indptr, task.history_indices, lo, hi)
            segment, cols = _csr_rows(task.target_indptr, task.target_indices, lo, hi)
            ranks = pessimistic_rank(scores, segment, cols)
            chunks.append(peer_per_user_metrics(METRICS, ranks, segment, counts[lo:hi]))
        model.end_eval()
    values = torch.cat(chunks).mean(dim=0)
    return {name: float(values[j]) for j, name in enumerate(METRICS)}


def run_mmseq(job: dict) -> dict:
    """Train and test one mmseq model in this process (the ``--worker`` side)."""
    import torch

    torch.set_num_threads(1)
    import mmseq
    from graphs.compose import build_all
    from mmseq.config import ExperimentConfig, apply_overrides, from_dict, load_experiment, to_dict
    from mmseq.eval.protocol import evaluate, make_eval_task
    from mmseq.seed import seed_everything
    from mmseq.train.experiment import build_model, make_inputs, prepare_data
    from mmseq.train.host_memory import reuse_freed_memory
    from mmseq.train.loop import fit

    cfg = load_experiment(REPO / DATASETS[job["dataset"]], job["overrides"])
    cfg = from_dict(
        ExperimentConfig,
        apply_overrides(to_dict(cfg), [f"model.params={json.dumps(job['params'])}"]),
        where="bench",
    )
    if cfg.train.reuse_memory:  # as run_experiment does
        reuse_freed_memory()
    seed_everything(cfg.seed)
    prepared = prepare_data(cfg)
    model = build_model(cfg, prepared.data.num_users, prepared.data.num_items)
    parts: dict = {}
    graph_seconds = 0.0
    if model.requires_graphs:
        start = time.perf_counter()
        bundle = build_all(
            [{"builder": "interaction_graph"}], prepared.split.fit, cache_dir=None
        )
        parts = {name: bundle[name] for name in model.requires_graphs}
        graph_seconds = time.perf_counter() - start
    fit_inputs, test_inputs = make_inputs(cfg, prepared, parts)
    valid_task = make_eval_task(prepared.split, "valid", ks=KS)
    test_task = make_eval_task(prepared.split, "test", ks=KS)

    epochs: list[dict] = []
    fit_start = time.perf_counter()

    def timed_evaluate(*a: Any, **kw: Any) -> dict:
        start = time.perf_counter()
        out = evaluate(*a, **kw)
        epochs.append(
            {
                "valid_s": time.perf_counter() - start,
                "ndcg@10": out["ndcg@10"],
                "elapsed_s": time.perf_counter() - fit_start,
            }
        )
        return out

    result = fit(
        model,
        train_inputs=fit_inputs,
        valid_inputs=fit_inputs,
        valid_task=valid_task,
        cfg=cfg.train,
        seed=cfg.seed,
        evaluate_fn=timed_evaluate,
    )
    fit_seconds = time.perf_counter() - fit_start
    for row, logs in zip(epochs, result.history):
        row["train_s"] = logs["seconds"] - row["valid_s"]
    start = time.perf_counter()
    evaluate(model, test_inputs, test_task, batch_size=cfg.train.eval_batch_size)
    eval_s = time.perf_counter() - start
    metrics = peer_test_metrics(model, test_inputs, test_task, cfg.train.eval_batch_size)
    floor = eval_floor(test_task, prepared.data.num_items, 64, cfg.train.eval_batch_size)
    return {
        "framework": "mmseq",
        "params": job["params"],
        "version": getattr(mmseq, "__version__", "?"),
        "torch": torch.__version__,
        "model": cfg.model.name,
        "test": metrics,
        "test_users": test_task.num_users,
        "test_eval_seconds": eval_s,
        "eval_floor_s": floor,
        "epochs": epochs,
        "fit_seconds": fit_seconds,
        "graph_seconds": graph_seconds,
        "best_valid_ndcg@10": float(result.best_metrics.get("ndcg@10", float("nan"))),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "data": {
            "users": prepared.data.num_users,
            "items": prepared.data.num_items,
            "fit": len(prepared.split.fit),
            "valid": len(prepared.split.valid),
            "test": len(prepared.split.test),
            "protocol": cfg.split.protocol,
        },
    }


# ------------------------------------------------------------------------- one pair
def recbole_job(dataset: str, model: str, folder: Path, args: argparse.Namespace) -> dict:
    name = folder.name
    _, theirs = matched_settings(model, args)
    sequential = MODELS[model][1]
    config = {
        "data_path": str(folder.parent),
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {
            "inter": ["user_id", "item_id_list", "item_id"]
            if sequential
            else ["user_id", "item_id"]
        },
        "epochs": args.epochs,
        "stopping_step": args.patience,
        "eval_step": 1,
        "train_batch_size": batch_size(model),
        "eval_batch_size": 1024 * 50,
        "learning_rate": args.lr,
        "valid_metric": "NDCG@10",
        "metrics": ["Hit", "NDCG", "Recall", "MRR"],
        "topk": list(KS),
        "eval_args": {"order": "TO", "mode": "full", "group_by": "user"},
        "seed": args.seed,
        "reproducibility": True,
        "device": "cpu",
        "use_gpu": False,
        "worker": 0,
        "show_progress": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "checkpoint_dir": str(folder / "saved"),
        "MAX_ITEM_LIST_LENGTH": args.max_len,
        "log_wandb": False,
        "state": "WARNING",
        "metric_decimal_place": 10,
        # Without this alias RecBole maps item_id_list tokens to ids of their own, apart from
        # item_id: histories and targets would live in two unrelated id spaces.
        **({"alias_of_item_id": ["item_id_list"]} if sequential else {}),
        **theirs,
    }
    return {
        "model": MODELS[model][0],
        "dataset": name,
        "config": config,
        "ks": list(KS),
        "threads": 1,
        "eval_batch_size": 1024,
        "out": str(folder / "recbole_result.json"),
    }


def tree_rss_mib(pid: int) -> float:
    """Resident memory (MiB) of process ``pid`` and all its descendants now (0 once gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def run_child(
    cmd: list[str], env: dict, label: str, cwd: Path | None = None, interval: float = 0.05
) -> float:
    """Run ``cmd`` to the end; returns the peak RSS (MiB) of its process tree.

    The peak is the larger of (a) the kernel's high-water mark of the child and its waited-for
    descendants (``wait4``'s ``ru_maxrss``: exact, but per process) and (b) the sum of RSS over
    the whole tree sampled every ``interval`` s (catches processes alive at the same time).
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        sampled = 0.0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            sampled = max(sampled, tree_rss_mib(proc.pid))
            time.sleep(interval)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            log.seek(0)
            tail = "\n".join(log.read().splitlines()[-25:])
            raise SystemExit(f"{label} failed (exit {proc.returncode}):\n{tail}")
    peak = max(sampled, usage.ru_maxrss / 1024.0)  # ru_maxrss is KiB on Linux
    print(
        f"  {label}: {time.perf_counter() - start:.0f} s, peak RSS {peak:.0f} MiB",
        file=sys.stderr,
        flush=True,
    )
    return peak


def run_pair(dataset: str, model: str, work: Path, args: argparse.Namespace) -> dict:
    cfg, prepared = prepare(dataset, args.seed)
    sequential = MODELS[model][1]
    seq_len = None
    if sequential:
        seq_len = args.max_len - 1 if model == "bert4rec" else args.max_len
    folder = export_split(
        prepared.split, work / f"{dataset}_{model}", f"{dataset}_{model}", max_len=seq_len
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    ours, _ = matched_settings(model, args, prepared.data.num_users, prepared.data.num_items)
    mm_job = {
        "dataset": dataset,
        "params": ours,
        "overrides": [
            f"model.name={model}",
            f"seed={args.seed}",
            f"train.epochs={args.epochs}",
            f"train.patience={args.patience}",
            f"train.lr={args.lr}",
            f"train.batch_size={batch_size(model)}",
            f"train.max_len={args.max_len}",
            "train.threads=1",
            "train.progress=false",
            "train.device=cpu",
            "graphs=[{builder: interaction_graph}]",
        ],
    }
    (folder / "mmseq_job.json").write_text(json.dumps(mm_job))
    rb_job = recbole_job(dataset, model, folder, args)
    (folder / "recbole_job.json").write_text(json.dumps(rb_job))
    print(f"{dataset}:{model}", file=sys.stderr, flush=True)
    mm_env = {
        **env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    }
    mm_cmd = [
        sys.executable,
        __file__,
        "--worker",
        str(folder / "mmseq_job.json"),
        str(folder / "mmseq_result.json"),
    ]
    rb_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    rb_cmd = [
        str(args.recbole_python),
        str(REPO / "scripts" / "recbole_driver.py"),
        str(folder / "recbole_job.json"),
    ]
    # Back to back, alternating: each repeat is a fresh mmseq process then a fresh RecBole one.
    # The results of the last repeat are kept; only the peak RSS is a median over repeats.
    mm_rss, rb_rss = [], []
    for _ in range(args.repeats):
        mm_rss.append(run_child(mm_cmd, mm_env, "mmseq"))
        # RecBole writes log_tensorboard/ into the working directory
        rb_rss.append(run_child(rb_cmd, rb_env, "recbole", cwd=folder))
    mm = json.loads((folder / "mmseq_result.json").read_text())
    rb = json.loads((folder / "recbole_result.json").read_text())
    mm["tree_peak_rss_mib_runs"], rb["tree_peak_rss_mib_runs"] = mm_rss, rb_rss
    return compare(dataset, model, mm, rb)


def _first_reach(epochs: list[dict], level: float) -> float | None:
    for row in epochs:
        if row["ndcg@10"] >= level:
            return row["elapsed_s"]
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def compare(dataset: str, model: str, mm: dict, rb: dict) -> dict:
    def med(rows: list[dict], key: str) -> float | None:
        values = [r[key] for r in rows if key in r]
        return statistics.median(values) if values else None

    side = {}
    for tag, res, other in (("mmseq", mm, rb), ("recbole", rb, mm)):
        side[tag] = {
            "test": res["test"],
            "epochs": len(res["epochs"]),
            "train_s_per_epoch": med(res["epochs"], "train_s"),
            "valid_s": med(res["epochs"], "valid_s"),
            "best_valid_ndcg@10": res["best_valid_ndcg@10"],
            "s_to_other_best": _first_reach(res["epochs"], other["best_valid_ndcg@10"]),
            "peak_rss_mib": res["peak_rss_mib"],
            # Process tree, measured from outside; median over --repeats fresh processes.
            "tree_peak_rss_mib": (
                statistics.median(res["tree_peak_rss_mib_runs"])
                if res.get("tree_peak_rss_mib_runs")
                else None
            ),
            "tree_peak_rss_mib_runs": res.get("tree_peak_rss_mib_runs", []),
        }
    ratios = {
        k: _ratio(side["mmseq"][k], side["recbole"][k])
        for k in (
            "train_s_per_epoch",
            "valid_s",
            "s_to_other_best",
            "peak_rss_mib",
            "tree_peak_rss_mib",
        )
    }
    ratios.update({f"test_{m}": _ratio(mm["test"][m], rb["test"][m]) for m in METRICS})
    floor = mm["eval_floor_s"]
    ratios["mmseq_valid_over_floor"] = _ratio(side["mmseq"]["valid_s"], floor)
    ratios["recbole_valid_over_floor"] = _ratio(side["recbole"]["valid_s"], floor)
    return {
        "dataset": dataset,
        "model": model,
        "protocol": mm["data"]["protocol"],
        "data": mm["data"],
        "eval_floor_s": floor,
        "mmseq_params": mm.get("params"),
        "mmseq": side["mmseq"],
        "recbole": side["recbole"],
        "ratios": ratios,
        "versions": {
            "recbole": rb["version"],
            "torch": rb["torch"],
            "numpy": rb["numpy"],
            "mmseq_torch": mm["torch"],
        },
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def print_table(rows: list[dict]) -> None:
    head = ["data:model", "quantity", "mmseq", "recbole", "mmseq/recbole"]
    lines = []
    for r in rows:
        label = f"{r['dataset']}:{r['model']}"
        for m in METRICS:
            lines.append(
                [
                    label,
                    f"test {m}",
                    r["mmseq"]["test"][m],
                    r["recbole"]["test"][m],
                    r["ratios"][f"test_{m}"],
                ]
            )
        for key, text in (
            ("epochs", "epochs run"),
            ("best_valid_ndcg@10", "best valid ndcg@10"),
            ("train_s_per_epoch", "train s/epoch (median)"),
            ("s_to_other_best", "s until valid ndcg@10 >= other's best"),
            ("valid_s", "valid pass s (median)"),
            ("peak_rss_mib", "peak RSS MiB (main process, last run)"),
            ("tree_peak_rss_mib", "peak RSS MiB (process tree, median)"),
        ):
            lines.append([label, text, r["mmseq"][key], r["recbole"][key], r["ratios"].get(key)])
        lines.append([label, "eval floor s (U@I.T+mask+top-k)", r["eval_floor_s"], None, None])
        lines.append(
            [
                label,
                "valid pass / floor",
                r["ratios"]["mmseq_valid_over_floor"],
                r["ratios"]["recbole_valid_over_floor"],
                None,
            ]
        )
    cells = [head] + [[_fmt(c) for c in line] for line in lines]
    width = [max(len(row[j]) for row in cells) for j in range(len(head))]
    for j, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(width[i]) for i, c in enumerate(row)) + " |")
        if j == 0:
            print("|" + "|".join("-" * (w + 2) for w in width) + "|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        metavar="DATASET:MODEL",
        help=f"pairs to run (default: {', '.join(DEFAULT_PAIRS)})",
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="fresh process pairs per (data set, model), back to back; peak RSS is their median",
    )
    parser.add_argument(
        "--paper-init",
        action="store_true",
        help="keep mmseq LightGCN's default init_std 0.1 instead of matching RecBole's scale",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="where the exported files and results go (default: a temp dir)",
    )
    parser.add_argument("--recbole-venv", type=Path, default=RECBOLE_VENV)
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="WORK_DIR",
        help="only print the table of the pairs already finished in WORK_DIR",
    )
    parser.add_argument("--worker", nargs=2, metavar=("JOB", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        job = json.loads(Path(args.worker[0]).read_text())
        Path(args.worker[1]).write_text(json.dumps(run_mmseq(job), indent=1))
        return 0
    if args.report:
        rows = []
        for folder in sorted(args.report.iterdir()):
            mm, rb = folder / "mmseq_result.json", folder / "recbole_result.json"
            if mm.is_file() and rb.is_file():
                dataset, model = folder.name.rsplit("_", 1)
                rows.append(
                    compare(dataset, model, json.loads(mm.read_text()), json.loads(rb.read_text()))
                )
        print_table(rows)
        print(json.dumps({"bench": "vs_recbole", "report": str(args.report), "rows": rows}))
        return 0
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1 (got {args.repeats})")
    args.recbole_python = ensure_recbole_venv(args.recbole_venv)
    pairs = args.only or list(DEFAULT_PAIRS)
    for pair in pairs:
        dataset, _, model = pair.partition(":")
        if dataset not in DATASETS or model not in MODELS:
            parser.error(
                f"unknown pair {pair!r}: data sets {sorted(DATASETS)}, models {sorted(MODELS)}"
            )
    with tempfile.TemporaryDirectory(prefix="bench_vs_recbole_") as tmp:
        work = args.work_dir or Path(tmp)
        rows = [run_pair(*pair.split(":"), work, args) for pair in pairs]
    print(
        f"settings: epochs {args.epochs}, patience {args.patience}, lr {args.lr}, "
        f"max_len {args.max_len}, seed {args.seed}, repeats {args.repeats}, "
        "1 thread per framework"
    )
    print_table(rows)
    print(
        json.dumps(
            {
                "bench": "vs_recbole",
                "settings": {
                    "epochs": args.epochs,
                    "patience": args.patience,
                    "lr": args.lr,
                    "max_len": args.max_len,
                    "seed": args.seed,
                    "paper_init": args.paper_init,
                    "repeats": args.repeats,
                    "threads": 1,
                },
                "rows": rows,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
