"""Pure loss functions (tensors in, scalar out), one module per family.

``ranking``: BPR, L2, cross-entropy over items. ``sampled_softmax``: logQ-corrected sampled
softmax over items. ``contrastive``: KL distillation, InfoNCE.
Method-specific families live beside them (e.g. ``self_distillation``, ``peer``).
"""

from mmseq.losses.contrastive import info_nce, kl_divergence
from mmseq.losses.ranking import bpr_loss, cross_entropy_over_items, l2_regularization
from mmseq.losses.sampled_softmax import sampled_softmax_loss

__all__ = [
    "bpr_loss",
    "cross_entropy_over_items",
    "info_nce",
    "kl_divergence",
    "l2_regularization",
    "sampled_softmax_loss",
]
