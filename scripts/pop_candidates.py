"""POP under `loo-sampled99` with differently drawn negatives: what do the paper's POP rows imply?

    python scripts/pop_candidates.py --config configs/experiments/peerrec_lastfm.yaml
    python scripts/pop_candidates.py --config configs/experiments/peerrec_lastfm.yaml \
        --negatives ../shared/data/s3rec-lastfm/LastFM_sample.txt.gz

POP scores items by their count in the fit part; each user's test item is ranked against 99
negatives from the items the user never touched, drawn (a) uniformly, as mmseq's protocol does,
(b) in proportion to item popularity (all interactions), as BERT4Rec's original code does, and
(c) from an S3-Rec ``*_sample.txt`` file when ``--negatives`` is given (line = user id, then
99 item ids). Weighted draws without replacement use Gumbel top-k over all items, chunked over
users. Ties are pessimistic, as in mmseq.eval. The last line is JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json

import numpy as np
import scipy.sparse as sp

from mmseq.config import load_experiment
from mmseq.data.prepare import prepare_data
from mmseq.data.schema import user_item_matrix

CHUNK = 1024  # users per block of the (users x items) key matrix


def draw_negatives(seen: sp.csr_matrix, weights: np.ndarray, k: int, seed: int) -> np.ndarray:
    """(U, k) item indices per user, without replacement, in proportion to ``weights`` (n,),
    never an item of that user's row in ``seen`` (U, n)."""
    rng = np.random.default_rng(seed)
    log_w = np.log(np.maximum(weights, 1e-300))
    out = []
    for start in range(0, seen.shape[0], CHUNK):  # blocks of users, not users
        block = seen[start : start + CHUNK]
        keys = log_w[None, :] + rng.gumbel(size=block.shape)  # (b, n)
        keys[block.nonzero()] = -np.inf
        out.append(np.argpartition(-keys, k, axis=1)[:, :k])
    return np.concatenate(out)


def pop_hits(scores: np.ndarray, targets: np.ndarray, negatives: np.ndarray) -> dict[str, float]:
    """HR@1/5/10 of POP: pessimistic rank of each target among its negatives (U, k)."""
    t = scores[targets][:, None]  # (U, 1)
    s = scores[negatives]  # (U, k)
    rank = (s > t).sum(1) + (s == t).sum(1)
    return {f"hr@{k}": round(float((rank < k).mean()), 4) for k in (1, 5, 10)}


def read_s3rec_negatives(path: str, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """(U, 99) mmseq item indices from an S3-Rec sample file, rows in mmseq's user order."""
    item_index = {str(raw): i for i, raw in enumerate(item_ids)}
    rows = {}
    with gzip.open(path, "rt") as f:
        for n, line in enumerate(f, 1):
            user, *items = line.split()
            try:
                rows[user] = [item_index[i] for i in items]
            except KeyError as err:
                raise SystemExit(f"{path}:{n}: negative item {err} is not in the data set") from err
    missing = [str(u) for u in user_ids if str(u) not in rows]
    if missing:
        raise SystemExit(f"{path}: no negatives for {len(missing)} users, e.g. {missing[:3]}")
    return np.array([rows[str(u)] for u in user_ids])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a loo-* experiment config")
    parser.add_argument("--negatives", default=None, help="S3-Rec *_sample.txt(.gz) file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = load_experiment(args.config)
    split = prepare_data(cfg).split
    test = split.test
    users, targets = test.user, test.item  # one test item per kept user
    everything = split.all_interactions()
    seen = user_item_matrix(everything).tocsr()[users]  # (U, n) items each user touched
    scores = np.bincount(split.fit.item, minlength=split.num_items).astype(float)
    popularity = np.bincount(everything.item, minlength=split.num_items).astype(float)
    out = {
        "uniform": pop_hits(scores, targets,
                            draw_negatives(seen, np.ones(split.num_items), 99, args.seed)),
        "popularity": pop_hits(scores, targets, draw_negatives(seen, popularity, 99, args.seed)),
    }
    if args.negatives:
        negatives = read_s3rec_negatives(args.negatives, test.user_ids[users], test.item_ids)
        out["s3rec_file"] = pop_hits(scores, targets, negatives)
    print(f"{args.config}: {len(users)} users, {split.num_items} items; POP (fit counts)")
    for name, hits in out.items():
        print(f"  negatives {name:<11} " + "  ".join(f"{k}={v:.4f}" for k, v in hits.items()))
    print(json.dumps({"bench": "pop_candidates", "config": args.config, **out}))


if __name__ == "__main__":
    main()
