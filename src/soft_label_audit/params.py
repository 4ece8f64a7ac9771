"""Reading configuration blocks: one error template for every parameter.

Each configuration block is read by a dataclass whose ``from_params`` validates its values
through these readers, so a bad value stops the run before any work, with a message that names
the parameter path, the rule and the value::

    digits.synthetic.n_items must be a positive integer, got -3

Pure Python (no numpy, no Kedro): the trainer, which imports torch and numpy alone, uses it too.

>>> positive_int("digits.synthetic.n_items", 12)
12
>>> positive_int("digits.synthetic.n_items", -3)
Traceback (most recent call last):
...
soft_label_audit.params.ParameterError: digits.synthetic.n_items must be a positive integer, got -3
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from soft_label_audit.errors import UserError


class ParameterError(UserError, ValueError):
    """A configuration value breaks its rule; the message names the parameter path."""


def fail(path: str, rule: str, value: Any) -> ParameterError:
    """The one template: ``<path> must be <rule>, got <value>``."""
    return ParameterError(
        f"{path} must be {rule}, got {value!r}",
        fix="correct it in conf/<env>/parameters_*.yml or pass --params",
    )


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


def integer(path: str, value: Any, minimum: int | None = None) -> int:
    """An integer (``3`` or ``3.0``) not below ``minimum``."""
    if not _is_int(value) or (minimum is not None and value < minimum):
        rule = "an integer" if minimum is None else f"an integer >= {minimum}"
        if minimum == 1:
            rule = "a positive integer"
        elif minimum == 0:
            rule = "a non-negative integer"
        raise fail(path, rule, value)
    return int(value)


def positive_int(path: str, value: Any) -> int:
    """An integer >= 1."""
    return integer(path, value, minimum=1)


def non_negative_int(path: str, value: Any) -> int:
    """An integer >= 0."""
    return integer(path, value, minimum=0)


def number(
    path: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number in [low, high] (either end open or absent).

    >>> number("training.optimizer.lr", 0.01, 0, low_open=True)
    0.01
    >>> number("training.optimizer.lr", 0, 0, low_open=True)
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: training.optimizer.lr must be a number > 0, got 0
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise fail(path, _number_rule(low, high, low_open, high_open), value)
    return float(value)


def _number_rule(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return f"a number in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"a number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a number {'<' if high_open else '<='} {high:g}"
    return "a finite number"


def probability(path: str, value: Any) -> float:
    """A number in [0, 1]."""
    return number(path, value, 0.0, 1.0)


def boolean(path: str, value: Any) -> bool:
    """``true`` or ``false`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise fail(path, "true or false", value)
    return value


def choice(path: str, value: Any, options: Iterable[Any]) -> Any:
    """One of ``options``."""
    options = list(options)
    if value not in options:
        raise fail(path, "one of " + ", ".join(repr(o) for o in options), value)
    return value


def text(path: str, value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise fail(path, "a non-empty string", value)
    return value


def increasing_range(path: str, value: Any, low: float | None = None) -> tuple[float, float]:
    """Two finite numbers ``[lo, hi]`` with lo <= hi (and lo >= low when given).

    >>> increasing_range("simulated_crowd.traits.blur_px", [0.3, 1.0])
    (0.3, 1.0)
    """
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise fail(path, "a pair [low, high]", value)
    lo = number(f"{path}[0]", value[0], low)
    hi = number(f"{path}[1]", value[1], low)
    if hi < lo:
        raise fail(path, "an increasing pair [low, high]", list(value))
    return lo, hi


def block(path: str, value: Any) -> Mapping[str, Any]:
    """A mapping (a YAML block); ``None`` reads as an empty block."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise fail(path, "a block of settings", value)
    return value


def required(path: str, params: Mapping[str, Any], key: str) -> Any:
    """``params[key]``, or an error naming ``path.key`` as missing."""
    if key not in params:
        raise ParameterError(
            f"{path}.{key} is missing", fix="add it to conf/<env>/parameters_*.yml"
        )
    return params[key]


def no_unknown(path: str, params: Mapping[str, Any], known: Iterable[str]) -> None:
    """Refuse keys that no field reads (a typo would otherwise be ignored silently)."""
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ParameterError(
            f"{path} has unknown settings {unknown}; known: {sorted(known)}",
            fix="correct the spelling in conf/<env>/parameters_*.yml",
        )
