"""Graph builders: each modality is a builder registered in ``GRAPH_BUILDERS``."""
