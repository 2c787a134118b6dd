"""XSimGCL: graph contrastive learning with noise-perturbed LightGCN layers and cross-layer views.

Yu, Xia, Chen, Cui, Hung and Yin, "XSimGCL: Towards Extremely Simple Graph Contrastive Learning
for Recommendation", IEEE TKDE 2023 (a baseline of SD-MTMP's paper, Table 2).

Implemented from the paper's description:

* encoder: LightGCN propagation ``E^(l) = L E^(l-1)`` over ``"interaction_graph"``; while training,
  each layer's output gets a random perturbation ``Delta = eps * sign(E^(l)) (.) normalize(U)``
  with ``U ~ Uniform(0, 1)`` per row (unit L2 norm rows), so the noise keeps each coordinate's sign
  and has length ``eps``;
* recommendation view: the mean of the (perturbed) layer outputs ``E^(1..L)`` (the paper's
  final representation leaves out the ego layer ``E^(0)``);
* contrastive view: the perturbed output of layer ``l*`` (``contrast_layer``); InfoNCE
  (cosine, temperature ``tau``) between the two views for the batch's distinct users and distinct
  positive items, in-batch negatives;
* loss ``BPR + lambda_cl * (InfoNCE_users + InfoNCE_items) + reg * L2(batch ego embeddings)``;
  scoring uses the unperturbed encoder.

The noise is drawn from a ``torch.Generator`` seeded from the trainer's generator (one seed per
batch, carried in the batch as ``"noise_seed"``), so runs are reproducible from the run seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmseq.data.graph_bundle import GraphPart
from mmseq.data.sampling import PositivePairsCache, bpr_batches
from mmseq.errors import ArtifactError
from mmseq.losses.contrastive import info_nce
from mmseq.losses.ranking import bpr_loss, l2_regularization
from mmseq.models.base import EmbeddingRecommender, LossOutput, ModelInputs
from mmseq.models.registry import MODELS
from mmseq.nn.backends import get_backend

GRAPH = "interaction_graph"


@dataclass(frozen=True)
class XSimGCLConfig:
    """XSimGCL hyper-parameters (defaults: the paper's common setting)."""

    embedding_dim: int = 64  # d
    num_layers: int = 2  # L LightGCN layers
    contrast_layer: int = 1  # l*, the layer whose output is the contrastive view (1..L)
    eps: float = 0.2  # length of the per-row noise vector added at each layer
    cl_weight: float = 0.2  # lambda of the contrastive loss
    tau: float = 0.2  # InfoNCE temperature
    reg_weight: float = 1e-4  # L2 penalty on the batch's ego embeddings
    init: str = "xavier"  # "xavier" (uniform, as the paper's code base) or "normal" (std 0.1)

    def __post_init__(self) -> None:
        if self.embedding_dim < 1 or self.num_layers < 1:
            raise ValueError(
                f"Expected 'embedding_dim' and 'num_layers' >= 1 "
                f"(got {self.embedding_dim}, {self.num_layers})"
            )
        if not 1 <= self.contrast_layer <= self.num_layers:
            raise ValueError(
                f"Expected 'contrast_layer' in [1, num_layers={self.num_layers}] "
                f"(got {self.contrast_layer})"
            )
        if self.eps < 0 or self.cl_weight < 0 or self.reg_weight < 0 or self.tau <= 0:
            raise ValueError(
                f"Expected eps, cl_weight, reg_weight >= 0 and tau > 0 (got {self.eps}, "
                f"{self.cl_weight}, {self.reg_weight}, {self.tau})"
            )
        if self.init not in ("xavier", "normal"):
            raise ValueError(f"Expected 'init' in ['xavier', 'normal'] (got {self.init!r})")


def perturb(x: Tensor, eps: float, generator: torch.Generator) -> Tensor:
    """``x + eps * sign(x) * normalize(U)``, ``U ~ Uniform(0, 1)`` of x's shape, rows of norm 1.

    Shapes:
        x: (N, d); returns (N, d).
    """
    noise = torch.rand(x.shape, generator=generator, device=generator.device).to(x.device, x.dtype)
    return x + eps * torch.sign(x) * F.normalize(noise, dim=-1)


@MODELS.register("xsimgcl")
class XSimGCL(EmbeddingRecommender):
    """XSimGCL (Yu et al., TKDE 2023): LightGCN + noise + cross-layer contrast.

    Shapes:
        score_all: users (B,) -> (B, num_items).
    """

    config_class = XSimGCLConfig
    requires_graphs = (GRAPH,)

    def __init__(self, config: XSimGCLConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items)
        self.user_embedding = nn.Embedding(num_users, config.embedding_dim)
        self.item_embedding = nn.Embedding(num_items, config.embedding_dim)
        for emb in (self.user_embedding, self.item_embedding):
            if config.init == "xavier":
                nn.init.xavier_uniform_(emb.weight)
            else:
                nn.init.normal_(emb.weight, std=0.1)
        self._pairs = PositivePairsCache()

    def _graph(self, inputs: ModelInputs) -> GraphPart:
        part = inputs.graphs.get(GRAPH)
        if part is None:
            raise ArtifactError(
                f"XSimGCL needs the graph '{GRAPH}' in inputs.graphs "
                f"(has: {sorted(inputs.graphs)}); add {{builder: {GRAPH}}} to the config's "
                "'graphs' list and run scripts/build_graphs.py --config <config>"
            )
        n = self.num_users + self.num_items
        if tuple(part.shape) != (n, n):
            raise ArtifactError(
                f"Expected graph '{GRAPH}' of shape ({n}, {n}) (got {tuple(part.shape)}); "
                "rebuild it for this data"
            )
        return part

    def propagate(self, inputs: ModelInputs, generator: torch.Generator | None = None
                  ) -> tuple[Tensor, Tensor]:
        """``(final (N, d), contrastive view (N, d))``; perturbed when ``generator`` is given."""
        part = self._graph(inputs)
        backend = get_backend("pyg")  # torch CSR products, operator cached per graph tensors
        x = torch.cat([self.user_embedding.weight, self.item_embedding.weight])  # (N, d)
        total = torch.zeros_like(x)
        view = x
        for layer in range(1, self.config.num_layers + 1):
            x = backend.propagate(x, part.edge_index, part.edge_weight)  # (N, d) = L x
            if generator is not None:
                x = perturb(x, self.config.eps, generator)
            total = total + x
            if layer == self.config.contrast_layer:
                view = x
        return total / self.config.num_layers, view

    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        self._graph(inputs)  # fail before the epoch starts if the graph is missing
        for batch in bpr_batches(inputs.user, inputs.item, self.num_items, batch_size, generator,
                                 seen=self._pairs.get(inputs)):
            seed = torch.randint(2**62, (1,), generator=generator, device=generator.device)
            yield {**batch, "noise_seed": seed.cpu()}

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        user, pos, neg = batch["user"], batch["pos"], batch["neg"]
        device = self.user_embedding.weight.device
        noise = torch.Generator(device).manual_seed(int(batch["noise_seed"]))
        final, view = self.propagate(inputs, noise)
        users, items = final[: self.num_users], final[self.num_users :]
        u = users[user]  # (B, d)
        bpr = bpr_loss((u * items[pos]).sum(-1), (u * items[neg]).sum(-1))
        uniq_u, uniq_i = torch.unique(user), torch.unique(pos)
        cl = info_nce(users[uniq_u], view[uniq_u], tau=self.config.tau) + info_nce(
            items[uniq_i], view[self.num_users + uniq_i], tau=self.config.tau
        )
        reg = self.config.reg_weight * l2_regularization(
            self.user_embedding(user), self.item_embedding(pos), self.item_embedding(neg)
        )
        total = bpr + self.config.cl_weight * cl + reg
        return LossOutput(total, {"bpr": bpr.detach(), "cl": cl.detach(), "l2": reg.detach()})

    def final_embeddings(self, inputs: ModelInputs) -> tuple[Tensor, Tensor]:
        final, _ = self.propagate(inputs)
        return final[: self.num_users], final[self.num_users :]



__all__ = ["XSimGCL", "XSimGCLConfig", "perturb"]
