"""Run one RecBole 1.2.1 model on pre-split atomic files; the peer side of bench_vs_recbole.py.

    /work/recbole-venv/bin/python scripts/recbole_driver.py JOB.json

Runs inside RecBole's OWN virtual environment (never mmseq's): it imports neither mmseq nor
anything of this repository. RecBole's files are not edited; the compatibility shims it needs on
numpy 2 / torch 2.13 are applied here, before ``import recbole``:

* numpy 2 removed aliases RecBole still uses (``np.bool8``, ``np.float_``, ...): set back.
* scipy >= 1.12 removed ``dok_matrix._update``, which RecBole's graph models call: set back as
  a plain update of the matrix's dict (the values RecBole passes are non-zero).
* pandas 3 applies ``Series.agg(callable)`` to the whole Series: RecBole's ``seq.agg(len)``
  (lengths of its token sequences) gets pandas 2's element-wise meaning back for ``len`` only.
* pandas 3 (copy-on-write) ignores RecBole's ``feat[field].fillna(..., inplace=True)``; harmless
  here, the exported files have no missing values.
* torch >= 2.6 loads checkpoints with ``weights_only=True``; RecBole's own checkpoints hold a
  config object: ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``.

The job JSON names the data set folder (``<data_path>/<dataset>/<dataset>.{train,valid,test}.inter``
written by the bench), the model, its RecBole settings, and where to write the result JSON.

Test metrics are computed HERE, not by RecBole's evaluator, under the definitions the bench uses on
both sides (shared/docs/protocols.md): each user is scored once from its whole training history
(train + valid rows, file order = chronological), the history items are masked, each distinct test
item is ranked pessimistically (``#(score >= target) - 1``), and HR@K, NDCG@K, RecBole's
Recall@K (hits / |targets|) and MRR@K are averaged over users. RecBole's own test numbers (its
evaluator: ``torch.topk`` ties, and no history mask for sequential models) are reported beside.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import numpy as np  # noqa: E402

for _alias, _target in {
    "bool8": np.bool_,
    "float_": np.float64,
    "complex_": np.complex128,
    "unicode_": np.str_,
    "string_": np.bytes_,
    "int0": np.intp,
    "uint0": np.uintp,
    "object0": np.object_,
    "float96": np.longdouble,
    "Inf": np.inf,
    "NaN": np.nan,
}.items():
    if not hasattr(np, _alias):
        setattr(np, _alias, _target)

import pandas as pd  # noqa: E402
import scipy.sparse  # noqa: E402
import torch  # noqa: E402

_series_agg = pd.Series.agg


def _agg(self, func=None, *args, **kwargs):  # type: ignore[no-untyped-def]
    # pandas 3 applies a callable to the WHOLE Series; RecBole's ``seq.agg(len)`` means the length
    # of every token sequence (pandas < 3 applied it element-wise).
    if func is len:
        return self.map(len)
    return _series_agg(self, func, *args, **kwargs)


pd.Series.agg = _agg
pd.Series.aggregate = _agg

if not hasattr(scipy.sparse.dok_matrix, "_update"):  # scipy >= 1.12 dropped it; RecBole's graph
    # models (LightGCN, NGCF, ...) fill their adjacency through it.
    scipy.sparse.dok_matrix._update = lambda self, values: self._dict.update(values)


def _read_inter(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = [c.split(":")[0] for c in lines[0].split("\t")]
    return header, [line.split("\t") for line in lines[1:] if line]


def _eval_sets(data_dir: Path, name: str) -> tuple[dict, dict]:
    """({user token: [history item tokens, chronological]}, {user token: [test item tokens]})
    from the plain .inter exports (``<name>.plain.{train,valid,test}.inter``)."""
    history: dict[str, list[str]] = {}
    targets: dict[str, list[str]] = {}
    for part in ("train", "valid", "test"):
        header, rows = _read_inter(data_dir / f"{name}.plain.{part}.inter")
        u, i = header.index("user_id"), header.index("item_id")
        into = targets if part == "test" else history
        for row in rows:
            into.setdefault(row[u], []).append(row[i])
    return history, targets


def _metrics_from_ranks(ranks: np.ndarray, seg: np.ndarray, counts: np.ndarray, ks) -> dict:
    """The bench's metric definitions (the same as mmseq.eval.metrics' peer_per_user_metrics)."""
    n = len(counts)
    out = {}
    best = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(best, seg, ranks)
    for k in ks:
        hits = np.bincount(seg, weights=(ranks < k).astype(np.float64), minlength=n)
        gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
        dcg = np.bincount(seg, weights=gains, minlength=n)
        ideal = np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))[np.minimum(counts, k) - 1]
        out[f"hr@{k}"] = float((hits > 0).mean())
        out[f"ndcg@{k}"] = float((dcg / ideal).mean())
        out[f"recall_rb@{k}"] = float((hits / counts).mean())
        out[f"mrr@{k}"] = float(np.where(best < k, 1.0 / (best + 1.0), 0.0).mean())
    return out


def _score_batches(model, dataset, users, history, cfg, sequential: bool, batch: int):
    """Yield (row slice, (b, n_items) scores) for ``users``; column 0 (RecBole's pad) is -inf."""
    from recbole.data.interaction import Interaction

    uid_field, iid_field = dataset.uid_field, dataset.iid_field
    max_len = int(cfg["MAX_ITEM_LIST_LENGTH"] or 50)
    if cfg["model"] == "BERT4Rec":
        max_len -= 1  # room for the appended [MASK]
    for start in range(0, len(users), batch):  # a loop over user batches
        chunk = users[start : start + batch]
        fields = {uid_field: torch.as_tensor(dataset.token2id(uid_field, chunk))}
        if sequential:
            seqs = np.zeros((len(chunk), max_len), dtype=np.int64)
            lens = np.zeros(len(chunk), dtype=np.int64)
            for row, user in enumerate(chunk):
                ids = dataset.token2id(iid_field, history[user][-max_len:])
                seqs[row, : len(ids)] = ids
                lens[row] = len(ids)
            fields[dataset.item_id_list_field] = torch.from_numpy(seqs)
            fields[dataset.item_list_length_field] = torch.from_numpy(lens)
        scores = model.full_sort_predict(Interaction(fields)).view(len(chunk), -1).float()
        scores[:, 0] = float("-inf")
        yield slice(start, start + len(chunk)), scores


def _own_test(model, dataset, cfg, data_dir: Path, name: str, sequential: bool, ks, batch: int):
    history, targets = _eval_sets(data_dir, name)
    users = sorted(targets)
    iid = dataset.iid_field
    hist_ids = {u: dataset.token2id(iid, sorted(set(history.get(u, [])))) for u in users}
    tgt_ids = {u: dataset.token2id(iid, sorted(set(targets[u]))) for u in users}
    all_ranks, all_seg = [], []
    start = time.perf_counter()
    model.eval()
    with torch.no_grad():
        for rows, scores in _score_batches(model, dataset, users, history, cfg, sequential, batch):
            chunk = users[rows]
            h_rows = np.concatenate([np.full(len(hist_ids[u]), j) for j, u in enumerate(chunk)])
            h_cols = np.concatenate([hist_ids[u] for u in chunk])
            scores[torch.from_numpy(h_rows), torch.from_numpy(h_cols)] = float("-inf")
            t_rows = np.concatenate([np.full(len(tgt_ids[u]), j) for j, u in enumerate(chunk)])
            t_cols = np.concatenate([tgt_ids[u] for u in chunk])
            picked = scores[torch.from_numpy(t_rows)]
            target = picked.gather(1, torch.from_numpy(t_cols).view(-1, 1))
            all_ranks.append(((picked >= target).sum(1) - 1).numpy())
            all_seg.append(t_rows + rows.start)
    seconds = time.perf_counter() - start
    counts = np.array([len(tgt_ids[u]) for u in users])
    ranks, seg = np.concatenate(all_ranks), np.concatenate(all_seg)
    return _metrics_from_ranks(ranks, seg, counts, ks), seconds, len(users)


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    torch.set_num_threads(int(job.get("threads", 1)))
    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    wall = time.perf_counter()
    config = Config(model=job["model"], dataset=job["dataset"], config_dict=job["config"])
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, _ = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    setup_seconds = time.perf_counter() - wall

    epochs: list[dict] = []
    fit_start = time.perf_counter()
    train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch

    def timed_train(*args, **kwargs):
        t = time.perf_counter()
        out = train_epoch(*args, **kwargs)
        epochs.append({"train_s": time.perf_counter() - t})
        return out

    def timed_valid(*args, **kwargs):
        t = time.perf_counter()
        out = valid_epoch(*args, **kwargs)
        epochs[-1]["valid_s"] = time.perf_counter() - t
        epochs[-1]["ndcg@10"] = float(out[1]["ndcg@10"])
        epochs[-1]["elapsed_s"] = time.perf_counter() - fit_start
        return out

    trainer._train_epoch, trainer._valid_epoch = timed_train, timed_valid
    trainer.fit(train_data, valid_data, verbose=False, saved=True, show_progress=False)
    fit_seconds = time.perf_counter() - fit_start
    best = torch.load(trainer.saved_model_file, map_location="cpu")
    model.load_state_dict(best["state_dict"])
    sequential = config["MODEL_TYPE"].name == "SEQUENTIAL"
    data_dir = Path(job["config"]["data_path"]) / job["dataset"]
    metrics, eval_s, users = _own_test(
        model,
        dataset,
        config,
        data_dir,
        job["dataset"],
        sequential,
        job["ks"],
        int(job.get("eval_batch_size", 1024)),
    )
    result = {
        "framework": "recbole",
        "version": recbole.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "model": job["model"],
        "test": metrics,
        "test_users": users,
        "eval_seconds": eval_s,
        "epochs": epochs,
        "fit_seconds": fit_seconds,
        "setup_seconds": setup_seconds,
        "best_valid_ndcg@10": float(trainer.best_valid_score),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    Path(job["out"]).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
