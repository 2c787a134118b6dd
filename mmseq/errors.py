"""Error types. Messages follow the form "Expected 'x' to ... (got ...)" and name where."""

from __future__ import annotations


class MmseqError(Exception):
    """Base class of every error mmseq raises on purpose."""


class ConfigError(MmseqError, ValueError):
    """A configuration value or key is wrong; the message names the file and key."""


class DataError(MmseqError, ValueError):
    """Input data is malformed; the message names the file, line (or row) and field."""


class TrainingError(MmseqError, RuntimeError):
    """Training cannot continue (for example a non-finite loss); names the step and term."""


class MissingDependencyError(MmseqError, ImportError):
    """An optional dependency is not installed; the message gives the install command."""


class ArtifactError(MmseqError, RuntimeError):
    """A cached artifact is missing, stale or corrupt; the message says how to rebuild it."""
