"""S4Rec: head/tail groups, augmented batches, gradient reversal into the encoder, learning."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from mmseq.config import TrainConfig
from mmseq.data.inputs import build_model_inputs
from mmseq.data.split import split_interactions
from mmseq.errors import ConfigError
from mmseq.eval.protocol import make_eval_task
from mmseq.models import MODELS
from mmseq.models.s4rec import S4Rec, S4RecConfig, head_tail_groups
from mmseq.train.loop import fit
from tests.models.test_conformance import clustered_interactions

SMALL = S4RecConfig(embedding_dim=16, ffn_dim=16, max_len=8, num_prototypes=4, dropout=0.0)


@pytest.fixture(scope="module")
def data():
    return clustered_interactions(num_users=9, num_items=18, per_user=5)


def first_batch(model: S4Rec, inputs, seed: int = 0) -> dict:
    return next(iter(model.training_batches(inputs, 16, torch.Generator().manual_seed(seed))))


def test_registered_with_the_paper_defaults() -> None:
    assert MODELS.get("s4rec") is S4Rec
    cfg = S4RecConfig()
    assert (cfg.embedding_dim, cfg.max_len, cfg.dropout, cfg.num_prototypes, cfg.cluster_weight,
            cfg.contrastive_weight, cfg.distill_weight, cfg.adversarial_weight) == \
        (64, 50, 0.5, 128, 0.01, 0.1, 0.1, 1.0)


def test_head_tail_groups_hand_cases() -> None:
    counts = [5, 1, 3, 8, 2, 2, 4, 6, 7, 3]  # user 1 (one row) does not train: not ranked
    user = torch.repeat_interleave(torch.arange(10), torch.tensor(counts))
    # 9 ranked users -> ceil(0.2 * 9) = 2 head users: the lengths 8 and 7.
    assert head_tail_groups(user, 10, 0.2).tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    # Ties at the cut are all head; a user without history is tail.
    tied = torch.repeat_interleave(torch.arange(4), torch.tensor([3, 3, 3, 3]))
    assert head_tail_groups(tied, 5, 0.2).tolist() == [1, 1, 1, 1, 0]


def test_batches_carry_two_valid_views_and_the_groups(data) -> None:
    model = S4Rec(SMALL, 9, 18)
    inputs = build_model_inputs(data, max_len=10)
    batch = first_batch(model, inputs)
    groups = head_tail_groups(inputs.user, 9, 0.2)
    assert torch.equal(batch["group"], groups[batch["user"]])
    assert batch["input"].shape == batch["view1"].shape == batch["view2"].shape
    for view in (batch["view1"], batch["view2"]):
        n = (view > 0).sum(1)
        assert torch.equal(view > 0, torch.arange(view.shape[1]) >= view.shape[1] - n[:, None])
        for row, orig in zip(view, batch["input"]):
            assert set(row[row > 0].tolist()) <= set(orig[orig > 0].tolist()) | {model.mask_token}
    assert not torch.equal(batch["view1"], batch["view2"])


def _grads(model: S4Rec, batch: dict, inputs) -> dict[str, torch.Tensor]:
    model.zero_grad()
    model.loss(batch, inputs).total.backward()
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("coefficient", [1.0, 0.5])
def test_adversary_descends_while_the_encoder_ascends(data, coefficient: float) -> None:
    inputs = build_model_inputs(data, max_len=10)
    cfg = dataclasses.replace(SMALL, cluster_weight=0.0, contrastive_weight=0.0,
                              distill_weight=0.0, reversal_coefficient=coefficient)
    torch.manual_seed(0)
    model = S4Rec(cfg, 9, 18)
    batch = first_batch(model, inputs)
    with_adv = _grads(model, batch, inputs)
    model.config = dataclasses.replace(cfg, adversarial_weight=0.0)
    without = _grads(model, batch, inputs)
    # The same term without reversal, by hand.
    model.zero_grad()
    z = F.normalize(model.encode(batch["input"])[:, -1], dim=-1)
    F.cross_entropy(model.group_classifier(z), batch["group"]).backward()
    plain = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    for name, g in plain.items():
        adv = with_adv[name] - without.get(name, torch.zeros_like(g))
        sign = 1.0 if name.startswith("group_classifier") else -coefficient
        torch.testing.assert_close(adv, sign * g, rtol=1e-4, atol=1e-6, msg=name)
    assert plain["encoder.blocks.0.attention.qkv.weight"].abs().sum() > 0


def test_loss_terms_are_finite_and_weighted_as_the_paper(data) -> None:
    torch.manual_seed(0)
    model = S4Rec(SMALL, 9, 18)
    inputs = build_model_inputs(data, max_len=10)
    out = model.loss(first_batch(model, inputs), inputs)
    t = out.terms
    expected = (t["sr_ce"] + 0.01 * t["cluster_ce"] + 0.1 * t["sequence_cl"]
                + 0.1 * t["cluster_kd"] + 1.0 * t["adversarial_ce"])
    torch.testing.assert_close(out.total.detach(), expected)
    assert t["adversarial_ce"].item() == pytest.approx(0.69, abs=0.15)  # ~log 2 untrained


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="num_prototypes"):
        S4Rec(dataclasses.replace(SMALL, num_prototypes=1), 9, 18)
    with pytest.raises(ConfigError, match="head_fraction"):
        S4Rec(dataclasses.replace(SMALL, head_fraction=1.0), 9, 18)


def test_short_training_learns_the_clusters() -> None:
    full = clustered_interactions()
    split = split_interactions(full, "loo-full")
    inputs = build_model_inputs(split.fit, max_len=12)
    cfg = TrainConfig(epochs=12, batch_size=64, lr=1e-2, patience=12, device="cpu",
                      progress=False)
    torch.manual_seed(0)
    model = S4Rec(S4RecConfig(), full.num_users, full.num_items)  # paper defaults
    result = fit(model, train_inputs=inputs, valid_inputs=inputs,
                 valid_task=make_eval_task(split, "valid"), cfg=cfg, seed=0)
    # Measured 0.64 (SASRec 0.64); random ranking ~0.12; with the adversary on the raw z_u 0.16.
    assert result.best_metrics["ndcg@10"] > 0.5, result.best_metrics
