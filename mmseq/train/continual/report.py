"""Plain-text and markdown tables of a continual comparison
(:class:`~mmseq.train.continual.strategies.ComparisonResult`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from mmseq.train.continual.strategies import ComparisonResult


def _date(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%d")


def paper_finding(result: ComparisonResult, metric: str = "recall@20") -> dict[str, Any]:
    """Whether ADER >= joint > fine-tune holds on ``metric``: on the mean, and per evaluation.

    Evaluations after the shared first period only (the first one is the same model for all).
    """
    needed = {"ader", "joint", "finetune"}
    if not needed <= set(result.strategies):
        return {"metric": metric, "checked": False,
                "reason": f"needs strategies {sorted(needed)} (got {sorted(result.strategies)})"}
    series = {n: result.series(n, metric)[1:] for n in needed}
    if not series["ader"]:
        return {"metric": metric, "checked": False, "reason": "only the shared first evaluation"}
    means = {n: sum(v) / len(v) for n, v in series.items()}
    triples = zip(series["ader"], series["joint"], series["finetune"])
    per_period = [a >= j > f for a, j, f in triples]
    return {
        "metric": metric, "checked": True,
        "holds_on_mean": means["ader"] >= means["joint"] > means["finetune"],
        "holds_per_period": per_period,
        "means_after_first": means,
    }


def format_table(result: ComparisonResult, metric: str) -> str:
    """A fixed-width table: one row per strategy, one column per (train -> eval) period, mean."""
    first = next(iter(result.strategies.values()))
    heads = [f"P{r['train_period']}->P{r['eval_period']}" for r in first]
    lines = [f"{metric:<10}" + "".join(f"{h:>10}" for h in heads) + f"{'mean':>10}"]
    for name in result.strategies:
        values = result.series(name, metric)
        lines.append(f"{name:<10}" + "".join(f"{v:>10.4f}" for v in values)
                     + f"{result.mean(name, metric):>10.4f}")
    return "\n".join(lines)


def format_periods(result: ComparisonResult) -> str:
    """One line per period: start date, interactions, samples, items seen, new items."""
    lines = ["period  start       interactions  samples  items_seen  new_items"]
    for p in result.periods:
        lines.append(f"{p['period']:>6}  {_date(p['start'])}  {p['interactions']:>12}  "
                     f"{p['samples']:>7}  {p['items_seen']:>10}  {p['new_items']:>9}")
    return "\n".join(lines)


def markdown_section(result: ComparisonResult, *, title: str,
                     metrics: Sequence[str] = ("recall@20", "ndcg@20"), notes: str = "") -> str:
    """A markdown section (docs/results_ader.md) with per-period tables and the settings."""
    cfg = result.config
    first = next(iter(result.strategies.values()))
    heads = [f"P{r['train_period']}→P{r['eval_period']}" for r in first]
    out = [f"## {title}", ""]
    out.append(
        f"Backbone `{cfg['model']['name']}`; {len(result.periods)} periods by global time "
        f"(rule `{cfg['periods']['rule']}`); {cfg['train']['epochs']} epochs per period, batch "
        f"{cfg['train']['batch_size']}, lr {cfg['train']['lr']}, context "
        f"{cfg['train']['max_len']}; "
        f"ADER: N = {cfg['ader']['exemplar_budget']} exemplars, lambda_base "
        f"{cfg['ader']['lambda_base']}, rule `{cfg['ader']['lambda_rule']}`; joint "
        f"{'warm-started' if cfg['joint_warm_start'] else 'retrained from scratch'}; seed "
        f"{cfg['seed']}. Train on period t, score every interaction of period t+1 (next-item, "
        "full ranking over the items seen up to t). Column P1→P2 is the same model for all."
    )
    out.append("")
    for metric in metrics:
        out.append(f"| {metric} | " + " | ".join(heads) + " | mean |")
        out.append("|---" * (len(heads) + 2) + "|")
        for name in result.strategies:
            values = result.series(name, metric)
            out.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values)
                       + f" | {result.mean(name, metric):.4f} |")
        out.append("")
    scored = " | ".join(str(r["counts"]["samples"]) for r in first)
    left_out = " | ".join(str(r["counts"]["new_item_targets"]) for r in first)
    out.append("| counts | " + " | ".join(heads) + " |")
    out.append("|---" * (len(heads) + 1) + "|")
    out.append(f"| scored interactions | {scored} |")
    out.append(f"| left out (target item not seen yet) | {left_out} |")
    out.append("")
    data = result.data
    out.append(f"Data: `{data.get('path', '?')}` ({data.get('interactions', '?')} interactions, "
               f"{data.get('users', '?')} users, {data.get('items', '?')} items).")
    finding: dict[str, Any] = paper_finding(result, metrics[0]) if metrics else {"checked": False}
    if finding["checked"]:
        means = ", ".join(f"{k} {v:.4f}" for k, v in sorted(finding["means_after_first"].items()))
        verdict = "holds" if finding["holds_on_mean"] else "does NOT hold"
        out.append(f"Paper's finding ADER ≥ joint > fine-tune on {metrics[0]} (mean over the "
                   f"evaluations after the shared first one: {means}): {verdict} here.")
    secs = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    out.append(f"Wall time: {secs}.")
    if notes:
        out.extend(["", notes])
    return "\n".join(out) + "\n"
