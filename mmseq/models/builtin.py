"""Import every built-in model module so that each registers itself in ``MODELS``."""

from mmseq.models import (  # noqa: F401
    bert4rec,
    bprmf,
    emkd,
    gru4rec,
    lightgcn,
    peerrec,
    pop,
    s4rec,
    sasrec,
    sdmtmp,
    sdmtmp_peer,
    sdmtmp_seq,
    xsimgcl,
)
