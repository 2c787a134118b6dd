"""Type aliases shared across mmseq, graphs and topics."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import torch
from torch import Tensor

EdgeIndex: TypeAlias = Tensor  # (2, E) long: [source; target]
HyperedgeIndex: TypeAlias = Tensor  # (2, nnz) long: [node; hyperedge]
OptTensor: TypeAlias = Tensor | None
IntArray: TypeAlias = np.ndarray  # 1-D int64
FloatArray: TypeAlias = np.ndarray  # 1-D float32/float64
Device: TypeAlias = str | torch.device
