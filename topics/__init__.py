"""Review topic extraction (sentence encoder -> UMAP -> HDBSCAN via BERTopic)."""
