"""The positive control's three known outcomes, read from a study's tables.

Under ``digits.study.label_noise`` a share of the MNIST training items carry a wrong
``original_label`` while the crowd votes on the true image (``study_items.true_label``,
``label_flipped``). What is known to be true there, and what the testbed must find:

1. **recovery**: the crowd's mode (``item_stats.human_mode``) equals the true label on most
   flipped items;
2. **pool gain**: ``human_mode_hard`` beats ``original_hard`` in ``pool__accuracy`` (the held-out
   pool, scored against MNIST's true labels), as a mean over seeds of the paired difference;
3. **cartography**: under ``original_hard`` the flipped items land in the hard-to-learn region
   (``region_original == "hard"``: low confidence in the given label, low variability) far more
   often than the unflipped training items.

Plain functions over frames (no files): ``scripts/positive_control.py`` reads a run's outputs
and prints them, and ``tests/test_positive_control.py`` asserts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: the two conditions the pool gain compares
CONDITION, BASELINE = "human_mode_hard", "original_hard"
#: cartography's hard-to-learn region (metrics.cartography.REGIONS)
HARD = "hard"


class NotAPositiveControlError(ValueError):
    """The tables are not of a positive-control run (no flipped labels, a condition missing)."""


@dataclass(frozen=True)
class Outcomes:
    """The three outcomes (module doc); shares in [0, 1], accuracy differences in [-1, 1]."""

    n_flipped: int
    #: share of the flipped items whose human_mode is their true label
    recovered_share: float
    #: share of the flipped items whose human_mode is the flipped (given) label
    kept_wrong_share: float
    #: per source with flipped items: mean over seeds of pool__accuracy(human_mode_hard) -
    #: pool__accuracy(original_hard)
    pool_gain: dict[str, float]
    #: per source: the same difference seed by seed
    pool_gain_by_seed: dict[str, list[float]]
    #: share of (seed, flipped training item) rows in the hard region under original_hard
    hard_share_flipped: float
    #: the same for the unflipped training items
    hard_share_unflipped: float

    def lines(self) -> list[str]:
        gains = ", ".join(
            f"{source} {gain:+.3f} (seeds: {', '.join(f'{g:+.3f}' for g in self.pool_gain_by_seed[source])})"
            for source, gain in self.pool_gain.items()
        )
        return [
            f"flipped training items: {self.n_flipped}",
            f"1. crowd mode = true label on {self.recovered_share:.1%} of the flipped items "
            f"(= the flipped label on {self.kept_wrong_share:.1%})",
            f"2. pool__accuracy, {CONDITION} - {BASELINE}, mean over seeds: {gains}",
            f"3. hard-to-learn under {BASELINE}: {self.hard_share_flipped:.1%} of the flipped "
            f"items vs {self.hard_share_unflipped:.1%} of the unflipped training items",
        ]


def outcomes(
    study_items: pd.DataFrame,
    item_stats: pd.DataFrame,
    metrics_by_run: pd.DataFrame,
    cartography: pd.DataFrame,
) -> Outcomes:
    """The outcomes of one positive-control run from ``study_items``, ``item_stats``,
    ``metrics_by_run`` (columns source, condition, seed, pool__accuracy) and ``original_hard``'s
    cartography (rows of seed and training item; column region_original)."""
    if "label_flipped" not in study_items.columns or not study_items["label_flipped"].any():
        raise NotAPositiveControlError(
            "study_items has no flipped labels: run the study with "
            "digits.study.label_noise.share > 0 (kedro run --env positive_control)"
        )
    flipped_items = study_items.loc[study_items["label_flipped"].astype(bool)]
    stats = flipped_items[["item_id", "true_label", "original_label"]].merge(
        item_stats[["item_id", "human_mode"]], on="item_id", how="left", validate="one_to_one"
    )
    recovered = float((stats["human_mode"] == stats["true_label"]).mean())
    kept_wrong = float((stats["human_mode"] == stats["original_label"]).mean())

    gains, by_seed = {}, {}
    noisy = metrics_by_run["source"].isin(flipped_items["source"].unique())
    for source, rows in metrics_by_run[noisy].groupby("source", sort=True):
        wide = rows.pivot_table(index="seed", columns="condition", values="pool__accuracy")
        missing = [c for c in (CONDITION, BASELINE) if c not in wide.columns]
        if missing:
            raise NotAPositiveControlError(
                f"metrics_by_run has no runs of {missing} for source {source!r}"
            )
        diff = (wide[CONDITION] - wide[BASELINE]).dropna()
        gains[str(source)] = float(diff.mean())
        by_seed[str(source)] = [float(d) for d in diff]

    carto = cartography.loc[cartography["condition"] == BASELINE]
    if carto.empty:
        raise NotAPositiveControlError(f"the cartography table has no {BASELINE!r} rows")
    is_flipped = carto["item_id"].isin(flipped_items["item_id"]).to_numpy()
    hard = (carto["region_original"] == HARD).to_numpy()
    return Outcomes(
        n_flipped=len(flipped_items),
        recovered_share=recovered,
        kept_wrong_share=kept_wrong,
        pool_gain=gains,
        pool_gain_by_seed=by_seed,
        hard_share_flipped=float(np.mean(hard[is_flipped])),
        hard_share_unflipped=float(np.mean(hard[~is_flipped])),
    )


#: what the testbed must show on the positive control (``conf/positive_control``), as
#: (outcome, rule, test): the margins sit well inside what a working testbed gives there
#: (docs/architecture.md, "The positive control") and well outside what a broken one would
#: (a crowd that echoed the given label recovers 0% of the flips; a training that ignored the
#: targets gains 0 on the pool; a cartography blind to the flips puts both groups alike)
EXPECTED = (
    (
        "recovery",
        "crowd mode = true label on >= 80% of the flipped items",
        lambda o: o.recovered_share >= 0.8,
    ),
    (
        "pool gain",
        f"{CONDITION} - {BASELINE} pool__accuracy >= +0.02 (mean over seeds) and > 0 on every seed, per source",
        lambda o: all(
            g >= 0.02 and min(o.pool_gain_by_seed[s]) > 0 for s, g in o.pool_gain.items()
        ),
    ),
    (
        "cartography",
        f"under {BASELINE}, >= 50% of the flipped items hard to learn, and >= 30 points more than of the unflipped",
        lambda o: (
            o.hard_share_flipped >= 0.5 and o.hard_share_flipped - o.hard_share_unflipped >= 0.3
        ),
    ),
)


def verdicts(found: Outcomes) -> list[tuple[str, str, bool]]:
    """(outcome, rule, holds) for each of :data:`EXPECTED`."""
    return [(name, rule, bool(test(found))) for name, rule, test in EXPECTED]


def outcomes_from_catalog(catalog) -> Outcomes:
    """:func:`outcomes` of the run whose datasets ``catalog`` (a Kedro ``DataCatalog`` of the
    project's catalog, e.g. of ``conf/positive_control``) names."""
    return outcomes(
        catalog.load("study_items"),
        catalog.load("item_stats"),
        catalog.load("metrics_by_run"),
        catalog.load("cartography_by_run"),
    )
