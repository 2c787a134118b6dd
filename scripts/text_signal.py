"""How much next-item signal the items' review-text rows carry in a data set (a diagnostic).

    python scripts/text_signal.py configs/experiments/flagship_musical_instruments.yaml
    python scripts/text_signal.py configs/experiments/sdmtmp_seq_gift_cards.yaml --set \
        "graphs=[{builder: interaction_graph}, {builder: rating_graph}, \
        {builder: user_topic_hypergraph}, {builder: item_topic_hypergraph}, \
        {builder: item_text_embedding}]"

Reads the ``item_text_embedding`` part of the config's graph bundle (each item's mean sentence
embedding of its TRAINING reviews, graphs/item_text_embedding.py; build it first with
scripts/build_graphs.py) and prints two things, as one JSON line after a readable table:

- how alike the items' text rows are: the mean pairwise cosine over items with text (1 would be
  one text for every item) and the mean cosine to each item's nearest other item;
- how well text alone ranks the next items, on the TEST stage with the protocol's own ranks
  (history masked, pessimistic ties): ``score(u, j) = cos(x_last(u), x_j)``, the cosine between
  the user's most recent fit + valid item and each item, against POP on the same task.

With ``--runs RUN_DIR ...`` (finished runs of the same data and split, e.g. SASRec's table runs)
it also compares hits per test target (hit = ranked in the top ``--k``): the share of targets
the text neighbours hit and the run misses is the room the text leaves for that run; the share
of text hits the run also gets says how much of what text finds the run already finds.

No choice is made from it (choices are made on validation, scripts/tune.py); it says whether the
text rows separate items and whether neighbouring texts are what users go on to consume.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mmseq.config import load_experiment
from mmseq.data.inputs import ModelInputs
from mmseq.data.prepare import load_graph_parts, make_inputs, prepare_data
from mmseq.eval.protocol import evaluate, make_eval_task, target_ranks
from mmseq.models.build import build_model
from mmseq.runs import load_trained_run

ITEM_TEXT = "item_text_embedding"


class LastItemText:
    """Ranks items by the cosine of their text row to the user's most recent item's text row.

    Shapes:
        text: (num_items, D) item text rows (zero rows for items without training text).
        score_all: users (B,) -> (B, num_items); a user whose last item has no text scores 0.
    """

    training = False
    eval_by_length = False

    def __init__(self, text: torch.Tensor) -> None:
        self.unit = F.normalize(text.float(), dim=1)  # zero rows stay zero

    def train(self, mode: bool = True) -> LastItemText:
        return self

    def begin_eval(self, inputs: Any) -> None:
        pass

    def end_eval(self) -> None:
        pass

    def score_all(self, users: torch.Tensor, inputs: ModelInputs) -> torch.Tensor:
        last = inputs.seq_items[users, -1] - 1  # (B,) item index; -1 where the row is empty
        rows = self.unit[last.clamp(min=0)] * (last >= 0).unsqueeze(1)  # (B, D)
        return rows @ self.unit.T  # (B, num_items)


def dispersion(text: torch.Tensor) -> dict[str, float]:
    """Mean pairwise cosine and mean nearest-other-item cosine over items with a text row.

    Shapes: text (num_items, D).
    """
    unit = F.normalize(text[text.abs().sum(1) > 0].double(), dim=1)  # (n, D)
    n = unit.shape[0]
    total = unit.sum(0)
    mean_pair = (float(total @ total) - n) / (n * (n - 1))  # off-diagonal mean of unit @ unit.T
    cos = unit @ unit.T
    cos.fill_diagonal_(-2.0)
    return {
        "items_with_text": n,
        "mean_pairwise_cosine": mean_pair,
        "mean_nearest_cosine": float(cos.max(1).values.mean()),
    }


def hit_overlap(text_hits: torch.Tensor, run_hits: torch.Tensor) -> dict[str, float]:
    """Shares of test targets (T,) hit by the text neighbours, the run, only the text, both."""
    text_hits, run_hits = text_hits.bool(), run_hits.bool()
    return {
        "run_hit_rate": float(run_hits.double().mean()),
        "text_hit_rate": float(text_hits.double().mean()),
        "text_only_share": float((text_hits & ~run_hits).double().mean()),
        "run_also_hits_share_of_text_hits": float(run_hits[text_hits].double().mean())
        if text_hits.any() else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="experiment config whose bundle has the part")
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--runs", nargs="*", type=Path, default=[], help="finished run dirs")
    parser.add_argument("--k", type=int, default=10, help="cut-off of a hit (with --runs)")
    args = parser.parse_args(argv)
    cfg = load_experiment(args.config, args.set)
    prepared = prepare_data(cfg)
    parts = load_graph_parts(cfg, prepared.split, (ITEM_TEXT,))
    fit_inputs, test_inputs = make_inputs(cfg, prepared, parts)
    text = parts[ITEM_TEXT].features["text"]  # (num_items, D)
    task = make_eval_task(prepared.split, "test", ks=cfg.ks or None, seed=cfg.split.seed)
    pop_cfg = load_experiment(args.config, [*args.set, "model.name=pop", "model.params={}"])
    pop = build_model(pop_cfg, prepared.data.num_users, prepared.data.num_items)
    pop.fit_closed_form(fit_inputs)
    result: dict[str, Any] = {"config": str(args.config), **dispersion(text)}
    for name, model in (("text_knn", LastItemText(text)), ("pop", pop)):
        metrics = evaluate(model, test_inputs, task)
        result[name] = {k: round(float(v), 4) for k, v in metrics.items()}
    print(f"items with text: {result['items_with_text']} of {prepared.data.num_items}; "
          f"mean pairwise cosine {result['mean_pairwise_cosine']:.3f}; mean nearest-item "
          f"cosine {result['mean_nearest_cosine']:.3f}")
    for name in ("text_knn", "pop"):
        print(f"test {name}: " + " ".join(f"{k}={v}" for k, v in result[name].items()))
    if args.runs:
        text_hits = target_ranks(LastItemText(text), test_inputs, task) < args.k
        result["runs"] = {}
        for run_dir in args.runs:
            run = load_trained_run(run_dir, device="cpu")
            run_task = make_eval_task(run.prepared.split, "test", seed=run.cfg.split.seed)
            if not (torch.equal(run_task.target_indices, task.target_indices)
                    and torch.equal(run_task.history_indices, task.history_indices)):
                raise SystemExit(f"{run_dir}: its test task is not {args.config}'s (another "
                                 "data set or split)")
            run_hits = target_ranks(run.model, run.test_inputs, task) < args.k
            overlap = hit_overlap(text_hits, run_hits)
            result["runs"][str(run_dir)] = overlap
            print(f"{run_dir.name}: " + " ".join(f"{k}={v:.4f}" for k, v in overlap.items()))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
