"""One PeerRec peer as a plain BERT4Rec (same size, same inference cost), and peers as modules.

PeerRec keeps one peer at inference (methods.md 3). A peer together with the shared embedding,
embedding LayerNorm and prediction head has exactly the parameters of mmseq's
:class:`~mmseq.models.bert4rec.BERT4Rec`, so it can be exported as one and served, evaluated or
fine-tuned with BERT4Rec's code:

    bert = export_bert4rec(peerrec_model, peer=0)          # an nn.Module, weights copied
    payload = export_checkpoint(torch.load("run/model.pt"))  # a BERT4Rec run's model.pt payload

No I/O happens here: callers load and save.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from mmseq.config import ModelSection, from_dict
from mmseq.errors import ConfigError
from mmseq.models.bert4rec import BERT4Rec, BERT4RecConfig
from mmseq.models.peerrec import BLOCK_PARAMETERS, PeerRec, PeerRecConfig
from mmseq.nn.transformer import TransformerEncoder

_SHARED = ("token_embedding.weight", "position_embedding.weight", "embedding_norm.weight",
           "embedding_norm.bias", "head.weight", "head.bias", "item_bias")
_PEER_KEY = re.compile(r"^peers\.layers\.(\d+)\.(\w+)$")


def bert4rec_config(config: PeerRecConfig) -> BERT4RecConfig:
    """The BERT4Rec configuration of one PeerRec peer (the fields the two share)."""
    names = {f.name for f in dataclasses.fields(BERT4RecConfig)}
    return BERT4RecConfig(**{n: getattr(config, n) for n in names})


def bert4rec_state_dict(state: Mapping[str, Tensor], peer: int) -> dict[str, Tensor]:
    """Convert a PeerRec ``state_dict`` to BERT4Rec's, keeping peer ``peer``.

    Raises:
        ConfigError: if ``peer`` is not a peer index of ``state``.
    """
    out = {k: state[k].detach().clone() for k in _SHARED}
    for key, value in state.items():
        match = _PEER_KEY.match(key)
        if match is None:
            continue
        if not 0 <= peer < value.shape[0]:
            raise ConfigError(f"Expected 'peer' in [0, {value.shape[0]}) (got {peer})")
        layer, name = match.groups()
        out[f"encoder.blocks.{layer}.{BLOCK_PARAMETERS[name]}"] = value[peer].detach().clone()
    return out


def export_bert4rec(model: PeerRec, peer: int | None = None) -> BERT4Rec:
    """A :class:`BERT4Rec` with the weights of ``model``'s peer ``peer`` (default: the
    inference peer), on the same device, in eval mode."""
    peer = model.config.inference_peer if peer is None else peer
    bert = BERT4Rec(bert4rec_config(model.config), model.num_users, model.num_items)
    bert.load_state_dict(bert4rec_state_dict(model.state_dict(), peer))
    device = model.item_bias.device
    return bert.to(device).eval()


def export_checkpoint(payload: Mapping[str, Any], peer: int | None = None) -> dict[str, Any]:
    """Turn a PeerRec run's ``model.pt`` payload (``{"state_dict", "config"}``, the resolved
    experiment config as written by ``run_experiment``) into a BERT4Rec one.

    The result can be saved as ``model.pt`` of a run directory and re-scored with
    ``mmseq evaluate`` / :func:`mmseq.train.experiment.evaluate_run` as a plain BERT4Rec.
    """
    config = dict(payload["config"])
    model = from_dict(ModelSection, config["model"], where="checkpoint config.model")
    if model.name != "peerrec":
        raise ConfigError(f"Expected a PeerRec checkpoint (got model '{model.name}')")
    peer_cfg = from_dict(PeerRecConfig, model.params, where="checkpoint config.model.params")
    peer = peer_cfg.inference_peer if peer is None else peer
    config["model"] = {"name": "bert4rec",
                       "params": dataclasses.asdict(bert4rec_config(peer_cfg))}
    return {"state_dict": bert4rec_state_dict(payload["state_dict"], peer), "config": config}


def export_peer_encoders(model: PeerRec) -> nn.ModuleList:
    """Every peer as a separate mmseq ``TransformerEncoder`` (the looped reference of
    ``scripts/bench_peerrec.py`` and the tests)."""
    c = model.config
    encoders = nn.ModuleList()
    state = model.state_dict()
    for peer in range(c.num_peers):
        enc = TransformerEncoder(d_model=c.embedding_dim, num_layers=c.num_layers,
                                 num_heads=c.num_heads, ffn_dim=c.ffn_dim, dropout=c.dropout,
                                 causal=False, norm_first=False)
        full = bert4rec_state_dict(state, peer)
        enc.load_state_dict({k[len("encoder."):]: v for k, v in full.items()
                             if k.startswith("encoder.")})
        encoders.append(enc)
    return encoders.to(model.item_bias.device)


def looped_peer_logits(model: PeerRec, encoders: nn.ModuleList, tokens: Tensor,
                       masked: Tensor) -> Tensor:
    """Reference forward with a Python loop over peers: (T, M, num_items) at ``masked``.

    Same maths as ``model.peer_logits``; used only to check and time the batched path.
    """
    t = tokens.shape[1]
    positions = torch.arange(model.config.max_len - t, model.config.max_len,
                             device=tokens.device)
    x = model.embedding_norm(model.token_embedding(tokens) + model.position_embedding(positions))
    hidden = [enc(model.embedding_dropout(x), padding_mask=tokens == 0)[masked]
              for enc in encoders]  # T x (M, d)
    return model.item_logits(torch.stack(hidden))  # (T, M, num_items)
