"""``loss: sampled`` on every item-softmax model.

Batches carry shared negatives, the loss is the sampled softmax over them, gradients reach every
parameter, and the same seed gives the same loss.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from mmseq.config import TrainConfig, from_dict
from mmseq.data.split import split_interactions
from mmseq.errors import ConfigError
from mmseq.eval.protocol import make_eval_task
from mmseq.models import MODELS, Recommender
from mmseq.models.item_loss import (
    LOG_NQ,
    NEGATIVES,
    NEGATIVES_SEED,
    ItemLossConfig,
    position_negatives,
)
from mmseq.train.loop import fit
from tests.models.test_conformance import clustered_interactions, tiny_inputs

ITEM_SOFTMAX = ("sasrec", "bert4rec", "peerrec", "emkd", "s4rec", "sdmtmp_peer")


def sampled_config(name: str, **loss):
    cls = MODELS.get(name)
    options = {"loss": "sampled", "num_negatives": 6, **loss}
    if name == "sdmtmp_peer":
        return from_dict(cls.config_class, {"peer": options}, where="test")
    return from_dict(cls.config_class, options, where="test")


def make(name: str, data, seed: int = 0, **loss) -> Recommender:
    torch.manual_seed(seed)
    cls = MODELS.get(name)
    return cls(sampled_config(name, **loss), data.num_users, data.num_items)


@pytest.fixture(scope="module")
def data():
    return clustered_interactions(num_users=9, num_items=18, per_user=5)


def test_every_item_softmax_model_has_the_loss_option() -> None:
    for name in ITEM_SOFTMAX:
        cfg = MODELS.get(name).config_class()
        cfg = cfg.peer if name == "sdmtmp_peer" else cfg
        assert isinstance(cfg, ItemLossConfig) and cfg.loss == "ce"  # today's default kept


@pytest.mark.parametrize("name", ITEM_SOFTMAX)
@pytest.mark.parametrize("sampler", ["uniform", "popularity"])
def test_sampled_loss_trains_every_parameter(name: str, sampler: str, data) -> None:
    model = make(name, data, sampler=sampler)
    inputs = tiny_inputs(type(model), data)
    model.train()
    batch = next(iter(model.training_batches(inputs, 16, torch.Generator().manual_seed(0))))
    assert batch[NEGATIVES].shape == (6,) and batch[LOG_NQ].shape == (6,)
    assert int(batch[NEGATIVES].min()) >= 0 and int(batch[NEGATIVES].max()) < data.num_items
    out = model.loss(batch, inputs)
    assert torch.isfinite(out.total)
    out.total.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient in {pname}"


@pytest.mark.parametrize("name", ITEM_SOFTMAX)
def test_sampled_loss_is_deterministic_given_the_seed(name: str, data) -> None:
    losses = []
    for seed in (0, 0, 1):
        model = make(name, data, seed=3)
        inputs = tiny_inputs(type(model), data)
        torch.manual_seed(5)  # dropout
        batch = next(iter(model.training_batches(inputs, 16, torch.Generator().manual_seed(seed))))
        losses.append((batch[NEGATIVES], model.loss(batch, inputs).total.item()))
    assert torch.equal(losses[0][0], losses[1][0]) and losses[0][1] == losses[1][1]
    assert not torch.equal(losses[0][0], losses[2][0])


@pytest.mark.parametrize("name", ITEM_SOFTMAX)
def test_per_position_negatives_train_every_parameter_and_repeat_given_the_seed(
    name: str, data
) -> None:
    losses = []
    for seed in (0, 0, 1):
        model = make(name, data, seed=3, negatives_per="position")
        inputs = tiny_inputs(type(model), data)
        model.train()
        torch.manual_seed(5)  # dropout
        batch = next(iter(model.training_batches(inputs, 16, torch.Generator().manual_seed(seed))))
        assert NEGATIVES not in batch and batch[NEGATIVES_SEED].shape == ()
        out = model.loss(batch, inputs)
        losses.append((int(batch[NEGATIVES_SEED]), out.total.item()))
    assert losses[0] == losses[1] and losses[0] != losses[2]
    out.total.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient in {pname}"


def test_per_position_draws_are_each_positions_own_and_fixed_by_the_seed() -> None:
    config = ItemLossConfig(loss="sampled", num_negatives=64, negatives_per="position")
    seed = torch.tensor(12345)
    negatives, log_nq = position_negatives(config, seed, 7, 500)
    again, _ = position_negatives(config, seed, 7, 500)
    assert negatives.shape == (7, 64) and torch.equal(negatives, again)
    assert int(negatives.min()) >= 0 and int(negatives.max()) < 500
    assert len({tuple(row.tolist()) for row in negatives}) == 7  # every position its own draw
    torch.testing.assert_close(log_nq, torch.tensor(math.log(64 / 500)))
    plain = dataclasses.replace(config, logq_correction=False)
    assert position_negatives(plain, seed, 7, 500)[1] is None


def test_ce_draws_nothing_so_its_batches_are_unchanged(data) -> None:
    cls = MODELS.get("sasrec")
    model = cls(cls.config_class(), data.num_users, data.num_items)
    inputs = tiny_inputs(cls, data)
    batch = next(iter(model.training_batches(inputs, 16, torch.Generator().manual_seed(0))))
    assert NEGATIVES not in batch


def test_without_logq_correction_no_log_nq_is_sent(data) -> None:
    model = make("sasrec", data, logq_correction=False)
    inputs = tiny_inputs(type(model), data)
    batch = next(iter(model.training_batches(inputs, 16, torch.Generator().manual_seed(0))))
    assert NEGATIVES in batch and LOG_NQ not in batch


def test_bad_loss_options_are_config_errors(data) -> None:
    with pytest.raises(ConfigError, match="num_negatives"):
        make("sasrec", data, num_negatives=0)
    with pytest.raises(ConfigError, match="loss"):
        from_dict(MODELS.get("bert4rec").config_class, {"loss": "softmax"}, where="test")
    with pytest.raises(ConfigError, match="negatives_per: position.*popularity"):
        make("sasrec", data, negatives_per="position", sampler="popularity")


@pytest.mark.slow
def test_sasrec_with_sampled_softmax_learns_the_clusters() -> None:
    data = clustered_interactions()  # 45 items, 15 per cluster: 8 negatives miss most of them
    split = split_interactions(data, "loo-full")
    task = make_eval_task(split, "valid")
    cfg = TrainConfig(epochs=12, batch_size=64, lr=1e-2, patience=12, device="cpu", progress=False)
    cls = MODELS.get("sasrec")
    torch.manual_seed(0)
    config = dataclasses.replace(cls.config_class(), loss="sampled", num_negatives=8)
    model = cls(config, split.fit.num_users, split.fit.num_items)
    inputs = tiny_inputs(cls, split.fit, max_len=12)
    result = fit(model, train_inputs=inputs, valid_inputs=inputs, valid_task=task, cfg=cfg, seed=0)
    # Same bar as the full-CE SASRec in test_conformance (0.63-0.64 measured there; random ~0.12).
    assert result.best_metrics["ndcg@10"] > 0.3, result.best_metrics


def test_peerrec_stage_two_runs_on_the_candidates(data) -> None:
    cls = MODELS.get("peerrec")
    config = dataclasses.replace(sampled_config("peerrec"), stage="practice")
    torch.manual_seed(0)
    model = cls(config, data.num_users, data.num_items)
    inputs = tiny_inputs(cls, data)
    batch = next(iter(model.training_batches(inputs, 16, torch.Generator().manual_seed(0))))
    logits, targets = model.peer_logits(batch)
    assert logits.shape[::2] == (2, 7) and bool((targets == 0).all())  # T peers, 1 + 6 columns
    out = model.loss(batch, inputs)
    assert torch.isfinite(out.total) and out.terms["stage"] == 2
