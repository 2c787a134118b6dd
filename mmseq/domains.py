"""Value domains of config fields, checked when a config is built (``mmseq.config.from_dict``).

A field gets its domain in one of two ways:

* declared beside the field, as ``Annotated`` metadata: ``epochs: Annotated[int, at_least(1)]``
  (the experiment config's sections in :mod:`mmseq.config` do this);
* otherwise from :data:`CLASS_RULES` (``"ClassName.field"``) or the first match in
  :data:`NAME_RULES` (a regular expression over the field name). These cover the model config
  classes by the vocabulary they share (``embedding_dim``, ``dropout``, ``*_weight``, ``tau``...),
  so a model gets its domains the moment it registers; a field that matches nothing has none, and
  ``tests/reliability/test_config_domains.py`` fails for every numeric field without a domain.

Booleans and ``Literal`` fields are checked by their type alone. Every float must be finite.
The rule tables and :data:`CROSS_RULES` (run after a whole config class is built) apply to the
config classes of ``mmseq.models`` (``mmseq.config.RULED_MODULES``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Domain:
    """The allowed values of one config field: a numeric interval, or a string pattern.

    Args:
        low: smallest allowed value (default: None = unbounded).
        high: largest allowed value (default: None = unbounded).
        low_open: ``low`` itself is excluded (default: False).
        high_open: ``high`` itself is excluded (default: False).
        pattern: for strings, a regular expression the whole value must match (default: None).
        text: how to describe the pattern in a message (default: "").
        bad: an out-of-domain example value, for tests (default: derived from the bounds).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    pattern: str | None = None
    text: str = ""
    bad: Any = None

    def describe(self) -> str:
        if self.pattern is not None:
            return self.text or f"a string matching {self.pattern!r}"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"a value in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None:
            return f"a value {'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"a value {'<' if self.high_open else '<='} {_num(self.high)}"
        return "any value"

    def problem(self, value: Any) -> str | None:
        """None when ``value`` is in the domain, else "expected ... (got ...)"."""
        if self.pattern is not None:
            ok = isinstance(value, str) and re.fullmatch(self.pattern, value) is not None
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            ok = True  # the type check owns non-numbers
        else:
            ok = math.isfinite(value) or isinstance(value, int)
            if self.low is not None:
                ok = ok and (value > self.low if self.low_open else value >= self.low)
            if self.high is not None:
                ok = ok and (value < self.high if self.high_open else value <= self.high)
        return None if ok else f"expected {self.describe()} (got {value!r})"

    def outside(self) -> Any:
        """A value outside the domain (for tests that walk every field)."""
        if self.bad is not None:
            return self.bad
        if self.low is not None:
            return self.low if self.low_open else self.low - 1
        if self.high is not None:
            return self.high if self.high_open else self.high + 1
        raise ValueError("Expected a bounded domain or an explicit 'bad' example")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def at_least(low: float) -> Domain:
    return Domain(low=low)


def above(low: float) -> Domain:
    return Domain(low=low, low_open=True)


def between(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Domain:
    return Domain(low=low, high=high, low_open=low_open, high_open=high_open)


def matching(pattern: str, text: str, bad: str) -> Domain:
    return Domain(pattern=pattern, text=text, bad=bad)


POSITIVE_INT = at_least(1)
NON_NEGATIVE = at_least(0)
PROBABILITY = between(0, 1)
DROPOUT = between(0, 1, high_open=True)
POSITIVE = above(0)
#: Seeds feed numpy (at most 2**32 - 1) and torch.
SEED = between(0, 2**32 - 1)

#: Domains by "ClassName.field", for model fields whose domain the name rules get wrong.
CLASS_RULES: dict[str, Domain] = {
    "BERT4RecConfig.max_len": at_least(2),  # one position is the [MASK] at scoring time
    "EMKDConfig.max_len": at_least(2),
    "PeerRecConfig.max_len": at_least(2),
    "EMKDConfig.num_attributes": NON_NEGATIVE,  # 0 = no attribute task
    "PeerRecConfig.alpha": PROBABILITY,
    "PeerRecConfig.beta": PROBABILITY,
    "S4RecConfig.num_prototypes": at_least(2),
    "S4RecConfig.head_fraction": between(0, 1, low_open=True, high_open=True),
    "SDMTMPConfig.short_term_ratio": between(0, 1, low_open=True),
    "LightGCNConfig.num_layers": NON_NEGATIVE,  # 0 layers = matrix factorisation
    "LightGCNConfig.item_graph_layers": POSITIVE_INT,
}

#: (field-name pattern, domain), first match wins; applied to int and float fields only.
NAME_RULES: tuple[tuple[str, Domain], ...] = (
    (r"short_term_max_len|window_stride|stage1_epochs|inference_peer", NON_NEGATIVE),
    (r".*_dim|.*_size|num_.*|max_len|.*_iterations|contrast_layer", POSITIVE_INT),
    (r"(.*_)?dropout", DROPOUT),
    (r".*_prob|.*_ratio|.*_fraction", PROBABILITY),
    (r"(.*_)?tau|init_std|.*_epsilon", POSITIVE),
    (r".*_weight|.*_coefficient|alpha|beta|gamma\d*|eps|negative_slope", NON_NEGATIVE),
)


def rule_domain(class_name: str, field: str) -> Domain | None:
    """The domain of ``class_name.field`` from the rule tables (None when no rule matches)."""
    if f"{class_name}.{field}" in CLASS_RULES:
        return CLASS_RULES[f"{class_name}.{field}"]
    for pattern, domain in NAME_RULES:
        if re.fullmatch(pattern, field):
            return domain
    return None


def _heads_divide_width(cfg: Any) -> str | None:
    dim, heads = getattr(cfg, "embedding_dim", None), getattr(cfg, "num_heads", None)
    if isinstance(dim, int) and isinstance(heads, int) and heads >= 1 and dim % heads:
        return f"num_heads: expected a divisor of embedding_dim {dim} (got {heads})"
    return None


#: Checks over a whole config object: each returns "key: problem" or None.
CROSS_RULES: tuple[Callable[[Any], str | None], ...] = (_heads_divide_width,)
