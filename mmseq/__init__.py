"""mmseq: graph-based multimodal sequential recommendation.

Data flows ``mmseq.data`` -> ``topics`` -> ``graphs`` -> (GraphBundle on disk) -> ``mmseq.models``
-> ``mmseq.train`` -> ``mmseq.eval``; the packages ``topics`` and ``graphs`` import ``mmseq``,
never the reverse.
"""

__version__ = "0.1.0"
