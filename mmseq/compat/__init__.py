"""Compatibility shims for optional third-party packages (one small module per package)."""
