"""PeerRec: per-peer encoders (= the former stacked ones, old checkpoints load), 1-peer = BERT4Rec,
single-peer export, windows, stages, data split."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmseq.config import DataConfig, ExperimentConfig, TrainConfig, from_dict, to_dict
from mmseq.data.inputs import build_model_inputs
from mmseq.data.load import load_dataset
from mmseq.data.schema import Interactions
from mmseq.data.split import split_interactions
from mmseq.errors import ConfigError
from mmseq.eval.protocol import make_eval_task
from mmseq.losses.peer import deliberate_practice_loss
from mmseq.models.bert4rec import BERT4Rec, BERT4RecConfig
from mmseq.models.peerrec import PeerRec, PeerRecConfig
from mmseq.models.peerrec_export import export_bert4rec, export_checkpoint
from mmseq.models.pop import Pop, PopConfig
from mmseq.train.loop import fit
from tests.models.test_conformance import clustered_interactions

SMALL = {"embedding_dim": 16, "ffn_dim": 32, "max_len": 6}


def stacked_peers():  # noqa: ANN201
    """``StackedPeers`` of scripts/bench_peerrec.py: the former (result_version 1) encoder."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "bench_peerrec.py"
    spec = importlib.util.spec_from_file_location("bench_peerrec_script", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.StackedPeers


def table(lengths: list[int], num_items: int = 12) -> Interactions:
    """User u has items u, u+1, ... (mod num_items), ``lengths[u]`` of them, in that order."""
    user = np.repeat(np.arange(len(lengths)), lengths)
    item = np.concatenate([(u + np.arange(n)) % num_items for u, n in enumerate(lengths)])
    n = len(user)
    return Interactions(
        user=user, item=item.astype(np.int64), rating=np.ones(n, dtype=np.float32),
        timestamp=np.concatenate([np.arange(k) for k in lengths]).astype(np.int64),
        user_ids=np.array([f"u{i}" for i in range(len(lengths))], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(num_items)], dtype=object),
    )


def test_one_peer_is_bert4rec_same_seed_same_weights_batches_and_loss() -> None:
    inputs = build_model_inputs(table([7, 4, 5, 3]), max_len=8)
    torch.manual_seed(7)
    bert = BERT4Rec(BERT4RecConfig(**SMALL, dropout=0.0), 4, 12)
    torch.manual_seed(7)
    peer = PeerRec(PeerRecConfig(**SMALL, dropout=0.0, num_peers=1, stage="distill",
                                 train_windows=False), 4, 12)
    exported = export_bert4rec(peer).state_dict()
    for key, value in bert.state_dict().items():
        assert torch.equal(value, exported[key]), key  # identical initial weights
    b_batch = next(iter(bert.training_batches(inputs, 8, torch.Generator().manual_seed(3))))
    p_batch = next(iter(peer.training_batches(inputs, 8, torch.Generator().manual_seed(3))))
    assert torch.equal(b_batch["input"], p_batch["input"])
    assert torch.equal(b_batch["target"], p_batch["target"])
    bert.train()
    peer.train()
    b_loss = bert.loss(b_batch, inputs).total
    p_out = peer.loss(p_batch, inputs)
    torch.testing.assert_close(p_out.total, b_loss, rtol=1e-6, atol=1e-6)
    assert p_out.terms["kl"].item() == 0.0 and p_out.terms["stage"].item() == 1.0


def test_export_loads_into_bert4rec_and_scores_identically() -> None:
    inputs = build_model_inputs(table([7, 4, 5, 3]), max_len=8)
    torch.manual_seed(0)
    model = PeerRec(PeerRecConfig(**SMALL, num_peers=3, inference_peer=2), 4, 12).eval()
    users = torch.arange(4)
    items = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]])
    with torch.no_grad():
        ours = model.score_all(users, inputs)
        for peer in range(3):
            bert = export_bert4rec(model, peer)
            assert isinstance(bert, BERT4Rec) and not bert.training
            scores = bert.score_all(users, inputs)
            if peer == 2:  # the inference peer
                torch.testing.assert_close(scores, ours, rtol=0, atol=1e-6)
                torch.testing.assert_close(model.score_candidates(users, items, inputs),
                                           scores.gather(1, items), rtol=0, atol=1e-6)
            else:  # different initialisation -> different peer
                assert (scores - ours).abs().max() > 1e-3
    # same size as a BERT4Rec: one peer's encoder + the shared parts
    plain = BERT4Rec(BERT4RecConfig(**SMALL), 4, 12)
    n_bert = sum(p.numel() for p in plain.parameters())
    n_peer_encoder = sum(p.numel() for p in plain.encoder.parameters())
    assert sum(p.numel() for p in bert.parameters()) == n_bert
    assert sum(p.numel() for p in model.parameters()) == n_bert + 2 * n_peer_encoder


def test_export_checkpoint_converts_a_run_payload() -> None:
    torch.manual_seed(0)
    model = PeerRec(PeerRecConfig(**SMALL), 4, 12)
    cfg = from_dict(ExperimentConfig, {"model": {"name": "peerrec", "params": dict(SMALL)}})
    old_format = stacked_peers()(model).state_dict()
    for state in (model.state_dict(), old_format):
        payload = export_checkpoint({"state_dict": state, "config": to_dict(cfg)}, peer=1)
        converted = from_dict(ExperimentConfig, payload["config"], where="converted")
        assert converted.model.name == "bert4rec"
        bert = BERT4Rec(from_dict(BERT4RecConfig, converted.model.params), 4, 12)
        bert.load_state_dict(payload["state_dict"])  # strict: every key present, none extra
        assert torch.equal(bert.encoder.blocks[0].attention.qkv.weight,
                           model.peers.encoders[1].blocks[0].attention.qkv.weight)
    with pytest.raises(ConfigError, match="peer"):
        export_checkpoint({"state_dict": model.state_dict(), "config": to_dict(cfg)}, peer=2)
    with pytest.raises(ConfigError, match="PeerRec checkpoint"):
        export_checkpoint({"state_dict": {}, "config": {"model": {"name": "sasrec"}}})


def test_per_peer_encoders_give_the_stacked_encoders_logits_losses_and_rng_use() -> None:
    torch.manual_seed(0)
    model = PeerRec(PeerRecConfig(**SMALL, num_peers=3), 1, 12).eval()
    stacked = stacked_peers()(model)  # the former encoder, same weights
    tokens = torch.tensor([[0, 0, 3, 13, 5, 6], [1, 2, 13, 4, 13, 6], [0, 0, 0, 0, 2, 13]])
    batch = {"input": tokens, "target": torch.where(tokens == 13, 4, -100)}
    with torch.no_grad():
        logits, targets = model.peer_logits(batch)
        reference, ref_targets = stacked.peer_logits(batch)
        one, ref_one = model.encode(tokens, peer=2), stacked.encode(tokens, peer=2)
    assert logits.shape == (3, 4, 12) and torch.equal(targets, ref_targets)
    assert torch.equal(logits, reference) and torch.equal(one, ref_one)  # bit for bit
    for stage in (1, 2):
        ours = model.loss_from_logits(logits, targets, stage)
        theirs = model.loss_from_logits(reference, targets, stage)
        assert torch.equal(ours.total, theirs.total)
    assert (logits[0] - logits[1]).abs().max() > 1e-3  # peers differ
    # Training mode: dropout draws as many numbers from the global RNG as before.
    model.train()
    after = []
    for encode in (model.encode, stacked.encode):
        torch.manual_seed(5)
        encode(tokens)
        after.append(torch.rand(4))
    assert torch.equal(after[0], after[1])


def test_old_checkpoints_with_stacked_peer_weights_load() -> None:
    torch.manual_seed(0)
    trained = PeerRec(PeerRecConfig(**SMALL, num_peers=3), 4, 12)
    old_format = stacked_peers()(trained).state_dict()
    assert old_format["peers.layers.1.qkv_weight"].shape == (3, 48, 16)
    torch.manual_seed(1)
    fresh = PeerRec(PeerRecConfig(**SMALL, num_peers=3), 4, 12)
    fresh.load_state_dict(old_format)  # strict
    for key, value in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert "peers.layers.1.qkv_weight" in old_format  # the caller's dict is left as it was
    two_peers = PeerRec(PeerRecConfig(**SMALL, num_peers=2), 4, 12)
    with pytest.raises(RuntimeError, match="encoders.2"):  # T does not fit: named, not sliced
        two_peers.load_state_dict(old_format)


def test_training_windows_are_cut_from_the_right() -> None:
    inputs = build_model_inputs(table([7, 2, 0, 3], num_items=7), max_len=4)
    model = PeerRec(PeerRecConfig(**{**SMALL, "max_len": 3}), 4, 7)
    rows, users = model.training_rows(inputs)
    # user 0 has items 0..6 (tokens 1..7): windows end at 7, 4 and the oldest starts at item 0
    assert users.tolist() == [0, 0, 0, 1, 3]
    assert rows.tolist() == [[5, 6, 7], [2, 3, 4], [1, 2, 3], [0, 2, 3], [4, 5, 6]]
    strided = PeerRec(PeerRecConfig(**{**SMALL, "max_len": 3, "window_stride": 2}), 4, 7)
    rows, users = strided.training_rows(inputs)
    assert rows[:3].tolist() == [[5, 6, 7], [3, 4, 5], [1, 2, 3]]
    last_only = PeerRec(PeerRecConfig(**{**SMALL, "max_len": 3, "train_windows": False}), 4, 7)
    rows, users = last_only.training_rows(inputs)
    assert users.tolist() == [0, 1, 3] and rows.tolist() == [[5, 6, 7], [0, 2, 3], [4, 5, 6]]


def test_stage_switch_counts_epochs_and_survives_a_state_dict_round_trip() -> None:
    inputs = build_model_inputs(table([7, 4, 5, 3]), max_len=8)
    model = PeerRec(PeerRecConfig(**SMALL, stage1_epochs=2), 4, 12)
    gen = torch.Generator().manual_seed(0)
    stages = [int(next(iter(model.training_batches(inputs, 8, gen)))["stage"]) for _ in range(3)]
    assert stages == [1, 1, 2]
    resumed = PeerRec(PeerRecConfig(**SMALL, stage1_epochs=2), 4, 12)
    resumed.load_state_dict(model.state_dict())
    assert int(resumed.epochs_started) == 3
    assert [model.stage_of_epoch(e) for e in (1, 2, 3)] == [1, 1, 2]
    for stage, expected in (("distill", 1), ("practice", 2)):
        m = PeerRec(PeerRecConfig(**SMALL, stage=stage, stage1_epochs=2), 4, 12)
        assert {m.stage_of_epoch(e) for e in (1, 5)} == {expected}


def test_stage2_loss_is_the_pure_loss_summed_over_peers_and_reaches_every_parameter() -> None:
    inputs = build_model_inputs(table([7, 4, 5, 3]), max_len=8)
    torch.manual_seed(0)
    cfg = PeerRecConfig(**SMALL, dropout=0.0, stage="practice", alpha=0.3, beta=0.2, gamma=2.0)
    model = PeerRec(cfg, 4, 12).train()
    batch = next(iter(model.training_batches(inputs, 8, torch.Generator().manual_seed(1))))
    out = model.loss(batch, inputs)
    logits, targets = model.peer_logits(batch)
    ref = deliberate_practice_loss(logits, targets, alpha=0.3, beta=0.2, gamma=2.0)
    torch.testing.assert_close(out.total, ref.total.sum())
    assert out.terms["stage"].item() == 2.0
    assert out.terms["filtered"].item() == int(0.2 * targets.numel())
    out.total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("params, match", [
    ({"num_peers": 1}, "num_peers"),
    ({"inference_peer": 2}, "inference_peer"),
    ({"alpha": 1.2}, "alpha"),
    ({"gamma": -1.0}, "gamma"),
    ({"max_len": 1}, "max_len"),
])
def test_bad_config_is_named(params: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PeerRec(PeerRecConfig(**params), 2, 5)


def test_short_training_learns_clustered_data_better_than_pop() -> None:
    data = clustered_interactions()
    split = split_interactions(data, "loo-full")  # 45 items: too few for 99 sampled negatives
    task = make_eval_task(split, "valid")
    inputs = build_model_inputs(split.fit, max_len=12)
    cfg = TrainConfig(epochs=10, batch_size=32, lr=1e-2, patience=10, device="cpu",
                      progress=False)
    ndcg = {}
    for name, model in (("pop", Pop(PopConfig(), data.num_users, data.num_items)),
                        ("peerrec", PeerRec(PeerRecConfig(max_len=12, stage1_epochs=5),
                                            data.num_users, data.num_items))):
        result = fit(model, train_inputs=inputs, valid_inputs=inputs, valid_task=task, cfg=cfg,
                     seed=0)
        ndcg[name] = result.best_metrics["ndcg@10"]
    # As in the conformance suite: a random ranking of the ~35 candidates scores about 0.12.
    assert ndcg["peerrec"] > max(ndcg["pop"], 0.3), ndcg


@pytest.mark.data
@pytest.mark.parametrize("path, mean, std, longest", [
    ("s3rec-lastfm/LastFM.txt.gz", 46.21, 77.69, 897),
    ("s3rec-toys-and-games/Toys_and_Games.txt.gz", 6.63, 8.50, 548),
])
def test_loo_fit_part_has_the_paper_table1_sequence_statistics(shared_data, path: str,
                                                               mean: float, std: float,
                                                               longest: int) -> None:
    """PeerRec's Table 1 describes the training sequences (valid + test items removed)."""
    data = load_dataset(DataConfig(path=path, format="s3rec"), shared_data / path)
    split = split_interactions(data, "loo-sampled99")
    lengths = np.bincount(split.fit.user, minlength=data.num_users)
    full = np.bincount(data.user, minlength=data.num_users)
    assert full.mean() == pytest.approx(mean + 2, abs=0.005)  # the file: 2 more per user
    assert lengths.mean() == pytest.approx(mean, abs=0.005)
    assert lengths.std() == pytest.approx(std, abs=0.01)  # the paper truncates 8.507 to 8.50
    assert (lengths.min(), lengths.max()) == (3, longest)


def test_config_dataclass_matches_bert4rec_fields() -> None:
    shared = {f.name for f in dataclasses.fields(BERT4RecConfig)}
    assert shared <= {f.name for f in dataclasses.fields(PeerRecConfig)}
