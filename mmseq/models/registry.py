"""The ``MODELS`` registry (kept in its own module so model files can import it without cycles).

Built-in models are found by importing every module of ``mmseq.models`` on the first lookup (so
``import mmseq.models`` stays cheap and a new model is one new file); third-party ones through
the ``mmseq.models`` entry point group or a ``plugins:`` module list in the experiment YAML.
"""

from mmseq.registry import Registry

MODELS: Registry = Registry("model", packages=("mmseq.models",), entry_point_group="mmseq.models")
