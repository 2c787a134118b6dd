"""Data layer: the interactions table, readers, filtering, splits, model inputs."""
