"""One PeerRec peer as a plain BERT4Rec (same size, same inference cost).

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

from torch import Tensor

from mmseq.config import ModelSection, from_dict
from mmseq.errors import ConfigError
from mmseq.models.bert4rec import BERT4Rec, BERT4RecConfig
from mmseq.models.peerrec import PeerRec, PeerRecConfig, unstack_peer_state

_SHARED = ("token_embedding.weight", "position_embedding.weight", "embedding_norm.weight",
           "embedding_norm.bias", "head.weight", "head.bias", "item_bias")
_PEER_KEY = re.compile(r"^peers\.encoders\.(\d+)\.(.+)$")


def bert4rec_config(config: PeerRecConfig) -> BERT4RecConfig:
    """The BERT4Rec configuration of one PeerRec peer (the fields the two share)."""
    names = {f.name for f in dataclasses.fields(BERT4RecConfig)}
    return BERT4RecConfig(**{n: getattr(config, n) for n in names})


def bert4rec_state_dict(state: Mapping[str, Tensor], peer: int) -> dict[str, Tensor]:
    """Convert a PeerRec ``state_dict`` (per-peer or the old stacked format) to BERT4Rec's,
    keeping peer ``peer``.

    Raises:
        ConfigError: if ``peer`` is not a peer index of ``state``.
    """
    out = {k: state[k].detach().clone() for k in _SHARED}
    matches = [(m, v) for k, v in unstack_peer_state(state).items()
               if (m := _PEER_KEY.match(k)) is not None]
    num_peers = 1 + max((int(m.group(1)) for m, _ in matches), default=-1)
    if not 0 <= peer < num_peers:
        raise ConfigError(f"Expected 'peer' in [0, {num_peers}) (got {peer})")
    for match, value in matches:
        if int(match.group(1)) == peer:
            out[f"encoder.{match.group(2)}"] = value.detach().clone()
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
