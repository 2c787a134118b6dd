"""The continual strategies compared in ADER's study, and the runner that compares them.

* ``"finetune"``: at period t, start from the model of t-1 and train on D_t only.
* ``"joint"``: at period t, retrain on D_1 ∪ ... ∪ D_t (from a fresh model unless
  ``joint_warm_start``).
* ``"ader"``: start from the model of t-1, train on D_t ∪ E_{t-1} with CE + lambda_t * KD(E_{t-1}),
  then choose E_t from D_t ∪ E_{t-1} (:mod:`mmseq.train.continual.ader`, :mod:`.exemplars`).

:func:`run_comparison` trains period 1 once (every strategy is the same there: a fresh model on
D_1; ADER then picks E_1 from it), then runs each strategy from a copy of that model. After
training on period t each strategy is scored on period t+1 (:func:`~.ader.evaluate_samples`), so
T periods give T-1 evaluations, the first shared by all strategies.
"""

from __future__ import annotations

import copy
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from mmseq.config import from_dict, to_dict
from mmseq.data.schema import Interactions
from mmseq.device import resolve_device
from mmseq.errors import ConfigError
from mmseq.models import MODELS, Recommender
from mmseq.registry import Registry
from mmseq.seed import make_generator, seed_everything
from mmseq.train.continual.ader import ader_lambda, evaluate_samples, train_on_samples
from mmseq.train.continual.config import ContinualConfig
from mmseq.train.continual.distillation import Distillation
from mmseq.train.continual.exemplars import select_exemplars
from mmseq.train.continual.periods import Periods, assign_periods, seen_items
from mmseq.train.continual.samples import SequenceTable, predict_logits

log = logging.getLogger(__name__)


def period_generator(seed: int, period: int, stream: int, device: torch.device) -> torch.Generator:
    """A generator for (seed, period, stream), independent of which strategy runs first."""
    state = int(np.random.SeedSequence([seed, period, stream]).generate_state(1)[0])
    return make_generator(state, device)


@dataclass(frozen=True, eq=False)
class ContinualContext:
    """What every strategy reads: the table, items seen per period, the config, a model factory."""

    table: SequenceTable
    seen: Tensor  # (T, num_items) bool, I_t per 0-based period t
    cfg: ContinualConfig
    fresh_model: Callable[[], Recommender]

    def samples(self, periods: range | list[int]) -> Tensor:
        return self.table.sample_rows(list(periods))


class ContinualStrategy(ABC):
    """A way to update a model when period t arrives (registered in :data:`STRATEGIES`)."""

    name: ClassVar[str]

    def __init__(self, ctx: ContinualContext) -> None:
        self.ctx = ctx

    def start(self, model: Recommender) -> dict[str, Any]:
        """Hook after the shared first period (``model`` trained on D_1)."""
        return {}

    @abstractmethod
    def update(self, model: Recommender, t: int,
               generator: torch.Generator) -> tuple[Recommender, dict[str, Any]]:
        """Train through 0-based period ``t >= 1``; returns the model and counts for the report."""


STRATEGIES: Registry[type[ContinualStrategy]] = Registry("continual strategy")


def _train(ctx: ContinualContext, model: Recommender, rows: Tensor, t: int,
           generator: torch.Generator, where: str,
           distillation: Distillation | None = None) -> list[dict[str, float]]:
    return train_on_samples(model, ctx.table, rows, seen_items=ctx.seen[t], cfg=ctx.cfg.train,
                            generator=generator, distillation=distillation, where=where)


@STRATEGIES.register("finetune")
class FineTune(ContinualStrategy):
    """Continue from the model of t-1 on D_t only (the lower bound: forgets)."""

    name = "finetune"

    def update(self, model: Recommender, t: int,
               generator: torch.Generator) -> tuple[Recommender, dict[str, Any]]:
        rows = self.ctx.samples([t])
        history = _train(self.ctx, model, rows, t, generator, f"finetune period {t + 1}")
        return model, {"train_samples": int(rows.numel()), "loss": history[-1]}


@STRATEGIES.register("joint")
class Joint(ContinualStrategy):
    """Retrain on every period so far (the expensive reference)."""

    name = "joint"

    def update(self, model: Recommender, t: int,
               generator: torch.Generator) -> tuple[Recommender, dict[str, Any]]:
        if not self.ctx.cfg.joint_warm_start:
            model = self.ctx.fresh_model()
        rows = self.ctx.samples(range(t + 1))
        history = _train(self.ctx, model, rows, t, generator, f"joint period {t + 1}")
        return model, {"train_samples": int(rows.numel()), "loss": history[-1]}


@STRATEGIES.register("ader")
class ADER(ContinualStrategy):
    """Exemplar replay with adaptive distillation (Mi et al., RecSys 2020)."""

    name = "ader"

    def __init__(self, ctx: ContinualContext) -> None:
        super().__init__(ctx)
        self.exemplars = torch.zeros(0, dtype=torch.long, device=ctx.table.device)

    def _select(self, model: Recommender, candidates: Tensor, t: int) -> None:
        cfg = self.ctx.cfg
        self.exemplars = select_exemplars(
            model, self.ctx.table, candidates, self.ctx.seen[t], budget=cfg.ader.exemplar_budget,
            max_len=cfg.train.max_len, batch_size=cfg.train.eval_batch_size,
            projection_dim=cfg.ader.herding_projection_dim,
            generator=period_generator(cfg.seed, t, 2, self.ctx.table.device),
        )

    def start(self, model: Recommender) -> dict[str, Any]:
        self._select(model, self.ctx.samples([0]), 0)
        return {"exemplars_kept": int(self.exemplars.numel())}

    def update(self, model: Recommender, t: int,
               generator: torch.Generator) -> tuple[Recommender, dict[str, Any]]:
        cfg, ctx = self.ctx.cfg, self.ctx
        new = ctx.samples([t])
        replay = self.exemplars
        weight = ader_lambda(
            cfg.ader.lambda_base, previous_items=int(ctx.seen[t - 1].sum()),
            items=int(ctx.seen[t].sum()), exemplars=int(replay.numel()),
            samples=int(new.numel()), rule=cfg.ader.lambda_rule,
        )
        teacher = predict_logits(model, ctx.table, replay, max_len=cfg.train.max_len,
                                 batch_size=cfg.train.eval_batch_size)  # (E, num_items)
        distillation = Distillation(replay, teacher, torch.nonzero(ctx.seen[t - 1]).flatten(),
                                    weight, cfg.ader.kd_temperature)
        rows = torch.cat([new, replay])
        history = _train(ctx, model, rows, t, generator, f"ader period {t + 1}", distillation)
        self._select(model, rows, t)
        return model, {"train_samples": int(rows.numel()), "lambda": weight,
                       "exemplars_replayed": int(replay.numel()),
                       "exemplars_kept": int(self.exemplars.numel()), "loss": history[-1]}


def check_sequential(model: Recommender, table: SequenceTable, max_len: int, name: str) -> None:
    """Reject models whose next-item scores do not come from the item sequence alone.

    Continual learning here feeds samples as pseudo-users; a model that reads user embeddings
    or graphs (BPR-MF, LightGCN, POP) would silently score the wrong thing. Probe: two pseudo-users
    with the same context must get the same scores.

    Raises:
        ConfigError: naming the model and the reason.
    """
    if not model.trainable or model.requires_graphs:
        raise ConfigError(
            f"Continual strategies need a trainable sequential model without graphs "
            f"(got '{name}': trainable={model.trainable}, graphs={list(model.requires_graphs)})"
        )
    rows = table.sample_rows(range(int(table.period.max()) + 1))[:1].repeat(2)
    if rows.numel() == 0:
        raise ConfigError("Expected at least one user with two interactions (got none)")
    logits = predict_logits(model, table, rows, max_len=max_len, batch_size=2)
    if logits.shape != (2, table.num_items) or not torch.allclose(logits[0], logits[1]):
        raise ConfigError(
            f"Model '{name}' is not sequential: two pseudo-users with the same item sequence get "
            f"scores of shape {tuple(logits.shape)} that differ; choose e.g. 'sasrec'"
        )


@dataclass
class ComparisonResult:
    """Per-period metrics of every strategy, with the counts needed to read them.

    Attributes:
        periods: per 1-based period: ``interactions``, ``samples`` (rows with a context),
            ``items_seen`` (|I_t|), ``new_items``, ``start`` (first timestamp).
        strategies: name -> one dict per evaluation: ``train_period``, ``eval_period``,
            ``metrics``, ``counts`` and strategy ``info``.
        seconds: ``first_period`` (shared) and one entry per strategy.
        config: the resolved config.
    """

    periods: list[dict[str, Any]]
    strategies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def series(self, strategy: str, metric: str) -> list[float]:
        return [row["metrics"][metric] for row in self.strategies[strategy]]

    def mean(self, strategy: str, metric: str) -> float:
        values = self.series(strategy, metric)
        return float(sum(values) / len(values))


def _period_summary(table: SequenceTable, periods: Periods, seen: Tensor) -> list[dict[str, Any]]:
    out, previous = [], 0
    for t in range(periods.num_periods):  # a loop over periods
        in_t = table.period == t
        items = int(seen[t].sum())
        out.append({
            "period": t + 1, "interactions": int(periods.sizes[t]),
            "samples": int(table.sample_rows([t]).numel()), "items_seen": items,
            "new_items": items - previous, "start": int(table.timestamp[in_t].min()),
        })
        previous = items
    return out


def run_comparison(cfg: ContinualConfig, data: Interactions) -> ComparisonResult:
    """Run every strategy of ``cfg.strategies`` over the periods of ``data``."""
    names = [STRATEGIES.get(n).name for n in cfg.strategies]  # unknown names fail before training
    device = resolve_device(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    periods = assign_periods(data.timestamp, cfg.periods.num_periods, cfg.periods.rule)
    table = SequenceTable.build(data, periods.index).to(device)
    num_periods = periods.num_periods
    seen = torch.from_numpy(seen_items(data.item, periods.index, data.num_items, num_periods))
    seen = seen.to(device)
    model_cls = MODELS.get(cfg.model.name)
    model_cfg = from_dict(model_cls.config_class, cfg.model.params,
                          where=f"model.params ({cfg.model.name})")

    def fresh_model() -> Recommender:
        seed_everything(cfg.seed)  # the same initial weights every time (joint retrains)
        return model_cls(model_cfg, data.num_users, data.num_items).to(device)

    ctx = ContinualContext(table, seen, cfg, fresh_model)
    result = ComparisonResult(_period_summary(table, periods, seen), config=to_dict(cfg),
                              data={**data.describe(), "path": cfg.data.path})
    start = time.perf_counter()
    base = fresh_model()
    check_sequential(base, table, cfg.train.max_len, cfg.model.name)
    rows = ctx.samples([0])
    seed_everything(cfg.seed)
    history = _train(ctx, base, rows, 0, period_generator(cfg.seed, 0, 1, device), "period 1")
    first = _evaluate(ctx, base, 0)
    result.seconds["first_period"] = time.perf_counter() - start
    for name in names:  # a loop over strategies, then periods
        start = time.perf_counter()
        strategy = STRATEGIES.get(name)(ctx)
        model = copy.deepcopy(base)
        info = {"train_samples": int(rows.numel()), "loss": history[-1], **strategy.start(model)}
        result.strategies[name] = [{**first, "info": info}]
        for t in range(1, num_periods - 1):
            seed_everything(cfg.seed + t)  # dropout draws: the same for every strategy
            model, info = strategy.update(model, t, period_generator(cfg.seed, t, 1, device))
            result.strategies[name].append({**_evaluate(ctx, model, t), "info": info})
            log.info("%s: trained on period %d, %s", name, t + 1,
                     result.strategies[name][-1]["metrics"])
        result.seconds[name] = time.perf_counter() - start
    return result


def _evaluate(ctx: ContinualContext, model: Recommender, t: int) -> dict[str, Any]:
    """Score the model trained through 0-based period ``t`` on period ``t + 1``."""
    metrics, counts = evaluate_samples(
        model, ctx.table, ctx.samples([t + 1]), seen_items=ctx.seen[t], ks=ctx.cfg.ks,
        max_len=ctx.cfg.train.max_len, batch_size=ctx.cfg.train.eval_batch_size,
    )
    return {"train_period": t + 1, "eval_period": t + 2, "metrics": metrics, "counts": counts}
