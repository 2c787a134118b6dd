"""mmseq/models/sdmtmp_seq.py: the flagship variant (SASRec over graph- and topic-aware items).

Tiny hand-made log and fixed topics from tests/models/test_sdmtmp.py; the model is checked
against its parts (SASRec, SDMTMP) loaded with the same weights.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from graphs.compose import build_all
from mmseq.config import TrainConfig, from_dict, load_experiment
from mmseq.data.inputs import ModelInputs, build_model_inputs
from mmseq.errors import ArtifactError, ConfigError
from mmseq.eval.protocol import evaluate, make_eval_task
from mmseq.identity import config_identity
from mmseq.models import MODELS
from mmseq.models.sasrec import SASRec
from mmseq.models.sdmtmp_seq import ITEM_TEXT, SDMTMPSeq, SDMTMPSeqConfig
from mmseq.train.loop import fit
from tests.models.test_sdmtmp import SPECS, TOPIC_DIM, fixed_topics, tiny_log
from tests.models.test_sdmtmp_peer import synthetic_setup
from tests.script_loader import load_script

SEQ = {"embedding_dim": 8, "max_len": 8, "dropout": 0.0}
SD = {"embedding_dim": 8, "topic_feature_dim": TOPIC_DIM}
OFF = {"item_graph": False, "item_topic": False, "user_long": False, "short_term": False}


def config(sequence: dict | None = None, sdmtmp: dict | None = None, **top) -> SDMTMPSeqConfig:
    return from_dict(
        SDMTMPSeqConfig,
        {"sequence": {**SEQ, **(sequence or {})}, "sdmtmp": {**SD, **(sdmtmp or {})}, **top},
        where="test",
    )


def make(data, seed: int = 0, **kwargs) -> SDMTMPSeq:
    torch.manual_seed(seed)
    return SDMTMPSeq(config(**kwargs), data.num_users, data.num_items)


@pytest.fixture(scope="module")
def data():
    return tiny_log()


@pytest.fixture(scope="module")
def inputs(data) -> ModelInputs:
    bundle = build_all(SPECS, data, artifacts={"topics": fixed_topics(data)}, cache_dir=None)
    return build_model_inputs(data, max_len=8, graphs=dict(bundle.parts))


def batch_of(model: SDMTMPSeq, inputs: ModelInputs) -> dict:
    return next(iter(model.training_batches(inputs, 8, torch.Generator().manual_seed(1))))


def test_registered_and_configured_from_nested_yaml() -> None:
    assert MODELS.get("sdmtmp_seq") is SDMTMPSeq
    cfg = config(sequence={"num_layers": 1}, sdmtmp={"num_layers": 1}, score_loss="bpr")
    assert cfg.sequence.num_layers == 1 and cfg.sdmtmp.num_layers == 1
    assert cfg.user_branches == ("long", "short")


@pytest.mark.parametrize(
    "mapping, match",
    [
        ({"sequence": {"embedding_dim": 16}}, "embedding_dim"),
        ({"sdmtmp": {"ablation": "w/o-H"}}, "item_topic"),
        ({"sdmtmp": {"ablation": "w/o-A"}}, "ablation"),
        ({"text_dim": 0}, "text_dim"),
        ({"text_dropout": 1.0}, "text_dropout"),
        ({"text_dropout": -0.1}, "text_dropout"),
    ],
)
def test_bad_config_is_named(mapping: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config(**mapping)


def test_everything_off_is_sasrec_with_the_same_weights(data, inputs) -> None:
    model = make(data, sdmtmp={"gamma2": 0.0}, **OFF).eval()
    assert model.requires_graphs == ()  # no graph is even loaded
    ref = SASRec(model.config.sequence, data.num_users, data.num_items).eval()
    ref.load_state_dict(model.sequence.state_dict())
    batch = batch_of(model, inputs)
    torch.testing.assert_close(model.loss(batch, inputs).total, ref.loss(batch, inputs).total)
    users = torch.arange(data.num_users)
    torch.testing.assert_close(model.score_all(users, inputs), ref.score_all(users, inputs))


def test_item_table_adds_graph_and_topic_rows_to_the_id_embedding(data, inputs) -> None:
    model = make(data)
    tables = model.represent(inputs)
    enc = model.sdmtmp.encode(inputs)
    ids = model.sequence.item_embedding.weight[1:]
    torch.testing.assert_close(tables.items[1:], ids + enc.item_inter + enc.item_topic)
    assert torch.equal(tables.items[0], torch.zeros(8))
    long_users, _ = model.sdmtmp.long_term(enc)
    torch.testing.assert_close(tables.long_users, long_users)
    only_graph = make(data, item_topic=False).represent(inputs).items[1:]
    torch.testing.assert_close(only_graph, ids + enc.item_inter)


def test_zero_user_gates_give_the_sequence_state(data, inputs) -> None:
    model = make(data).eval()
    users = torch.arange(data.num_users)
    tables = model.represent(inputs)
    h = model.sequence.encode(inputs.seq_items, tables.items)[:, -1]
    assert not torch.allclose(model.score_all(users, inputs), h @ tables.items[1:].T)
    model.user_gate.gates = lambda *b: torch.zeros(b[0].shape[0], 2)
    torch.testing.assert_close(model.score_all(users, inputs), h @ tables.items[1:].T)


def test_short_term_vector_is_sdmtmps_on_the_whole_history(data, inputs) -> None:
    """At scoring time the short-term branch reads the same items and weights as SD-MTMP's."""
    model = make(data)
    users = torch.arange(data.num_users)
    counts = torch.bincount(inputs.user, minlength=data.num_users)
    table = torch.cat([torch.zeros(1, 8), model.sdmtmp.item_embedding.weight])
    short = model.short_term_vector(
        inputs.seq_items, inputs.seq_ratings, inputs.seq_times, counts, table
    )
    torch.testing.assert_close(short, model.sdmtmp.short_term(inputs)[users])


def test_training_never_reads_the_target_rating_or_time(data, inputs) -> None:
    """The last target's rating and timestamp (last history column) cannot change the loss;
    the column before it (the last input item) does, so the check is not vacuous."""
    model = make(
        data, sdmtmp={"short_term_ratio": 1.0}, item_graph=False, item_topic=False, user_long=False
    ).eval()
    with torch.no_grad():  # items far from their 0.02-std init, so that weights matter
        model.sequence.item_embedding.weight.mul_(50.0)
    batch = batch_of(model, inputs)
    base = model.loss(batch, inputs).total

    def loss_with(column: int) -> torch.Tensor:
        ratings, times = inputs.seq_ratings.clone(), inputs.seq_times.clone()
        ratings[:, column] = 5.0 - ratings[:, column]
        times[:, column] = times[:, column] + 30 * 86400
        changed = dataclasses.replace(inputs, seq_ratings=ratings, seq_times=times)
        return model.loss(batch, changed).total

    torch.testing.assert_close(loss_with(-1), base, rtol=0, atol=0)
    assert abs(loss_with(-2) - base) > 1e-3


@pytest.mark.parametrize("kind", ["ce", "bpr"])
def test_loss_terms_are_finite_and_named(data, inputs, kind) -> None:
    model = make(data, score_loss=kind)
    out = model.loss(batch_of(model, inputs), inputs)
    assert set(out.terms) == {kind, "alpha_long", "alpha_short", "l2", "sd"}
    assert torch.isfinite(out.total)


def train(epochs: int, seed: int = 0, **kwargs):
    data, split, inputs = synthetic_setup()
    torch.manual_seed(seed)
    model = SDMTMPSeq(
        config(
            sequence={"embedding_dim": 16, "max_len": 20, "dropout": 0.1},
            sdmtmp={"embedding_dim": 16},
            **kwargs,
        ),
        data.num_users,
        data.num_items,
    )
    task = make_eval_task(split, "valid")
    start = evaluate(model, inputs, task)["ndcg@10"]
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=64,
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
    start, result = train(epochs=6)
    # Measured: 0.041 untrained (about random over 80 items), 0.23 after 6 epochs.
    assert result.best_metrics["ndcg@10"] > 2 * start + 0.05, (start, result.best_metrics)


def test_same_seed_same_loss_values() -> None:
    runs = [train(epochs=2)[1].history for _ in range(2)]
    assert [h["loss"] for h in runs[0]] == [h["loss"] for h in runs[1]]
    assert [h["valid"] for h in runs[0]] == [h["valid"] for h in runs[1]]
    other = train(epochs=1, seed=1)[1].history
    assert other[0]["loss"]["total"] != runs[0][0]["loss"]["total"]


def test_sampled_loss_uses_the_batchs_shared_negatives(data, inputs) -> None:
    pytest.importorskip("mmseq.losses.sampled_softmax")
    model = make(data, score_loss="sampled", num_negatives=4)
    batch = batch_of(model, inputs)
    assert batch["negatives"].shape == (4,)
    out = model.loss(batch, inputs)
    assert "sampled" in out.terms and torch.isfinite(out.total)
    other = {**batch, "negatives": (batch["negatives"] + 1) % data.num_items}
    assert model.loss(other, inputs).terms["sampled"] != out.terms["sampled"]


ROOT = Path(__file__).resolve().parents[2] / "configs" / "experiments"


@pytest.mark.parametrize("dataset", ["musical_instruments", "gift_cards"])
def test_configs_share_data_topics_and_graphs_with_sdmtmp(dataset: str) -> None:
    """Same graph bundle as SD-MTMP's config (so the tables compare models, not graphs)."""
    ours = load_experiment(ROOT / f"sdmtmp_seq_{dataset}.yaml")
    theirs = load_experiment(ROOT / f"sdmtmp_{dataset}.yaml")
    assert ours.model.name == "sdmtmp_seq"
    from_dict(SDMTMPSeqConfig, ours.model.params, where=dataset)
    for name in ("data", "split", "topics", "graphs", "train"):
        assert getattr(ours, name) == getattr(theirs, name), name


@pytest.mark.parametrize(
    ("table", "models"),
    [
        ("33_flagship_musical_instruments",
         {"sasrec", "bert4rec", "peerrec", "sdmtmp_seq", "sdmtmp", "sdmtmp_peer"}),
        ("34_flagship_gift_cards",
         {"sasrec", "bert4rec", "peerrec", "sdmtmp_seq", "sdmtmp", "sdmtmp_peer"}),
    ],
)
def test_results_table_rows_parse(table: str, models: set[str]) -> None:
    module = load_script("make_results")
    rows = module.load_tables()[table].rows
    names = set()
    for row in rows:
        cfg = load_experiment(ROOT.parents[1] / module.load_tables()[table].config, [*row.set])
        names.add(cfg.model.name)
    assert names == models


@pytest.mark.parametrize(
    ("table", "dataset", "chosen"),
    [
        ("33_flagship_musical_instruments", "musical_instruments",
         ["model.params.sdmtmp.score_loss=ce", "model.params.peer_weight=0.5",
          "model.params.peer.dropout=0.5", "model.params.peer.stage1_epochs=20",
          "train.batch_size=1024"]),
        ("34_flagship_gift_cards", "gift_cards",
         ["model.params.sdmtmp.score_loss=ce", "model.params.peer_weight=2.0",
          "model.params.peer.dropout=0.1", "model.params.peer.stage1_epochs=5",
          "train.batch_size=1024"]),
    ],
)
def test_fused_table_row_is_its_studys_choice(table: str, dataset: str, chosen: list[str]) -> None:
    """The fused row of each flagship table runs exactly the point its validation study chose
    (configs/tuning/sdmtmp_peer_<dataset>.yaml, best trial), on the study's own config."""
    module = load_script("make_results")
    tables = module.load_tables()
    rows = [r for r in tables[table].rows if r.label.startswith("SD-MTMP + PeerRec fused")]
    assert len(rows) == 1
    row_cfg = load_experiment(ROOT.parents[1] / tables[table].config, [*rows[0].set])
    study_cfg = load_experiment(ROOT / f"sdmtmp_peer_{dataset}.yaml", chosen)
    assert config_identity(row_cfg) == config_identity(study_cfg)


# ---------------------------------------------------------------------- review-text item rows
TEXT_DIM = 5


def text_features(data) -> torch.Tensor:
    """(num_items, TEXT_DIM) fixed text features; the last item has none (zero row)."""
    x = torch.arange(data.num_items * TEXT_DIM, dtype=torch.float32).reshape(-1, TEXT_DIM)
    x = torch.sin(x)  # distinct, bounded rows
    x[-1] = 0.0
    return x


@pytest.fixture(scope="module")
def text_inputs(data) -> ModelInputs:
    """The tiny log's graphs plus the item_text_embedding part, through the real builder."""
    specs = [*SPECS, {"builder": ITEM_TEXT}]
    artifacts = {"topics": fixed_topics(data), "item_text": text_features(data).numpy()}
    bundle = build_all(specs, data, artifacts=artifacts, cache_dir=None)
    return build_model_inputs(data, max_len=8, graphs=dict(bundle.parts))


TEXT = {"item_text": True, "text_dim": TEXT_DIM}


def test_text_rows_are_added_to_the_item_table(data, text_inputs) -> None:
    model = make(data, **TEXT)
    assert ITEM_TEXT in model.requires_graphs
    tables = model.represent(text_inputs)
    enc = model.sdmtmp.encode(text_inputs)
    ids = model.sequence.item_embedding.weight[1:]
    projected = text_features(data) @ model.text_projection.weight.T  # (n, d), no bias
    torch.testing.assert_close(tables.items[1:], ids + projected + enc.item_inter + enc.item_topic)
    assert torch.equal(tables.items[0], torch.zeros(8))
    # The item without training text gets no text row: ID + graph + topic rows only.
    last = ids[-1] + enc.item_inter[-1] + enc.item_topic[-1]
    torch.testing.assert_close(tables.items[-1], last)


def test_sasrec_plus_text_needs_only_the_text_part_and_changes_scores(data, text_inputs) -> None:
    plain = make(data, sdmtmp={"gamma2": 0.0}, **OFF).eval()
    model = make(data, sdmtmp={"gamma2": 0.0}, **OFF, **TEXT).eval()
    assert model.requires_graphs == (ITEM_TEXT,)
    model.load_state_dict(plain.state_dict(), strict=False)  # same SASRec weights
    users = torch.arange(data.num_users)
    base, scores = plain.score_all(users, text_inputs), model.score_all(users, text_inputs)
    assert (scores - base).abs().max() > 1e-3  # the text path changes the scores
    with torch.no_grad():
        model.text_projection.weight.zero_()  # control: no text row, SASRec's scores again
    torch.testing.assert_close(model.score_all(users, text_inputs), base)


def test_text_projection_is_trained(data, text_inputs) -> None:
    model = make(data, **TEXT, text_layer_norm=True, text_dropout=0.1)
    model.loss(batch_of(model, text_inputs), text_inputs).total.backward()
    assert model.text_projection.weight.grad is not None
    assert model.text_projection.weight.grad.abs().sum() > 0
    assert model.text_projection.bias is None


def test_missing_or_wrong_text_part_is_a_clear_error(data, inputs, text_inputs) -> None:
    model = make(data, **TEXT)
    with pytest.raises(ArtifactError, match=r"needs the graph 'item_text_embedding'.*build_graphs"):
        batch_of(model, inputs)  # before the first step
    with pytest.raises(ArtifactError, match="item_text_embedding"):
        model.represent(inputs)
    wide = make(data, item_text=True, text_dim=TEXT_DIM + 1)
    with pytest.raises(ArtifactError, match=r"features\['text'\] of shape \(9, 6\).*text_dim"):
        wide.represent(text_inputs)
