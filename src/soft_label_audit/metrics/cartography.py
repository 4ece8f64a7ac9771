"""Dataset cartography (Swayamdipta et al., 2020) from recorded training dynamics.

For one run, with ``p_e(i)`` the predicted distribution of training item ``i`` after epoch
``e = 1..E`` and ``y_i`` a reference label (the original label, or the human mode):

* confidence  = ``(1/E) sum_e p_e(i)[y_i]``
* variability = ``sqrt((1/E) sum_e (p_e(i)[y_i] - confidence)^2)`` (population std)
* correctness = ``(1/E) sum_e 1[argmax p_e(i) = y_i]`` (a fraction in [0, 1])

Burn-in: the first ``floor(burn_in_fraction * E)`` epochs can be left out. On a study this
small an epoch is a handful of optimizer steps, and every item's confidence climbs steeply
through the first ones: left in, they make variability measure how fast the bulk of the data
is learned rather than how an item's prediction wavers once the model has fitted it.

Human entropy and the entropy of the run's own targets. A model mirrors the targets it was
trained on: the correlation of a coordinate with the human entropy of the training items is
partly the correlation of the condition's target entropy with the human entropy (for
``human_soft`` the two entropies are the same). Each correlation with the human entropy
(``carto_rho_*_{ref}``) therefore has a twin with the entropy of the condition's own training
target, ``carto_rho_*_{ref}_own_target`` (NaN where every target has the same entropy: one-hot
and uniformly smoothed targets carry no per-item uncertainty to mirror).

Regions, with thresholds from configuration: *ambiguous* when variability >=
``ambiguous_min_variability``; otherwise *easy* when confidence >= ``easy_min_confidence``
and *hard* (hard to learn) below it. Fixed thresholds, not quantiles, so shares compare
across conditions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soft_label_audit.metrics.alignment import spearman

REGIONS = ("easy", "ambiguous", "hard")
#: the labels a data map measures confidence against (``reporting.cartography_reference``)
REFERENCES = ("original", "human_mode")


@dataclass(frozen=True)
class CartographyCoordinates:
    """Per-seed, per-item coordinates, each (S, n)."""

    confidence: np.ndarray
    variability: np.ndarray
    correctness: np.ndarray


def coordinates(probs: np.ndarray, labels: np.ndarray) -> CartographyCoordinates:
    """Confidence, variability and correctness of each item in each run.

    ``probs`` is (S, E, n, K): S seeds, E epochs, n items, K classes; ``labels`` is (n,).

    One seed, two epochs, two items of label 0: item 0 gets p = 0.6 then 0.8 (right both
    times), item 1 gets 0.2 then 0.6 (right once):

    >>> probs = np.array([[[[0.6, 0.4], [0.2, 0.8]], [[0.8, 0.2], [0.6, 0.4]]]])
    >>> c = coordinates(probs, np.array([0, 0]))
    >>> c.confidence.round(3).tolist(), c.variability.round(3).tolist()
    ([[0.7, 0.4]], [[0.1, 0.2]])
    >>> c.correctness.tolist()
    [[1.0, 0.5]]
    """
    probs = np.asarray(probs)
    if probs.ndim != 4:
        raise ValueError(
            f"dynamics must be (seeds, epochs, items, classes), got shape {probs.shape}"
        )
    s, e, n, k = probs.shape
    if e < 1:
        raise ValueError("dynamics need at least one epoch")
    y = np.asarray(labels).astype(np.int64)
    if y.shape != (n,) or (n and (y.min() < 0 or y.max() >= k)):
        raise ValueError(f"labels must be ({n},) class indices in 0..{k - 1}")
    p_true = np.take_along_axis(probs, y[None, None, :, None], axis=3)[..., 0].astype(np.float64)
    correct = probs.argmax(axis=3) == y[None, None, :]
    return CartographyCoordinates(
        confidence=p_true.mean(axis=1),
        variability=p_true.std(axis=1, ddof=0),
        correctness=correct.mean(axis=1),
    )


def burn_in_epochs(n_epochs: int, fraction: float) -> int:
    """Epochs to leave out: ``floor(fraction * n_epochs)``, always keeping at least one."""
    if not 0 <= fraction < 1:
        raise ValueError(f"burn_in_fraction must lie in [0, 1), got {fraction}")
    return min(int(np.floor(fraction * n_epochs)), n_epochs - 1)


def regions(
    confidence: np.ndarray,
    variability: np.ndarray,
    easy_min_confidence: float,
    ambiguous_min_variability: float,
) -> np.ndarray:
    """Region name per item (same shape as the inputs)."""
    confidence = np.asarray(confidence)
    variability = np.asarray(variability)
    out = np.where(confidence >= easy_min_confidence, REGIONS[0], REGIONS[2]).astype(object)
    out[variability >= ambiguous_min_variability] = REGIONS[1]
    return out


def region_shares(region: np.ndarray) -> dict[str, float]:
    """Fraction of items in each region (the three shares sum to one)."""
    region = np.asarray(region)
    n = region.size
    return {r: (float(np.mean(region == r)) if n else float("nan")) for r in REGIONS}


def seed_summaries(
    coords: CartographyCoordinates,
    region: np.ndarray,
    entropy: np.ndarray,
    ref: str,
    target_entropy: np.ndarray | None = None,
) -> list[dict[str, float]]:
    """Per seed, against reference ``ref``: the mean confidence, variability and correctness,
    the Spearman correlations of variability and of ``1 - confidence`` with the human entropy,
    and the region shares; each key ends in ``_{ref}``. With ``target_entropy`` (n,), the
    entropy of the run's own training targets, the two correlations with it too
    (``carto_rho_variability_{ref}_own_target``, ``carto_rho_uncertainty_{ref}_own_target``).

    >>> c = CartographyCoordinates(np.array([[0.9, 0.6, 0.3]]), np.array([[0.1, 0.2, 0.3]]),
    ...     np.array([[1.0, 1.0, 0.0]]))
    >>> row = seed_summaries(c, np.array([["easy"] * 3]), np.array([0.0, 0.5, 1.0]), "original",
    ...     target_entropy=np.array([1.0, 0.5, 0.0]))[0]
    >>> row["carto_rho_variability_original"], row["carto_rho_variability_original_own_target"]
    (1.0, -1.0)
    """
    out = []
    for s in range(coords.confidence.shape[0]):
        shares = region_shares(region[s])
        row = {
            f"carto_confidence_{ref}": float(coords.confidence[s].mean()),
            f"carto_variability_{ref}": float(coords.variability[s].mean()),
            f"carto_correctness_{ref}": float(coords.correctness[s].mean()),
            f"carto_rho_variability_{ref}": spearman(coords.variability[s], entropy),
            f"carto_rho_uncertainty_{ref}": spearman(1.0 - coords.confidence[s], entropy),
        }
        if target_entropy is not None:
            row[f"carto_rho_variability_{ref}_own_target"] = spearman(
                coords.variability[s], target_entropy
            )
            row[f"carto_rho_uncertainty_{ref}_own_target"] = spearman(
                1.0 - coords.confidence[s], target_entropy
            )
        out.append(row | {f"carto_share_{r}_{ref}": v for r, v in shares.items()})
    return out


def map_runs(
    probs: np.ndarray,
    labels: dict[str, np.ndarray],
    entropy: np.ndarray,
    burn_in_fraction: float,
    easy_min_confidence: float,
    ambiguous_min_variability: float,
    target_entropy: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], list[dict[str, float]]]:
    """Every run's map against each reference label in ``labels`` (name -> (n,) labels);
    ``entropy``: the items' human entropy, ``target_entropy``: that of the condition's own
    training targets (:func:`seed_summaries`).

    ``probs`` is (S, E, n, K); the first epochs are left out (:func:`burn_in_epochs`). Returns
    per reference ``confidence_{ref}``, ``variability_{ref}``, ``correctness_{ref}`` and
    ``region_{ref}`` arrays, each (S, n), and per seed one dict of :func:`seed_summaries` over
    every reference.
    """
    probs = np.asarray(probs)
    probs = probs[:, burn_in_epochs(probs.shape[1], burn_in_fraction) :]
    columns: dict[str, np.ndarray] = {}
    per_seed: list[dict[str, float]] = [{} for _ in range(probs.shape[0])]
    for ref, y in labels.items():
        coords = coordinates(probs, y)
        region = regions(
            coords.confidence, coords.variability, easy_min_confidence, ambiguous_min_variability
        )
        columns |= {
            f"confidence_{ref}": coords.confidence,
            f"variability_{ref}": coords.variability,
            f"correctness_{ref}": coords.correctness,
            f"region_{ref}": region,
        }
        for row, summary in zip(
            per_seed, seed_summaries(coords, region, entropy, ref, target_entropy), strict=True
        ):
            row |= summary
    return columns, per_seed
