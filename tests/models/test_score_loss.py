"""``score_loss: bpr | ce`` of SD-MTMP and the fused SD-MTMP + PeerRec model.

The default (``bpr``) must be the paper's loss bit for bit; ``ce`` is softmax cross-entropy of
the positive over all items on the same score.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graphs.compose import build_all
from mmseq.config import from_dict
from mmseq.data.inputs import build_model_inputs
from mmseq.losses.ranking import bpr_loss
from mmseq.models.sdmtmp import SDMTMP, SDMTMPConfig, score_loss
from mmseq.models.sdmtmp_peer import SDMTMPPeer, SDMTMPPeerConfig
from tests.models.test_sdmtmp import SPECS, TOPIC_DIM, fixed_topics, tiny_log

SD = {"embedding_dim": 8, "topic_feature_dim": TOPIC_DIM}
PEER = {"embedding_dim": 8, "ffn_dim": 16, "max_len": 6, "dropout": 0.0}


@pytest.fixture(scope="module")
def setup():
    data = tiny_log()
    bundle = build_all(SPECS, data, artifacts={"topics": fixed_topics(data)}, cache_dir=None)
    return data, build_model_inputs(data, max_len=8, graphs=dict(bundle.parts))


def batch_of(model, inputs) -> dict:
    return next(iter(model.training_batches(inputs, 8, torch.Generator().manual_seed(1))))


def test_default_is_bpr() -> None:
    assert SDMTMPConfig().score_loss == "bpr"
    assert SDMTMPPeerConfig().sdmtmp.score_loss == "bpr"


def test_bad_value_is_rejected() -> None:
    with pytest.raises(ValueError, match="score_loss"):
        from_dict(SDMTMPConfig, {"score_loss": "bce"}, where="test")


@pytest.mark.parametrize("kind", ["bpr", "ce"])
def test_sdmtmp_loss_term_is_the_named_loss_on_e_u_dot_e_i(setup, kind) -> None:
    data, inputs = setup
    torch.manual_seed(0)
    model = SDMTMP(SDMTMPConfig(**SD, score_loss=kind), data.num_users, data.num_items).eval()
    batch = batch_of(model, inputs)
    user, pos, neg = batch["user"], batch["pos"], batch["neg"]
    users, items = model.final_embeddings(inputs)
    u = users[user]
    if kind == "bpr":  # the expression of the paper-faithful code before the option existed
        expected = bpr_loss((u * items[pos]).sum(-1), (u * items[neg]).sum(-1))
    else:
        expected = F.cross_entropy(u @ items.T, pos)
    out = model.loss(batch, inputs)
    assert set(out.terms) == {kind, "l2", "sd"}
    assert torch.equal(out.terms[kind], expected.detach())  # bit for bit
    torch.testing.assert_close(out.total, expected + out.terms["l2"] + out.terms["sd"])


@pytest.mark.parametrize("kind", ["bpr", "ce"])
def test_fused_loss_term_is_the_mean_over_peers(setup, kind) -> None:
    data, inputs = setup
    torch.manual_seed(0)
    cfg = from_dict(
        SDMTMPPeerConfig,
        {"sdmtmp": {**SD, "score_loss": kind}, "peer": PEER, "peer_weight": 0.0},
        where="test",
    )
    model = SDMTMPPeer(cfg, data.num_users, data.num_items).eval()
    batch = batch_of(model, inputs)
    user, pos, neg = batch["user"], batch["pos"], batch["neg"]
    base, items = model.sdmtmp.final_embeddings(inputs)
    per_peer = []
    for p in range(cfg.peer.num_peers):
        e_u = model.fuse(base[user], model.sequence_states(user, inputs, peer=p))[0][0]
        per_peer.append(score_loss(e_u, items, pos, neg, kind)[1])
    out = model.loss(batch, inputs)
    torch.testing.assert_close(out.terms[kind], torch.stack(per_peer).mean().detach())
    assert "bpr" not in out.terms or kind == "bpr"


def test_ce_and_bpr_give_different_gradients(setup) -> None:
    data, inputs = setup
    grads = []
    for kind in ("bpr", "ce"):
        torch.manual_seed(0)
        model = SDMTMP(SDMTMPConfig(**SD, score_loss=kind), data.num_users, data.num_items)
        model.loss(batch_of(model, inputs), inputs).total.backward()
        grads.append(model.item_embedding.weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_sampled_is_the_shared_sampled_softmax_on_the_same_score(setup) -> None:
    sampled = pytest.importorskip("mmseq.losses.sampled_softmax")
    data, inputs = setup
    torch.manual_seed(0)
    cfg = SDMTMPConfig(**SD, score_loss="sampled", num_negatives=5)
    model = SDMTMP(cfg, data.num_users, data.num_items).eval()
    batch = batch_of(model, inputs)
    assert batch["negatives"].shape == (5,) and batch["log_nq"].shape == (5,)
    users, items = model.final_embeddings(inputs)
    u, pos = users[batch["user"]], batch["pos"]
    expected = sampled.sampled_softmax_loss(
        *sampled.candidate_logits(u, items, pos, batch["negatives"]),
        pos,
        batch["negatives"],
        batch["log_nq"],
    )
    out = model.loss(batch, inputs)
    torch.testing.assert_close(out.terms["sampled"], expected.detach())


def test_sampled_without_negatives_in_the_batch_is_named(setup) -> None:
    data, inputs = setup
    model = SDMTMP(SDMTMPConfig(**SD, score_loss="sampled"), data.num_users, data.num_items)
    batch = {"user": torch.tensor([0]), "pos": torch.tensor([1]), "neg": torch.tensor([2])}
    with pytest.raises(ValueError, match="negatives"):
        model.loss(batch, inputs)
