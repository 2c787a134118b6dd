"""The ``MODELS`` registry (kept in its own module so model files can import it without cycles)."""

from mmseq.registry import Registry

MODELS: Registry = Registry("model")
