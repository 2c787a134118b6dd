"""Import every built-in model module so that each registers itself in ``MODELS``."""

from mmseq.models import bert4rec, bprmf, gru4rec, lightgcn, pop, sasrec  # noqa: F401
