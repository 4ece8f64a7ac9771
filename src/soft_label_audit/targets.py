"""Training targets of the label conditions (docs/architecture.md); numpy only.

Notation, per item: o = original label, h = human soft label over the 10 digits (the "none"
slot handled by :func:`human_digits`), m = human mode (``item_stats.human_mode``: the human
argmax where the votes support it, else o), the human argmax (:func:`human_argmax`, the
``item_stats.human_argmax`` column) = argmax of h, ties to o when o is among the maxima, else to
the lowest digit. Entropies are in nats, H(p) = -sum_k p_k ln p_k
with 0 ln 0 = 0. Every recipe statistic (smoothing epsilon, teacher temperature, permutation
donors) is fitted on the training items of one target table only (``TargetInputs.train``), so
the human labels of validation and test items never shape a training target: "mean human
entropy" is the mean of H(h) over the training items of one source.

One shift set: a condition that carries the human mode (``human_mode_hard``, ``human_soft``)
has m as its target's argmax on every item, so it moves the argmax off o on exactly the items of
``item_stats.mode_shift`` (the shifts the votes support); every other condition keeps o on top.

Each condition has one builder in :data:`BUILDERS`, keyed by the condition name; a builder takes
:class:`TargetInputs` and the condition's options (``labels.conditions.<name>`` parameters)
and returns an (n, 10) array whose rows sum to one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from soft_label_audit import params as p
from soft_label_audit.errors import UserError
from soft_label_audit.human_labels import NONE_SLOT_RULES, entropy, human_argmax, human_digits  # noqa: F401 (re-exported)

N_CLASSES = 10


@dataclass
class TargetInputs:
    """Per-item arrays of one source, aligned by row.

    ``human``: (n, 11) h_0..h_9, h_none. ``mode``: (n,) human mode (from ``item_stats``): the
    argmax of h where the votes support it, else the original label.
    ``machine``: (n, 10) generator labels (a blend's mixture weights), NaN rows where an item
    has none (MNIST images); only ``generator_soft`` reads them.
    ``teacher_logits``: (n, 10) teacher logits, NaN rows where not computed (optional).
    ``none_slot``: how :func:`human_digits` treats the "none" slot.
    ``train``: (n,) bool, the training items on which recipe statistics are fitted (None: all).
    """

    original: np.ndarray
    human: np.ndarray | None = None
    mode: np.ndarray | None = None
    machine: np.ndarray | None = None
    teacher_logits: np.ndarray | None = None
    none_slot: str = "spread"
    train: np.ndarray | None = None
    #: distinguishes tables (e.g. sources) in random draws made with a condition's seed
    stream: int = 0

    def __post_init__(self) -> None:
        self.original = np.asarray(self.original, np.int64)
        n = len(self.original)
        self.train = np.ones(n, bool) if self.train is None else np.asarray(self.train, bool)
        if self.train.shape != (n,) or not self.train.any():
            raise ValueError(f"train must be an (n,) = ({n},) mask with at least one training item")
        if self.human is not None:
            self.human = np.asarray(self.human, np.float64)
            if self.human.shape != (n, N_CLASSES + 1):
                raise ValueError(
                    f"human labels must be (n, 11) = ({n}, 11), got {self.human.shape}"
                )
        if self.mode is not None:
            self.mode = np.asarray(self.mode, np.int64)
            if self.mode.shape != (n,):
                raise ValueError(f"human mode must have {n} entries, got {self.mode.shape}")
        for name, arr in (("original", self.original), ("mode", self.mode)):
            bad = np.flatnonzero((arr < 0) | (arr >= N_CLASSES)) if arr is not None else np.zeros(0)
            if bad.size:
                raise ValueError(f"{name} labels outside 0..9 at rows {bad[:5].tolist()}")
        if self.human is None or self.mode is None:
            return
        h = self.h
        not_max = h[np.arange(n), self.mode] < h.max(1) - 1e-9
        off = np.flatnonzero(not_max & (self.mode != self.original))
        if off.size:
            raise ValueError(
                "human_mode is neither a maximum of the human soft label nor the original label "
                f"at rows {off[:5].tolist()} (of {off.size}); item_stats and human_soft_labels "
                "disagree"
            )

    @property
    def h(self) -> np.ndarray:
        """The human soft label over the 10 digits."""
        if self.human is None:
            raise ValueError(
                "this condition reads the human labels: declare 'human' in its Builder.needs"
            )
        return human_digits(self.human, self.none_slot)

    @property
    def human_mode(self) -> np.ndarray:
        """The human mode of ``item_stats`` (supported argmax, else the original label)."""
        if self.mode is None:
            raise ValueError(
                "this condition reads the human mode: declare 'mode' in its Builder.needs"
            )
        return self.mode


# ---------------------------------------------------------------------------- primitives


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(N_CLASSES)[np.asarray(labels, np.int64)]


def swap_mode_and_original(h: np.ndarray, mode: np.ndarray, original: np.ndarray) -> np.ndarray:
    """h with the masses of m and o exchanged: a permutation of h (same entropy) whose maximum is at o."""
    out = np.array(h, np.float64, copy=True)
    rows = np.arange(len(out))
    out[rows, original], out[rows, mode] = h[rows, mode], h[rows, original]
    return out


def entropy_bands(values: np.ndarray, edges) -> np.ndarray:
    """Band index of each value: band b holds edges[b-1] <= value < edges[b] (edges in nats, ascending)."""
    edges = np.asarray(edges, np.float64)
    if edges.ndim != 1 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"band_edges must be strictly ascending, got {edges.tolist()}")
    return np.searchsorted(edges, values, side="right")


def permuted_profiles(
    h: np.ndarray,
    original: np.ndarray,
    bands: np.ndarray,
    rng: np.random.Generator,
    train: np.ndarray | None = None,
    rng_other: np.random.Generator | None = None,
) -> np.ndarray:
    """Each item takes the sorted mass profile of a donor item of its band, with the largest mass
    on o and the others on the remaining classes in random order.

    Donors are training items only (``train``, default all): the training items of a band trade
    profiles by a random permutation (so each band's multiset of training profiles, and hence of
    entropies, is kept); every other item draws a training donor of its band at random (of any
    training item when its band has none). Training rows use ``rng`` alone and other rows
    ``rng_other``, so validation and test labels never change a training target."""
    h = np.asarray(h, np.float64)
    n = len(h)
    train = np.ones(n, bool) if train is None else np.asarray(train, bool)
    rng_other = rng if rng_other is None else rng_other
    donor = np.arange(n)
    train_rows = np.flatnonzero(train)
    for band in np.unique(bands[train]):
        members = train_rows[bands[train_rows] == band]
        donor[members] = rng.permutation(members)
    for i in np.flatnonzero(~train):
        pool = train_rows[bands[train_rows] == bands[i]]
        donor[i] = rng_other.choice(pool if pool.size else train_rows)
    profiles = -np.sort(-h[donor], axis=1)  # descending
    out = np.empty_like(profiles)
    for i in [*train_rows, *np.flatnonzero(~train)]:
        others = np.delete(np.arange(N_CLASSES), original[i])
        out[i, original[i]] = profiles[i, 0]
        out[i, (rng if train[i] else rng_other).permutation(others)] = profiles[i, 1:]
    return out


def smoothing_entropy(eps: float, n_classes: int = N_CLASSES) -> float:
    """Entropy (nats) of (1 - eps) one-hot + eps / K: one class holds 1 - eps + eps/K, K-1 hold eps/K."""
    top, rest = 1.0 - eps + eps / n_classes, eps / n_classes
    return float(entropy(np.array([[top] + [rest] * (n_classes - 1)]))[0])


def _bisect(
    f: Callable[[float], float], target: float, lo: float, hi: float, tol: float = 1e-12
) -> float:
    """Root of the increasing f(x) = target on [lo, hi]."""
    f_lo, f_hi = f(lo), f(hi)
    if not f_lo <= target <= f_hi:
        raise ValueError(
            f"target {target:.6g} outside the reachable range [{f_lo:.6g}, {f_hi:.6g}]"
        )
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol * max(1.0, abs(hi)):
            break
    return 0.5 * (lo + hi)


def smoothing_epsilon_for_entropy(target_entropy: float, n_classes: int = N_CLASSES) -> float:
    """The eps in [0, 1] with H((1 - eps) one-hot + eps/K) = target (H is increasing in eps)."""
    return _bisect(lambda e: smoothing_entropy(e, n_classes), float(target_entropy), 0.0, 1.0)


def off_label_mass(targets: np.ndarray) -> np.ndarray:
    """Per row, the mass a distribution puts off its own top label, 1 - max_k t_k: the amount of
    uncertainty, whichever label is on top (a mode shift is counted apart, by the argmax)."""
    return 1.0 - np.asarray(targets, np.float64).max(1)


def smoothing_epsilon_for_off_label_mass(mass: float, n_classes: int = N_CLASSES) -> float:
    """The eps with off-label mass eps (K - 1) / K equal to ``mass`` (clipped to [0, 1])."""
    return float(np.clip(float(mass) * n_classes / (n_classes - 1), 0.0, 1.0))


def tempered_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(z / T), row-wise."""
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def temperature_for_entropy(logits: np.ndarray, target_mean_entropy: float) -> float:
    """The T > 0 with mean_i H(softmax(z_i / T)) = target; each H rises with T, so bisect on ln T."""
    target = float(target_mean_entropy)
    logits = np.asarray(logits, np.float64)
    if target <= 0:
        raise ValueError("the mean human entropy is zero: no temperature can match it")
    mean_h = lambda log_t: float(entropy(tempered_softmax(logits, np.exp(log_t))).mean())  # noqa: E731
    return float(np.exp(_bisect(mean_h, target, np.log(1e-3), np.log(1e4))))


# ---------------------------------------------------------------------------- builders


@dataclass(frozen=True)
class NoOptions:
    """The options of a builder that has none: ``labels.conditions.<condition>`` must be ``{}``.

    >>> NoOptions.from_params({"seed": 0}, "labels.conditions.human_soft")
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: labels.conditions.human_soft has unknown settings ['seed']; known: []
    """

    @classmethod
    def from_params(cls, block: Any, path: str) -> NoOptions:
        p.no_unknown(path, p.block(path, block), ())
        return cls()


@dataclass(frozen=True)
class PermutationOptions:
    """``labels.conditions.human_soft_permuted``: items trade sorted mass profiles within the
    entropy bands cut at ``band_edges`` (nats, strictly ascending), drawn from ``seed``."""

    band_edges: tuple[float, ...]
    seed: int

    @classmethod
    def from_params(
        cls, block: Any, path: str = "labels.conditions.human_soft_permuted"
    ) -> PermutationOptions:
        block = p.block(path, block)
        p.no_unknown(path, block, ("band_edges", "seed"))
        edges = p.required(path, block, "band_edges")
        if not isinstance(edges, (list, tuple)) or not edges:
            raise p.fail(f"{path}.band_edges", "a non-empty list of entropies (nats)", edges)
        edges = tuple(p.number(f"{path}.band_edges[{i}]", e, 0) for i, e in enumerate(edges))
        if any(b <= a for a, b in zip(edges, edges[1:])):
            rule = "a strictly ascending list of entropies (nats)"
            raise p.fail(f"{path}.band_edges", rule, list(edges))
        return cls(edges, p.non_negative_int(f"{path}.seed", p.required(path, block, "seed")))


@dataclass(frozen=True)
class Builder:
    """A target builder and the inputs it reads besides the original label and split: ``human``
    (``human_soft_labels``), ``mode`` (``item_stats``' human mode), ``teacher`` (the cross-fitted
    ``teacher_logits``) or ``large_teacher`` (``large_teacher_logits``). The labels pipeline wires
    only these, so kedro-viz shows where the human label, the mode and the teacher enter."""

    build: Callable[[TargetInputs, Any], np.ndarray]
    needs: tuple[str, ...] = ()
    #: the class that reads and validates ``labels.conditions.<condition>``
    options: type[NoOptions] | type[PermutationOptions] = NoOptions
    #: whether the target's argmax is the human mode m (so it shifts the items of
    #: ``item_stats.mode_shift``, and only those); the others keep o on top (or, for the
    #: machine and generator labels, the teacher's or the generator's own argmax)
    carries_mode: bool = False
    #: a post-hoc condition: the condition whose trained runs it rescales (its predictions
    #: divided by a temperature fitted on the validation items; the training pipeline trains
    #: nothing for it) and whose targets ``build`` repeats, so the labels stage and
    #: ``targets_summary`` treat it as any other condition; None for a trained condition
    post_hoc_of: str | None = None


def _original_hard(x: TargetInputs, options: NoOptions) -> np.ndarray:
    """The original label o, one-hot: the hard-label baseline."""
    return one_hot(x.original)


def _human_mode_hard(x: TargetInputs, options: NoOptions) -> np.ndarray:
    """The human mode m (``item_stats.human_mode``: the human argmax where the votes support it,
    else o), one-hot."""
    return one_hot(x.human_mode)


def human_soft_target(x: TargetInputs) -> np.ndarray:
    """h over the 10 digits (the "none" slot handled by ``labels.none_slot``,
    :func:`human_digits`) with the masses of its argmax and of the human mode m exchanged.

    Where the votes support the human argmax, m is that argmax and h is unchanged; where they
    do not (``item_stats.mode_unsupported``), m = o and the swap puts h's top mass on o. So
    the target's argmax is m on every item: ``human_soft`` shifts exactly the items that
    ``human_mode_hard`` shifts (``item_stats.mode_shift``), and its entropy is h's (a
    permutation), the human entropy of ``item_stats`` and of the difficulty bands."""
    h = x.h
    return swap_mode_and_original(h, human_argmax(h, x.original), x.human_mode)


def _human_soft(x: TargetInputs, options: NoOptions) -> np.ndarray:
    """The human soft label h over the 10 digits with its top mass on the human mode m
    (:func:`human_soft_target`: unchanged where the votes support h's argmax)."""
    return human_soft_target(x)


def _human_soft_mode_aligned(x: TargetInputs, options: NoOptions) -> np.ndarray:
    """The ``human_soft`` target with the masses of the human mode m and of o swapped: its
    argmax is o on every item (no mode shift, supported or not) and its entropy is h's."""
    return swap_mode_and_original(human_soft_target(x), x.human_mode, x.original)


def _human_soft_permuted(x: TargetInputs, options: PermutationOptions) -> np.ndarray:
    """h's sorted mass profiles traded between items of one entropy band (cut at
    ``options.band_edges``), the largest mass put on o and the rest on the other digits in random
    order, drawn from ``options.seed`` (:func:`permuted_profiles`): the entropies of h, not its
    pattern of confusions."""
    h = x.h
    bands = entropy_bands(entropy(h), options.band_edges)
    rng = np.random.default_rng([options.seed, int(x.stream)])
    rng_other = np.random.default_rng([options.seed, int(x.stream), 1])
    return permuted_profiles(h, x.original, bands, rng, x.train, rng_other)


def _smoothed(original: np.ndarray, eps: float) -> np.ndarray:
    return (1.0 - eps) * one_hot(original) + eps / N_CLASSES


def _label_smoothing_matched(x: TargetInputs, options: NoOptions) -> np.ndarray:
    """eps with H(smoothed) = mean H(h) over the training items."""
    return _smoothed(x.original, smoothing_epsilon_for_entropy(entropy(x.h[x.train]).mean()))


def _label_smoothing_mass_matched(x: TargetInputs, options: NoOptions) -> np.ndarray:
    """eps with off-label mass eps (K-1)/K = mean (1 - max h) over the training items."""
    mass = off_label_mass(x.h[x.train]).mean()
    return _smoothed(x.original, smoothing_epsilon_for_off_label_mass(mass))


def _label_smoothing_midpoint(x: TargetInputs, options: NoOptions) -> np.ndarray:
    """eps the mean of the two matched ones (entropy-matched and mass-matched, both fitted on
    the training items): a third strength between them."""
    h = x.h[x.train]
    by_entropy = smoothing_epsilon_for_entropy(entropy(h).mean())
    by_mass = smoothing_epsilon_for_off_label_mass(off_label_mass(h).mean())
    return _smoothed(x.original, 0.5 * (by_entropy + by_mass))


class UnanimousHumanLabelsError(UserError, ValueError):
    """A target recipe that matches the human entropy met human labels without any."""


def _machine_soft(x: TargetInputs, options: NoOptions) -> np.ndarray:
    """A model's uncertainty: the teacher's softmax(z / T) on every item of the source, T set so
    that the mean entropy over the source's training items equals their mean human entropy.
    The teacher (``teacher_logits``: cross-fitted on the source's training labels, or the large
    teacher) labels synthetic blends as it labels MNIST images; the generator's mixture weights
    are ``generator_soft``, not this."""
    n = len(x.original)
    teacher = (
        np.full((n, N_CLASSES), np.nan)
        if x.teacher_logits is None
        else np.asarray(x.teacher_logits, np.float64)
    )
    missing = np.flatnonzero(np.isnan(teacher).any(1))
    if missing.size:
        raise ValueError(
            f"machine_soft: rows {missing[:5].tolist()} (of {missing.size}) have no teacher logits"
        )
    target = entropy(x.h[x.train]).mean()
    if target <= 0:  # e.g. one vote per item: a user's vote file, not a bug
        raise UnanimousHumanLabelsError(
            "machine_soft: the human labels of the training items have zero mean entropy "
            "(every item's votes agree), so no teacher temperature can match it",
            fix="drop machine_soft (and machine_soft_large_teacher) from study.conditions, "
            "or collect more than one vote per item",
        )
    return tempered_softmax(teacher, temperature_for_entropy(teacher[x.train], target))


def _generator_soft(x: TargetInputs, options: NoOptions) -> np.ndarray:
    """The synthetic generator's labels: a blend's true mixture weights (``study_digits``'
    ``machine_soft_label``), the ground truth of the image, not anyone's uncertainty. An item
    without them (an MNIST image, written as the dataset's digit) gets one-hot(o): on MNIST
    this condition equals ``original_hard``."""
    n = len(x.original)
    machine = (
        np.full((n, N_CLASSES), np.nan) if x.machine is None else np.asarray(x.machine, np.float64)
    )
    out = one_hot(x.original)
    has = ~np.isnan(machine).any(1)
    out[has] = machine[has] / machine[has].sum(1, keepdims=True)
    return out


BUILDERS: dict[str, Builder] = {
    "original_hard": Builder(_original_hard),
    # original_hard's runs, temperature-scaled on the validation items (post hoc, no training)
    "original_hard_temperature_scaled": Builder(_original_hard, post_hoc_of="original_hard"),
    "human_mode_hard": Builder(_human_mode_hard, needs=("mode",), carries_mode=True),
    "human_soft": Builder(_human_soft, needs=("human", "mode"), carries_mode=True),
    "human_soft_mode_aligned": Builder(_human_soft_mode_aligned, needs=("human", "mode")),
    "human_soft_permuted": Builder(
        _human_soft_permuted, needs=("human",), options=PermutationOptions
    ),
    "label_smoothing_matched": Builder(_label_smoothing_matched, needs=("human",)),
    "label_smoothing_mass_matched": Builder(_label_smoothing_mass_matched, needs=("human",)),
    "label_smoothing_midpoint": Builder(_label_smoothing_midpoint, needs=("human",)),
    "machine_soft": Builder(_machine_soft, needs=("human", "teacher")),
    "machine_soft_large_teacher": Builder(_machine_soft, needs=("human", "large_teacher")),
    "generator_soft": Builder(_generator_soft),
}


def builder_for(condition: str) -> Builder:
    try:
        return BUILDERS[condition]
    except KeyError:
        raise KeyError(
            f"no target builder for condition {condition!r}; known: {sorted(BUILDERS)}. "
            "Add one to soft_label_audit.targets.BUILDERS."
        ) from None


def recipe_node(condition: str, run: Callable[..., Any]) -> Callable[..., Any]:
    """``run``, the node function that makes ``condition``'s targets table, as a function of this
    module that kedro-viz shows as the condition's recipe: kedro-viz takes a node's file path
    from its function's code (this file) and "Show code" from its ``__wrapped__`` (the
    condition's builder in :data:`BUILDERS`). Kedro checks the node's inputs against the
    signature, which stays ``run``'s, and the call is ``run``'s, unchanged.

    >>> def run(study_digits, options):
    ...     return len(study_digits)
    >>> node_function = recipe_node("human_soft_mode_aligned", run)
    >>> node_function([1, 2], {}), str(inspect.signature(node_function))
    (2, '(study_digits, options)')
    >>> inspect.getsourcefile(node_function) == inspect.getsourcefile(node_function.__wrapped__)
    True
    >>> node_function.__wrapped__.__name__
    '_human_soft_mode_aligned'
    """
    builder = builder_for(condition).build

    def recipe(*args: Any, **kwargs: Any) -> Any:
        return run(*args, **kwargs)

    recipe.__signature__ = inspect.signature(run)
    recipe.__annotations__ = dict(getattr(run, "__annotations__", {}))
    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        if hasattr(run, attribute):
            setattr(recipe, attribute, getattr(run, attribute))
    recipe.__wrapped__ = builder  # kedro-viz's "Show code" (the signature above takes precedence)
    return recipe


def build_targets(
    condition: str, inputs: TargetInputs, options: Mapping[str, Any] | None = None
) -> np.ndarray:
    """(n, 10) targets of ``condition``; checks that every row is a distribution. ``options``
    (``labels.conditions.<condition>``) are read by the builder's options class.

    Four items: unanimous 3; a 5/6 split; a mode shift (original 7, humans say 1); a 1 with
    some "none" mass (spread over the digits, the default ``none_slot``). ``show`` prints each row's non-zero masses.

    >>> h = np.zeros((4, 11))
    >>> h[0, 3] = 1.0
    >>> h[1, [5, 6]] = 0.5
    >>> h[2, [7, 1]] = 0.25, 0.75
    >>> h[3, [1, 10]] = 0.8, 0.2
    >>> x = TargetInputs(original=[3, 5, 7, 1], human=h, mode=[3, 5, 1, 1],
    ...                  teacher_logits=np.tile(np.arange(10.0), (4, 1)))
    >>> def show(t):
    ...     for row in t:
    ...         print(" ".join(f"{k}:{v:.3f}" for k, v in enumerate(row) if v >= 5e-4))
    >>> show(build_targets("original_hard", x))
    3:1.000
    5:1.000
    7:1.000
    1:1.000
    >>> show(build_targets("human_mode_hard", x))
    3:1.000
    5:1.000
    1:1.000
    1:1.000
    >>> show(build_targets("human_soft", x))
    3:1.000
    5:0.500 6:0.500
    1:0.750 7:0.250
    0:0.020 1:0.820 2:0.020 3:0.020 4:0.020 5:0.020 6:0.020 7:0.020 8:0.020 9:0.020
    >>> show(build_targets("human_soft_mode_aligned", x))
    3:1.000
    5:0.500 6:0.500
    1:0.250 7:0.750
    0:0.020 1:0.820 2:0.020 3:0.020 4:0.020 5:0.020 6:0.020 7:0.020 8:0.020 9:0.020
    >>> show(build_targets("human_soft_permuted", x, {"band_edges": [1e-6, 0.5, 1.0], "seed": 0}))
    3:1.000
    0:0.020 1:0.020 2:0.020 3:0.020 4:0.020 5:0.820 6:0.020 7:0.020 8:0.020 9:0.020
    7:0.500 9:0.500
    1:0.750 3:0.250
    >>> show(build_targets("label_smoothing_matched", x)[:1])
    0:0.011 1:0.011 2:0.011 3:0.903 4:0.011 5:0.011 6:0.011 7:0.011 8:0.011 9:0.011
    >>> show(build_targets("label_smoothing_mass_matched", x)[:1])
    0:0.026 1:0.026 2:0.026 3:0.768 4:0.026 5:0.026 6:0.026 7:0.026 8:0.026 9:0.026
    >>> show(build_targets("label_smoothing_midpoint", x)[:1])
    0:0.018 1:0.018 2:0.018 3:0.835 4:0.018 5:0.018 6:0.018 7:0.018 8:0.018 9:0.018

    A post-hoc condition has its base condition's targets (its runs are the base's, rescaled):

    >>> show(build_targets("original_hard_temperature_scaled", x)[:1])
    3:1.000

    ``machine_soft`` is the teacher's tempered softmax, its temperature fitted to the mean
    human entropy; ``generator_soft`` is one-hot(o) where an item has no generator label:

    >>> show(build_targets("machine_soft", x)[:1])
    5:0.001 6:0.004 7:0.022 8:0.136 9:0.837
    >>> show(build_targets("generator_soft", x)[:1])
    3:1.000
    """
    builder = builder_for(condition)
    config = builder.options.from_params(options, f"labels.conditions.{condition}")
    targets = np.asarray(builder.build(inputs, config), np.float64)
    bad = np.flatnonzero(
        ~np.isfinite(targets).all(1)
        | (targets < 0).any(1)
        | ~np.isclose(targets.sum(1), 1.0, atol=1e-9)
    )
    if targets.shape != (len(inputs.original), N_CLASSES) or bad.size:
        raise ValueError(
            f"condition {condition!r} built invalid targets (shape {targets.shape}, bad rows {bad[:5].tolist()})"
        )
    return targets


def strength(targets: np.ndarray, original: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """How strong the targets of the items in ``mask`` are: their count, mean entropy (nats),
    mean mass off the target's own top label (:func:`off_label_mass`) and the number and share
    whose target puts more mass on another label than on the original one
    (:func:`argmax_not_original`; a tie that includes the original label, e.g. a uniform target,
    leaves it on top); NaN over no items.

    >>> t = np.array([[0.9, 0.1] + [0.0] * 8, [0.3, 0.7] + [0.0] * 8])
    >>> strength(t, np.array([0, 0]), np.array([True, True]))["share_argmax_not_original"]
    0.5
    """
    t, o = targets[mask], np.asarray(original)[mask]
    if not len(t):
        nan = float("nan")
        return {
            "n_items": 0,
            "mean_entropy": nan,
            "mean_off_label_mass": nan,
            "share_argmax_not_original": nan,
            "n_argmax_not_original": 0,
        }
    not_original = argmax_not_original(t, o)
    return {
        "n_items": int(mask.sum()),
        "mean_entropy": float(entropy(t).mean()),
        "mean_off_label_mass": float(off_label_mass(t).mean()),
        "share_argmax_not_original": float(not_original.mean()),
        "n_argmax_not_original": int(not_original.sum()),
    }


def argmax_not_original(targets: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Per row: does the target put more mass on another label than on o (its shift)? A tie
    that includes o leaves o on top."""
    t = np.asarray(targets, np.float64)
    return t[np.arange(len(t)), np.asarray(original, np.int64)] < t.max(1) - 1e-12
