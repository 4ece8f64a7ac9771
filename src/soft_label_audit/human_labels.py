"""The human soft label over the 10 digits: how its "none / can't tell" slot is handled.

Shared by the crowd statistics, the training targets and the metrics, so that the entropy, the
human argmax (``item_stats.human_argmax``) and the none-slot rule are defined once.

A human soft label has 11 slots, h_0..h_9 and h_none; models predict the 10 digits. One rule,
the ``labels.none_slot`` parameter, maps h onto the digits for both the training targets and
the evaluation's human-alignment metrics:

* ``spread`` (the default, here and in ``conf/base``): share it equally, h_k + h_none / 10
  ("can't tell" read as a uniform vote, ignorance);
* ``renormalise``: drop the none mass, h_k / sum_j h_j ("none" read as a missing vote; an item
  whose mass is all on "none" becomes uniform).

Why ``spread``: an item most people could not read must stay uncertain. Under ``renormalise``
2 votes "6" and 3 "none" become one-hot on 6 (entropy 0, the unanimous band); under ``spread``
no digit of an item with h_none >= 0.5 holds more than 0.55 and its entropy is at least
1.68 nats (docs/architecture.md, "Label semantics").

>>> h = np.array([[0, 0, 0, 0, 0, 0, 0.4, 0, 0, 0, 0.6]])
>>> human_digits(h, "renormalise")[0, 6], round(float(human_digits(h)[0, 6]), 2)
(np.float64(1.0), 0.46)
>>> round(float(human_entropy(h)[0]), 2)
1.88
"""

from __future__ import annotations

import numpy as np

N_DIGITS = 10
NONE_SLOT_RULES = ("renormalise", "spread")


def human_digits(human: np.ndarray, none_slot: str = "spread") -> np.ndarray:
    """(n, 11) human soft labels -> (n, 10) distributions over the digits (see module doc)."""
    human = np.asarray(human, np.float64)
    if human.ndim != 2 or human.shape[1] != N_DIGITS + 1:
        raise ValueError(
            f"the human soft label needs 11 slots (10 digits + none), got shape {human.shape}"
        )
    bad = (human < -1e-12).any(1) | ~np.isclose(human.sum(1), 1.0, atol=1e-6)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"human soft labels must be non-negative and sum to one; rows {rows[:5].tolist()} "
            f"(of {len(rows)}) do not"
        )
    digits, none = np.clip(human[:, :N_DIGITS], 0, None), human[:, N_DIGITS]
    if none_slot == "renormalise":
        mass = digits.sum(1, keepdims=True)
        out = np.where(mass > 0, digits / np.where(mass > 0, mass, 1.0), 1.0 / N_DIGITS)
    elif none_slot == "spread":
        out = digits + none[:, None] / N_DIGITS
    else:
        raise ValueError(f"labels.none_slot must be one of {NONE_SLOT_RULES}, got {none_slot!r}")
    return out / out.sum(1, keepdims=True)


def entropy(p: np.ndarray) -> np.ndarray:
    """Row entropies in nats, H(p) = -sum_k p_k ln p_k, with 0 ln 0 = 0."""
    p = np.asarray(p, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(-1)


def human_entropy(human: np.ndarray, none_slot: str = "spread") -> np.ndarray:
    """The one measure of human uncertainty: the entropy (nats) of the 10-digit label that the
    none-slot rule makes of the (n, 11) human soft label, i.e. the entropy of the ``human_soft``
    training target. Bands, correlations, cartography and reports all use it."""
    return entropy(human_digits(human, none_slot))


def human_argmax(h_digits: np.ndarray, original: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """argmax of h over the digits; ties go to the original label when it is among the maxima,
    else to the lowest digit (so a tie is never counted as a mode shift)."""
    h_digits = np.asarray(h_digits, np.float64)
    original = np.asarray(original, np.int64)
    is_max = h_digits >= h_digits.max(1, keepdims=True) - tol
    return np.where(is_max[np.arange(len(h_digits)), original], original, is_max.argmax(1)).astype(
        np.int64
    )
