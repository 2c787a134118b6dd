"""SD-MTMP + PeerRec: the fused flagship model (shared/docs/methods.md section 2).

SD-MTMP (methods.md 1; :mod:`mmseq.models.sdmtmp`) gives the long- and short-term user
representations and the item representation ``e_i``; PeerRec's peer encoders
(methods.md 3; :mod:`mmseq.models.peerrec`) give a third user representation ``e_u^seq``, the
hidden state at a [MASK] appended after the user's history. The gate gets a third term:

    ``e_u = alpha1 e_u^long + alpha2 e_u^short + alpha3 e_u^seq``,
    ``alpha3 = sigmoid(e_u^seq . w_seq)``,  ``score(u, i) = e_u . e_i``.

Training (one trainer batch = one SD-MTMP BPR batch): BPR (or ``sdmtmp.score_loss``: ce,
sampled) on the fused score for EVERY peer's ``e_u^seq`` (mean over peers) +
SD-MTMP's ``gamma2 Loss_SD`` and L2 + ``peer_weight`` times PeerRec's stage-1/stage-2 loss on
cloze-masked training sequences of the batch's users. Inference keeps one peer
(``peer.inference_peer``). Both parts are submodules, used through their public methods; this
module only wires them (docs/sdmtmp_peer.md for the readings).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from mmseq.data.sampling import cloze_mask
from mmseq.errors import ConfigError
from mmseq.models.base import EmbeddingRecommender, LossOutput, ModelInputs
from mmseq.models.item_loss import NEGATIVE_KEYS, draws_negatives
from mmseq.models.peerrec import PeerRec, PeerRecConfig
from mmseq.models.registry import MODELS
from mmseq.models.sdmtmp import SDMTMP, SDMTMPConfig, score_loss, shared_negatives
from mmseq.nn.gated_fusion import AdaptiveGatedFusion
from mmseq.nn.padding import trim_left_padding
from mmseq.nn.scores import item_scores

log = logging.getLogger(__name__)

#: Users per peer-encoder pass when ``begin_eval`` caches every user's ``e_u`` (memory bound only).
EVAL_CHUNK = 2048


@dataclass(frozen=True)
class SDMTMPPeerConfig:
    """The fused model: an SD-MTMP part, a PeerRec part and the weight of the peer losses.

    In YAML the two parts are nested mappings (``model.params.sdmtmp.ablation: w/o-A``,
    ``model.params.peer.max_len: 50``); keys left out take that part's own defaults.
    """

    sdmtmp: SDMTMPConfig = field(default_factory=SDMTMPConfig)  # methods.md 1 (ablation incl.)
    peer: PeerRecConfig = field(default_factory=PeerRecConfig)  # methods.md 3, the e^seq branch
    peer_weight: float = 1.0  # weight of PeerRec's stage-1/2 loss in the total (0 = BPR only)

    def __post_init__(self) -> None:
        if self.sdmtmp.embedding_dim != self.peer.embedding_dim:
            raise ConfigError(
                "Expected 'sdmtmp.embedding_dim' to equal 'peer.embedding_dim' (e_u^seq is added "
                f"to e_u^long and scored against e_i) (got {self.sdmtmp.embedding_dim} and "
                f"{self.peer.embedding_dim})"
            )
        if not (math.isfinite(self.peer_weight) and self.peer_weight >= 0):
            raise ConfigError(f"Expected 'peer_weight' >= 0 and finite (got {self.peer_weight})")


@MODELS.register("sdmtmp_peer")
class SDMTMPPeer(EmbeddingRecommender):
    """SD-MTMP with a peer-distilled sequential branch (methods.md 2).

    ``e_u = [alpha1 e^long + alpha2 e^short]_SD-MTMP + alpha3 e^seq``. The first two terms are
    SD-MTMP's own gated fusion (its ablation switch applies: w/o-A drops ``e^short``); ``alpha3``
    is an independent sigmoid gate with its own Xavier-initialised vector ``w_seq``, which is the
    same function as one three-branch :class:`AdaptiveGatedFusion` because the gates do not
    interact. Loss: ``mean_peers BPR + [gamma2 Loss_SD] + lambda L2 + peer_weight * L_peer``.

    Args:
        config: :class:`SDMTMPPeerConfig`.
        num_users, num_items: sizes of the id space.

    Shapes:
        sequence_states: users (B,) -> (T, B, d), or (1, B, d) for one peer;
        score_all: users (B,) -> (B, num_items).
    """

    config_class = SDMTMPPeerConfig
    #: 2: PeerRec's peers run one after the other (other dropout masks), and its evaluation
    #: states are the full-width pass's to the bit (key-aligned groups), no longer those of
    #: power-of-two buckets (which differed by float rounding); PeerRec.result_version 2.
    result_version = "2"
    requires_graphs: ClassVar[tuple[str, ...]] = SDMTMP.requires_graphs

    def __init__(self, config: SDMTMPPeerConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items)
        self.sdmtmp = SDMTMP(config.sdmtmp, num_users, num_items)
        self.peer = PeerRec(config.peer, num_users, num_items)
        self.sequence_gate = AdaptiveGatedFusion(config.sdmtmp.embedding_dim, 1)  # w_seq
        # The runner reads the graphs from the instance (SD-MTMP's w/o-H needs only one).
        self.requires_graphs = self.sdmtmp.requires_graphs  # type: ignore[misc]
        self._rows: tuple[Tensor, Tensor, Tensor] | None = None

    # ------------------------------------------------------------------ representations
    def sequence_states(
        self, users: Tensor, inputs: ModelInputs, peer: int | None = None
    ) -> Tensor:
        """``e_u^seq``: the peers' states at a [MASK] after each user's history.

        :meth:`PeerRec.sequence_states`: every peer (``peer=None``) or one.
        """
        return self.peer.sequence_states(users, inputs, peer)

    def fuse(self, base: Tensor, sequence: Tensor) -> tuple[Tensor, Tensor]:
        """``(e_u (P, B, d), alpha3 (P, B))`` from SD-MTMP's ``base`` (B, d) and ``e^seq``
        (P, B, d) of P peers."""
        p, b, d = sequence.shape
        gated, alpha = self.sequence_gate(sequence.reshape(p * b, d))  # (P*B, d), (P*B, 1)
        return base.unsqueeze(0) + gated.view(p, b, d), alpha.view(p, b)

    def final_embeddings(self, inputs: ModelInputs) -> tuple[Tensor, Tensor]:
        """``(e_u for every user (m, d), e_i (n, d))`` with the inference peer only."""
        base, items = self.sdmtmp.final_embeddings(inputs)  # (m, d), (n, d)
        peer = self.config.peer.inference_peer
        users = torch.arange(self.num_users, device=base.device)
        sequence = torch.cat(
            [
                self.sequence_states(users[start : start + EVAL_CHUNK], inputs, peer)
                for start in range(0, self.num_users, EVAL_CHUNK)  # chunks of users, not users
            ],
            dim=1,
        )  # (1, m, d)
        fused, _ = self.fuse(base, sequence)
        return fused[0], items

    # ------------------------------------------------------------------ training
    @draws_negatives(lambda model: model.config.peer)  # peer.loss: sampled -> the peer CE
    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        bpr = self.sdmtmp.training_batches(inputs, batch_size, generator)  # checks the graphs
        self.peer.epochs_started.add_(1)  # PeerRec's stage clock (saved with the weights)
        stage = self.peer.stage_of_epoch(int(self.peer.epochs_started))
        width = inputs.seq_items.shape[1]
        if width < self.config.peer.max_len - 1:
            log.info(
                "sdmtmp_peer: e^seq reads the last %d history items (inputs width, "
                "train.max_len) of the %d that peer.max_len allows",
                width,
                self.config.peer.max_len - 1,
            )
        return self._with_peer_sequences(bpr, inputs, stage, generator)

    def _with_peer_sequences(
        self,
        bpr: Iterator[dict[str, Tensor]],
        inputs: ModelInputs,
        stage: int,
        generator: torch.Generator,
    ) -> Iterator[dict[str, Tensor]]:
        """Adds to each BPR batch the cloze-masked training sequences of its users."""
        stage_tensor = torch.tensor(stage, device=inputs.device)
        if self.config.peer_weight == 0:
            for batch in bpr:
                yield {**batch, "stage": stage_tensor}
            return
        rows, row_users = self._training_rows(inputs)
        c = self.config.peer
        for batch in bpr:
            pick = torch.isin(row_users, batch["user"])  # every window of the batch's users
            tokens, labels = cloze_mask(
                trim_left_padding(rows[pick]),
                c.mask_prob,
                self.peer.mask_token,
                generator,
                last_only_prob=c.last_only_prob,
            )
            yield {**batch, "stage": stage_tensor, "peer_input": tokens, "peer_target": labels}

    def _training_rows(self, inputs: ModelInputs) -> tuple[Tensor, Tensor]:
        """PeerRec's training windows of the given history (fit rows), cached per inputs."""
        if self._rows is None or self._rows[0] is not inputs.user:
            rows, users = self.peer.training_rows(inputs)
            self._rows = (inputs.user, rows, users)
        return self._rows[1], self._rows[2]

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        user, pos, neg = batch["user"], batch["pos"], batch["neg"]
        sd = self.sdmtmp
        enc = sd.encode(inputs)
        long_users, items = sd.long_term(enc)
        base, _ = sd.user_representation(user, long_users, inputs)  # (B, d)
        fused, alpha = self.fuse(base, self.sequence_states(user, inputs))  # (T, B, d), (T, B)
        # Mean over T * B = the mean over peers of each peer's BPR (CE) (equal batch sizes).
        kind = sd.config.score_loss
        name, main = score_loss(fused, items, pos, neg, kind, **shared_negatives(batch, kind))
        total = main
        terms = {name: main.detach(), "alpha_seq": alpha.detach().mean()}
        for name, value in sd.auxiliary_losses(batch, enc, inputs).items():
            total = total + value
            terms[name] = value.detach()
        if self.config.peer_weight > 0:
            if "peer_input" not in batch:
                raise ValueError(
                    "Expected the batch to carry 'peer_input'/'peer_target'; build "
                    f"batches with SDMTMPPeer.training_batches (got {sorted(batch)})"
                )
            peer_batch = {"input": batch["peer_input"], "target": batch["peer_target"]}
            peer_batch.update({k: batch[k] for k in NEGATIVE_KEYS if k in batch})
            logits, targets = self.peer.peer_logits(peer_batch)
            out = self.peer.loss_from_logits(logits, targets, int(batch["stage"]))
            weighted = self.config.peer_weight * out.total
            total = total + weighted
            terms["peer"] = weighted.detach()
            terms.update({f"peer_{name}": value for name, value in out.terms.items()})
        return LossOutput(total, terms)

    # ------------------------------------------------------------------ scoring
    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        if self._eval is not None:
            user_emb, item_emb = self._eval
            return item_scores(user_emb[users], item_emb)  # (B, num_items)
        base, items = self.sdmtmp.final_embeddings(inputs)
        sequence = self.sequence_states(users, inputs, self.config.peer.inference_peer)
        fused, _ = self.fuse(base[users], sequence)  # (1, B, d)
        return item_scores(fused[0], items)  # (B, num_items)


__all__ = [
    "SDMTMPPeer",
    "SDMTMPPeerConfig",
]
