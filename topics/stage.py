"""The topic stage as an artifact-stage plug-in (``STAGES["topics"]``, YAML section ``topics:``).

Graph builders that declare ``requires = ("topics",)`` get the :class:`TopicAssignments` of the
fit rows; ``graphs.compose.build_all`` runs this stage only for them. The content hash covers the
topic embeddings, the membership matrices and the labels, so a re-clustering that changes topics
changes the keys of the parts built from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from mmseq.data.schema import Interactions, TopicAssignments
from mmseq.errors import ArtifactError
from mmseq.stages import STAGES, Stage, array_hash
from topics.config import TopicConfig
from topics.extract import extract_topics
from topics.report import format_topic_table


def topics_hash(topics: TopicAssignments) -> str:
    """sha256 (16 hex chars) of the topic embeddings, membership matrices and labels."""
    arrays: list[np.ndarray] = [np.ascontiguousarray(topics.topic_embeddings)]
    for mat in (topics.user_topic, topics.item_topic):
        csr = sp.csr_matrix(mat)
        csr.sort_indices()
        arrays += [np.asarray(csr.shape), csr.indptr, csr.indices, csr.data]
    labels = np.frombuffer("\x1f".join(topics.labels).encode("utf-8", "surrogatepass"), np.uint8)
    return array_hash(*arrays, labels)


@STAGES.register("topics")
class TopicStage(Stage):
    """Review topics of the fit rows (SD-MTMP, methods.md 1.1): :func:`extract_topics`."""

    name = "topics"
    config_class = TopicConfig

    def run(
        self,
        fit: Interactions,
        config: TopicConfig,
        *,
        cache_dir: Path | None = None,
        progress: bool = False,
    ) -> TopicAssignments:
        return extract_topics(fit, config, cache_dir=cache_dir, progress=progress)

    def settings(self, config: TopicConfig) -> dict[str, Any]:
        """What changes the topics: encoder and clustering settings, not where or how fast the
        sentences are embedded (``threads``, ``workers``, ``engine``, ``ray_address``)."""
        return {**config.encoder_settings(), **config.clustering_settings()}

    def content_hash(self, artifact: Any) -> str:
        if not isinstance(artifact, TopicAssignments):
            raise ArtifactError(
                f"Stage 'topics': expected TopicAssignments (got {type(artifact).__name__})"
            )
        return topics_hash(artifact)

    def describe(self, artifact: TopicAssignments) -> str:
        return format_topic_table(artifact)
