"""mmseq/models/sdmtmp_peer.py: the fused SD-MTMP + PeerRec model (methods.md 2).

Tiny hand-made log and fixed topics from tests/models/test_sdmtmp.py; every check compares the
fused model with its two parts (SDMTMP, PeerRec) loaded with the same weights.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphs.compose import build_all
from mmseq.config import TrainConfig, from_dict, load_experiment
from mmseq.data.inputs import ModelInputs, build_model_inputs
from mmseq.data.schema import Interactions, TopicAssignments
from mmseq.data.split import split_interactions
from mmseq.data.synthetic import SyntheticConfig, generate_synthetic_with_latents
from mmseq.errors import ConfigError
from mmseq.eval.protocol import evaluate, make_eval_task
from mmseq.losses.ranking import bpr_loss
from mmseq.models import MODELS
from mmseq.models.peerrec import PeerRec
from mmseq.models.sdmtmp import SDMTMP
from mmseq.models.sdmtmp_peer import SDMTMPPeer, SDMTMPPeerConfig
from mmseq.nn.padding import trim_left_padding
from mmseq.train.loop import fit
from tests.models.test_sdmtmp import SPECS, TOPIC_DIM, fixed_topics, tiny_log

PEER = {"embedding_dim": 8, "ffn_dim": 16, "max_len": 6, "dropout": 0.0}
SD = {"embedding_dim": 8, "topic_feature_dim": TOPIC_DIM}


def config(sdmtmp: dict | None = None, peer: dict | None = None, **top) -> SDMTMPPeerConfig:
    return from_dict(
        SDMTMPPeerConfig,
        {"sdmtmp": {**SD, **(sdmtmp or {})}, "peer": {**PEER, **(peer or {})}, **top},
        where="test",
    )


def make(data: Interactions, seed: int = 0, **kwargs) -> SDMTMPPeer:
    torch.manual_seed(seed)
    return SDMTMPPeer(config(**kwargs), data.num_users, data.num_items)


@pytest.fixture(scope="module")
def data() -> Interactions:
    return tiny_log()  # 6 users, 9 items; user 0 has 8 items (two windows of 6)


@pytest.fixture(scope="module")
def inputs(data: Interactions) -> ModelInputs:
    bundle = build_all(SPECS, data, artifacts={"topics": fixed_topics(data)}, cache_dir=None)
    return build_model_inputs(data, max_len=8, graphs=dict(bundle.parts))


def first_batch(model: SDMTMPPeer, inputs: ModelInputs, seed: int = 1) -> dict:
    return next(iter(model.training_batches(inputs, 8, torch.Generator().manual_seed(seed))))


def parts_like(model: SDMTMPPeer, data: Interactions) -> tuple[SDMTMP, PeerRec]:
    """A standalone SDMTMP and PeerRec holding the fused model's weights."""
    sd = SDMTMP(model.config.sdmtmp, data.num_users, data.num_items)
    sd.load_state_dict(model.sdmtmp.state_dict())
    peer = PeerRec(model.config.peer, data.num_users, data.num_items)
    peer.load_state_dict(model.peer.state_dict())
    return sd, peer


# ---------------------------------------------------------------------------- config
def test_registered_with_nested_configs_from_yaml_mappings() -> None:
    assert MODELS.get("sdmtmp_peer") is SDMTMPPeer
    cfg = from_dict(
        SDMTMPPeerConfig,
        {"sdmtmp": {"ablation": "w/o-A"}, "peer": {"max_len": 50}, "peer_weight": 0.5},
        where="t",
    )
    assert cfg.sdmtmp.ablation == "w/o-A" and cfg.sdmtmp.gamma2 == 0.4  # SD-MTMP's defaults
    assert cfg.peer.max_len == 50 and cfg.peer.num_peers == 2 and cfg.peer_weight == 0.5


@pytest.mark.parametrize(
    "mapping, match",
    [
        ({"peer": {"embedding_dim": 32}}, r"sdmtmp\.embedding_dim.*peer\.embedding_dim.*64 and 32"),
        ({"peer_weight": -1.0}, "peer_weight"),
        ({"sdmtmp": {"ablation": "w/o-X"}}, r"model\.params\.sdmtmp\.ablation"),
        ({"peer": {"max_lenn": 5}}, "did you mean 'max_len'"),
    ],
)
def test_bad_config_is_named(mapping: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        from_dict(SDMTMPPeerConfig, mapping, where="model.params")


def test_peer_config_is_checked_by_peerrec(data) -> None:
    with pytest.raises(ConfigError, match="inference_peer"):
        make(data, peer={"inference_peer": 2})


# ---------------------------------------------------------------------------- representations
def test_sequence_states_are_peerrec_user_states_for_every_peer(data, inputs) -> None:
    model = make(data).eval()
    users = torch.tensor([4, 0, 3, 0])  # repeated user: encoded once, copied
    with torch.no_grad():
        every = model.sequence_states(users, inputs)
        assert every.shape == (2, 4, 8)
        for p in range(2):  # each peer's row is PeerRec's scoring state with that peer
            peer = dataclasses.replace(model.config.peer, inference_peer=p)
            ref = PeerRec(peer, data.num_users, data.num_items)
            ref.load_state_dict(model.peer.state_dict())
            torch.testing.assert_close(every[p], ref.eval()._user_states(users, inputs))
        torch.testing.assert_close(model.sequence_states(users, inputs, peer=1)[0], every[1])


def test_alpha3_is_sigmoid_of_e_seq_dot_w_seq_and_adds_to_the_base(data) -> None:
    model = make(data)
    base = torch.randn(3, 8)
    seq = torch.randn(2, 3, 8) * 5
    fused, alpha = model.fuse(base, seq)
    w = model.sequence_gate.gate_weight[0]  # (d,)
    by_hand = torch.sigmoid(seq @ w)  # (2, 3)
    torch.testing.assert_close(alpha, by_hand)
    assert ((alpha > 0) & (alpha < 1)).all()
    torch.testing.assert_close(fused, base + by_hand.unsqueeze(-1) * seq)
    bound = (6 / (1 + 8)) ** 0.5  # Xavier-uniform on the (1, d) gate vector
    assert 0 < w.abs().max() <= bound


# ---------------------------------------------------------------------------- loss
def test_with_peer_weight_0_and_alpha3_forced_to_0_the_loss_is_sdmtmps(data, inputs) -> None:
    model = make(data, peer_weight=0.0).eval()
    sd, _ = parts_like(model, data)
    batch = first_batch(model, inputs)
    assert "peer_input" not in batch  # peer_weight 0: no cloze sequences are even drawn
    ref = sd.eval().loss(batch, inputs)
    out = model.loss(batch, inputs)
    assert abs(out.terms["bpr"] - ref.terms["bpr"]) > 1e-4  # the e^seq branch matters...
    model.sequence_gate.gates = lambda *branches: torch.zeros(branches[0].shape[0], 1)
    out = model.loss(batch, inputs)  # ...and is the only difference
    torch.testing.assert_close(out.terms["bpr"], ref.terms["bpr"])
    for name in ("l2", "sd"):
        torch.testing.assert_close(out.terms[name], ref.terms[name])
    torch.testing.assert_close(out.total, ref.total)
    assert not any(k.startswith("peer") for k in out.terms)


def test_fused_bpr_is_the_mean_over_peers_of_each_peers_bpr(data, inputs) -> None:
    model = make(data).eval()
    batch = first_batch(model, inputs)
    user, pos, neg = batch["user"], batch["pos"], batch["neg"]
    base, items = model.sdmtmp.final_embeddings(inputs)
    per_peer = []
    for p in range(2):
        e_u, _ = model.fuse(base[user], model.sequence_states(user, inputs, peer=p))
        per_peer.append(bpr_loss((e_u[0] * items[pos]).sum(-1), (e_u[0] * items[neg]).sum(-1)))
    out = model.loss(batch, inputs)
    torch.testing.assert_close(out.terms["bpr"], (per_peer[0] + per_peer[1]).detach() / 2)
    assert abs(per_peer[0] - per_peer[1]) > 1e-5  # the peers differ


@pytest.mark.parametrize("stage, stage1_epochs", [(1, 5), (2, 0)])
def test_peer_term_is_peerrecs_loss_on_the_same_batch(data, inputs, stage, stage1_epochs) -> None:
    model = make(data, peer={"stage1_epochs": stage1_epochs, "beta": 0.2}, peer_weight=0.7).eval()
    sd, peer = parts_like(model, data)
    batch = first_batch(model, inputs)
    assert int(batch["stage"]) == stage
    out = model.loss(batch, inputs)
    ref = peer.eval().loss(
        {"input": batch["peer_input"], "target": batch["peer_target"], "stage": batch["stage"]},
        inputs,
    )
    torch.testing.assert_close(out.terms["peer"], 0.7 * ref.total.detach())
    for name, value in ref.terms.items():
        torch.testing.assert_close(out.terms[f"peer_{name}"], value)
    parts = out.terms["bpr"] + out.terms["l2"] + out.terms["sd"] + out.terms["peer"]
    torch.testing.assert_close(out.total.detach(), parts)
    assert sd.loss(batch, inputs).terms.keys() <= out.terms.keys()


def test_peer_sequences_are_the_training_windows_of_the_batch_users_only(data, inputs) -> None:
    model = make(data)
    batch = first_batch(model, inputs)
    tokens, target = batch["peer_input"], batch["peer_target"]
    restored = torch.where(target >= 0, target + 1, tokens)  # undo the cloze mask
    assert not (restored == model.peer.mask_token).any()
    rows, row_users = model.peer.training_rows(inputs)
    pick = torch.isin(row_users, batch["user"])
    expected = trim_left_padding(rows[pick])
    assert torch.equal(restored, expected)
    # Each window holds only the user's own history (the fit rows given), in order.
    for window, u in zip(restored.tolist(), row_users[pick].tolist()):
        items = [t - 1 for t in window if t > 0]
        history = inputs.item[inputs.user == u].tolist()
        assert any(history[s : s + len(items)] == items for s in range(len(history)))
    assert set(row_users[pick].tolist()) == set(batch["user"].tolist())
    assert restored.shape[0] == int(pick.sum()) > len(set(batch["user"].tolist())) - 1


def test_every_sdmtmp_ablation_composes(data, inputs) -> None:
    for ablation in ("none", "w/o-H", "w/o-S1", "w/o-S2", "w/o-A"):
        model = make(data, sdmtmp={"ablation": ablation})
        out = model.loss(first_batch(model, inputs), inputs)
        assert torch.isfinite(out.total), ablation
        aux = {"none": "sd", "w/o-S1": "infonce", "w/o-A": "sd"}.get(ablation)
        assert (aux in out.terms) if aux else not ({"sd", "infonce"} & out.terms.keys())
    assert make(data, sdmtmp={"ablation": "w/o-H"}).requires_graphs == ("rating_graph",)


def test_wo_a_user_is_alpha1_long_plus_alpha3_seq(data, inputs) -> None:
    model = make(data, sdmtmp={"ablation": "w/o-A"}).eval()
    users = torch.arange(6)
    with torch.no_grad():
        long_users, _ = model.sdmtmp.long_term(model.sdmtmp.encode(inputs))
        seq = model.sequence_states(users, inputs, peer=0)[0]
        alpha1 = torch.sigmoid(long_users @ model.sdmtmp.fusion.gate_weight[0])
        alpha3 = torch.sigmoid(seq @ model.sequence_gate.gate_weight[0])
        by_hand = alpha1[:, None] * long_users + alpha3[:, None] * seq
        torch.testing.assert_close(model.final_embeddings(inputs)[0], by_hand)


# ---------------------------------------------------------------------------- inference
def test_scores_use_only_the_inference_peer(data, inputs) -> None:
    users = torch.arange(6)

    def scores(model: SDMTMPPeer) -> torch.Tensor:
        with torch.no_grad():
            model.begin_eval(inputs)
            cached = model.score_all(users, inputs)
            model.end_eval()
            torch.testing.assert_close(model.score_all(users, inputs), cached)
        return cached

    model = make(data, peer={"inference_peer": 1}).eval()
    before = scores(model)
    with torch.no_grad():
        for p in model.peer.peers.encoders[0].parameters():  # scramble peer 0 only
            p.add_(torch.randn_like(p))
    torch.testing.assert_close(scores(model), before, rtol=0, atol=0)
    with torch.no_grad():
        model.peer.peers.encoders[1].blocks[0].attention.qkv.weight.mul_(-1.0)
    assert not torch.allclose(scores(model), before)


def test_old_checkpoints_with_stacked_peer_weights_load(data) -> None:
    from tests.models.test_peerrec import stacked_peers

    trained = make(data, seed=0)
    old_peer = stacked_peers()(trained.peer).state_dict()  # PeerRec's former stacked format
    old_format = {k: v for k, v in trained.state_dict().items() if not k.startswith("peer.")}
    old_format.update({f"peer.{k}": v for k, v in old_peer.items()})
    assert "peer.peers.layers.0.qkv_weight" in old_format
    fresh = make(data, seed=1)
    fresh.load_state_dict(old_format)  # strict
    for key, value in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


# ---------------------------------------------------------------------------- training
def synthetic_setup(num_users: int = 120, num_items: int = 80):
    """The demo's synthetic generator (smaller, no text); its true item topics stand in for the
    topic stage, with user memberships counted from the FIT rows only."""
    data, latents = generate_synthetic_with_latents(
        SyntheticConfig(
            num_users=num_users, num_items=num_items, num_topics=4, with_text=False, seed=0
        )
    )
    split = split_interactions(data, "ratio-80-20")
    fit_rows, k = split.fit, 4
    item_topic = np.zeros((data.num_items, k), dtype=np.float32)
    seen = np.unique(fit_rows.item)
    item_topic[seen, latents.item_topic[seen]] = 1.0
    user_topic = np.zeros((data.num_users, k), dtype=np.float32)
    np.add.at(user_topic, fit_rows.user, item_topic[fit_rows.item])
    emb = np.random.default_rng(0).standard_normal((k, TOPIC_DIM)).astype(np.float32)
    topics = TopicAssignments(
        emb, sp.csr_matrix(user_topic), sp.csr_matrix(item_topic), tuple(f"t{g}" for g in range(k))
    )
    bundle = build_all(SPECS, fit_rows, artifacts={"topics": topics}, cache_dir=None)
    inputs = build_model_inputs(fit_rows, max_len=20, graphs=dict(bundle.parts))
    return data, split, inputs


def train(data, split, inputs, epochs: int, seed: int = 0):
    model = make(
        data,
        seed=seed,
        sdmtmp={"embedding_dim": 16},
        peer={
            "embedding_dim": 16,
            "ffn_dim": 32,
            "max_len": 20,
            "dropout": 0.1,
            "stage1_epochs": 3,
        },
    )
    task = make_eval_task(split, "valid")
    start = evaluate(model, inputs, task)["ndcg@10"]
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=256,
        lr=5e-3,
        patience=epochs,
        device="cpu",
        progress=False,
        threads=1,
    )
    result = fit(
        model, train_inputs=inputs, valid_inputs=inputs, valid_task=task, cfg=cfg, seed=seed
    )
    return start, result


def test_short_training_on_synthetic_data_improves_validation_ndcg() -> None:
    data, split, inputs = synthetic_setup()
    start, result = train(data, split, inputs, epochs=6)
    stages = [h["loss"]["peer_stage"] for h in result.history]
    assert stages == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]  # both PeerRec stages ran
    # Measured: 0.044 untrained (about random over 80 items), 0.215 after 6 epochs.
    assert result.best_metrics["ndcg@10"] > 2 * start + 0.05, (start, result.best_metrics)


def test_same_seed_same_loss_values() -> None:
    data, split, inputs = synthetic_setup(num_users=40, num_items=30)
    runs = [train(data, split, inputs, epochs=2)[1].history for _ in range(2)]
    assert [h["loss"] for h in runs[0]] == [h["loss"] for h in runs[1]]
    assert [h["valid"] for h in runs[0]] == [h["valid"] for h in runs[1]]
    other = train(data, split, inputs, epochs=1, seed=1)[1].history
    assert other[0]["loss"]["total"] != runs[0][0]["loss"]["total"]


# ---------------------------------------------------------------------------- configs
ROOT = Path(__file__).resolve().parents[2] / "configs" / "experiments"
DATASETS = ("musical_instruments", "gift_cards", "fashion")


def sections(text: str, names: tuple[str, ...]) -> str:
    """The top-level YAML sections ``names`` of ``text``, verbatim."""
    out, keep = [], False
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            keep = line.split(":")[0] in names
        if keep:
            out.append(line)
    return "\n".join(out)


@pytest.mark.parametrize("dataset", DATASETS)
def test_configs_share_data_topics_and_graphs_with_sdmtmp(dataset: str) -> None:
    path = ROOT / f"sdmtmp_peer_{dataset}.yaml"
    cfg = load_experiment(path)
    assert cfg.model.name == "sdmtmp_peer"
    model_cfg = from_dict(SDMTMPPeerConfig, cfg.model.params, where=str(path))
    assert model_cfg.peer.max_len <= 50 and 0 < model_cfg.peer.stage1_epochs < cfg.train.epochs
    ours, theirs = path.read_text(), (ROOT / f"sdmtmp_{dataset}.yaml").read_text()
    shared = ("data", "split", "topics", "graphs", "train", "seed")
    assert sections(ours, shared) == sections(theirs, shared)
    assert load_experiment(ROOT / f"sdmtmp_{dataset}.yaml").graphs == cfg.graphs
