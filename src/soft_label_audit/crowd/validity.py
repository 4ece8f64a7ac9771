"""Is the crowd behaving like people? Validity checks on a crowd's votes and soft labels.

The default study runs on a simulated crowd, so its conclusions hold only as far as the crowd
resembles real annotators. Each check below compares one property of the votes with what is
known of human annotators; the targets come from configuration (``crowd_validity``). The
checks are computed the same way for any vote source, so a real crowd's votes give the
reference values.

* ``ambiguity_correlation`` (synthetic): Spearman of the item's human entropy (the measure
  the targets use, :func:`soft_label_audit.human_labels.human_entropy`) with the generator's
  ambiguity ``-|w - 0.5| = 0.5 - max(machine_soft_label)``; people are unsure where the image
  really lies between two digits.
* ``contrast_vs_uncertainty`` (synthetic): ``|Spearman|`` of the share of none/unsure votes
  with the stroke contrast must stay below the ambiguity correlation: faint strokes must not
  be what makes people hesitate.
* ``mnist_mode_shift_share``: share of MNIST items whose human mode differs from the dataset
  label (``item_stats.mode_shift``); published re-annotations of MNIST find label problems on
  well under 1% of images.
* ``mnist_shift_classifier_agreement``: on those items an independent classifier (an RBF
  support-vector machine on raw pixels, trained on MNIST training images that are neither
  study items nor in the simulated crowd's memory) agrees with the crowd's mode at least as
  often as with the dataset label, i.e. the shifts look like label problems, not like errors
  of the observers.
* ``votes_per_item`` (all): in the range of crowdsourced image labels (CIFAR-10H: about 50
  votes per image; many labelling projects collect 5 to 10).
* ``mnist_vote_agreement``: share of MNIST votes naming the item's plurality digit (people
  agree on clean digits, but not perfectly: CIFAR-10H annotators agree with the image's label
  on about 95% of their votes).

The simulated crowd is also measured against real people (``crowd_validity.people_reference``,
source ``mnist_test``; :mod:`soft_label_audit.crowd.people_reference`): the same crowd votes on
the 100 MNIST test images five Mechanical Turk workers each judged in Northcutt et al. (2021),
with those images removed from its memory (:func:`people_reference_table`):

* ``people_reference_images`` / ``people_reference_votes``: the reference's size (every image
  found in ``digits`` with the reference's label; five votes per image);
* ``people_majority_agreement``: the crowd's plurality category (dataset label / proposed
  label / neither) equals the people's majority on the images where people have one;
* ``people_label_wrong_share`` (the reference value), ``crowd_label_wrong_share`` (within a
  tolerance of it) and ``both_label_wrong_share`` (the crowd also rejects most of the labels
  people reject): images where fewer than half the votes name the dataset label;
* ``people_entropy_spearman``: Spearman of the two sides' vote entropies over the three
  categories.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from soft_label_audit import params as p
from soft_label_audit.columns import H_COLS, MNIST_TRAIN_IDS, NONE_CHOICE
from soft_label_audit.crowd import people_reference
from soft_label_audit.crowd.people_reference import PeopleComparison, PeopleReferenceConfig
from soft_label_audit.crowd.perception import stroke_contrast
from soft_label_audit.human_labels import human_entropy

COLUMNS = ["check", "source", "value", "target", "holds"]


@dataclass(frozen=True)
class ValidityTargets:
    ambiguity_spearman_min: float
    mnist_shift_share: tuple[float, float]
    votes_per_item: tuple[float, float]
    mnist_vote_agreement: tuple[float, float]
    classifier_n_train: int
    classifier_c: float
    classifier_seed: int
    people: PeopleReferenceConfig

    @classmethod
    def from_params(cls, params: Any, path: str = "crowd_validity") -> ValidityTargets:
        """Build from the ``crowd_validity`` block, every value checked.

        >>> from soft_label_audit.parameter_tree import base_block
        >>> block = base_block("crowd_validity")
        >>> ValidityTargets.from_params({**block, "classifier": {"n_train": 0, "C": 5, "seed": 0}})
        Traceback (most recent call last):
        ...
        soft_label_audit.params.ParameterError: crowd_validity.classifier.n_train must be a positive integer, got 0
        """
        params = p.block(path, params)
        p.no_unknown(
            path,
            params,
            (
                "ambiguity_spearman_min",
                "mnist_shift_share",
                "votes_per_item",
                "mnist_vote_agreement",
                "classifier",
                "people_reference",
            ),
        )
        clf = p.block(f"{path}.classifier", p.required(path, params, "classifier"))
        p.no_unknown(f"{path}.classifier", clf, ("n_train", "C", "seed"))
        get = lambda key: p.required(path, params, key)  # noqa: E731
        return cls(
            ambiguity_spearman_min=p.number(
                f"{path}.ambiguity_spearman_min", get("ambiguity_spearman_min"), -1, 1
            ),
            mnist_shift_share=_share_range(f"{path}.mnist_shift_share", get("mnist_shift_share")),
            votes_per_item=p.increasing_range(f"{path}.votes_per_item", get("votes_per_item"), 0),
            mnist_vote_agreement=_share_range(
                f"{path}.mnist_vote_agreement", get("mnist_vote_agreement")
            ),
            classifier_n_train=p.positive_int(
                f"{path}.classifier.n_train", p.required(f"{path}.classifier", clf, "n_train")
            ),
            classifier_c=p.number(
                f"{path}.classifier.C", p.required(f"{path}.classifier", clf, "C"), 0, low_open=True
            ),
            classifier_seed=p.non_negative_int(
                f"{path}.classifier.seed", p.required(f"{path}.classifier", clf, "seed")
            ),
            people=PeopleReferenceConfig.from_params(
                get("people_reference"), f"{path}.people_reference"
            ),
        )


def _share_range(path: str, value: Any) -> tuple[float, float]:
    lo, hi = p.increasing_range(path, value, 0)
    if hi > 1:
        raise p.fail(path, "a range within [0, 1]", list(value))
    return lo, hi


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation; NaN when fewer than 3 items or a constant input."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def ambiguity(machine_soft: np.ndarray) -> np.ndarray:
    """``-|w - 0.5|`` of a two-class mixture label ``(1 - w) e_a + w e_b``: ``0.5 - max``."""
    return 0.5 - np.asarray(machine_soft, float).max(axis=1)


def _item_ambiguity(labels: pd.Series) -> np.ndarray:
    """:func:`ambiguity` per item; NaN where an item has no machine soft label."""
    return np.array(
        [np.nan if v is None else float(ambiguity(np.asarray(v, float)[None])[0]) for v in labels]
    )


def fit_reference_classifier(images: np.ndarray, labels: np.ndarray, targets: ValidityTargets):
    """RBF SVM on pixels in [0, 1] (libsvm: deterministic, single-threaded, float64)."""
    from sklearn.svm import SVC

    rng = np.random.default_rng(targets.classifier_seed)
    n = min(targets.classifier_n_train, len(images))
    pick = np.sort(rng.choice(len(images), size=n, replace=False))
    x = np.asarray(images, np.float64)[pick].reshape(n, -1) / 255.0
    return SVC(C=targets.classifier_c, gamma="scale").fit(x, np.asarray(labels)[pick])


def _row(check: str, source: str, value: float, target: str, holds: bool) -> dict[str, Any]:
    ok = bool(holds) and bool(np.isfinite(value))
    return {"check": check, "source": source, "value": float(value), "target": target, "holds": ok}


def _within(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


def crowd_validity(
    item_stats: pd.DataFrame,
    human_soft_labels: pd.DataFrame,
    votes: pd.DataFrame,
    study_digits: pd.DataFrame,
    classifier_pool: tuple[np.ndarray, np.ndarray],
    targets: ValidityTargets,
    none_slot: str,
) -> pd.DataFrame:
    """The ``crowd_validity`` table: one row per check (``check, source, value, target, holds``).

    ``study_digits`` gives each item's image and ``machine_soft_label``; ``classifier_pool``
    (images uint8, labels) the MNIST images the independent classifier learns from (none of
    them a study item or remembered by the simulated crowd); ``votes`` the long vote table
    (empty when the source gives soft labels only: the vote-based checks then do not hold).
    """
    items = (
        item_stats[["item_id", "source", "original_label", "human_mode", "mode_shift"]]
        .merge(human_soft_labels[["item_id", *H_COLS]], on="item_id", validate="one_to_one")
        .merge(
            study_digits[["item_id", "image", "machine_soft_label"]],
            on="item_id",
            validate="one_to_one",
        )
    )
    items["entropy"] = human_entropy(items[list(H_COLS)].to_numpy(float), none_slot)
    hesitant = (votes["choice"].astype(str) == NONE_CHOICE) | votes["unsure"].astype(bool)
    share = hesitant.groupby(votes["item_id"]).mean() if len(votes) else pd.Series(dtype=float)
    items["hesitant_share"] = share.reindex(items["item_id"]).to_numpy(float)
    rows = []

    syn = items[items["source"] == "synthetic"]
    if len(syn):
        amb = _item_ambiguity(syn["machine_soft_label"])
        known = np.isfinite(amb)
        rho = spearman(syn["entropy"].to_numpy()[known], amb[known])
        rows.append(
            _row(
                "ambiguity_correlation",
                "synthetic",
                rho,
                f">= {targets.ambiguity_spearman_min:g}",
                rho >= targets.ambiguity_spearman_min,
            )
        )
        contrast = stroke_contrast(_images(syn) / 255.0)
        rho_c = abs(spearman(syn["hesitant_share"], contrast))
        rows.append(
            _row(
                "contrast_vs_uncertainty",
                "synthetic",
                rho_c,
                f"< ambiguity_correlation ({rho:.3f})",
                rho_c < rho,
            )
        )

    mnist = items[items["source"] == "mnist"]
    if len(mnist):
        shifted = mnist[mnist["mode_shift"].astype(bool)]
        lo, hi = targets.mnist_shift_share
        share_shift = len(shifted) / len(mnist)
        rows.append(
            _row(
                "mnist_mode_shift_share",
                "mnist",
                share_shift,
                f"in [{lo:g}, {hi:g}]",
                _within(share_shift, targets.mnist_shift_share),
            )
        )
        pool_images, pool_labels = classifier_pool
        if len(shifted) and len(np.unique(pool_labels)) >= 2:
            model = fit_reference_classifier(pool_images, pool_labels, targets)
            pred = model.predict(_images(shifted).reshape(len(shifted), -1) / 255.0)
            with_crowd = float(np.mean(pred == shifted["human_mode"].to_numpy()))
            with_label = float(np.mean(pred == shifted["original_label"].to_numpy()))
        else:
            with_crowd = with_label = float("nan")
        rows.append(
            _row(
                "mnist_shift_classifier_agreement",
                "mnist",
                with_crowd,
                f">= agreement with the dataset label ({with_label:.3f})",
                with_crowd >= with_label,
            )
        )

    if len(votes):
        per_item = float(votes.groupby("item_id").size().mean())
        lo, hi = targets.votes_per_item
        rows.append(
            _row(
                "votes_per_item",
                "all",
                per_item,
                f"in [{lo:g}, {hi:g}]",
                _within(per_item, targets.votes_per_item),
            )
        )
        mnist_votes = votes[votes["item_id"].isin(mnist["item_id"])]
        if len(mnist_votes):
            agree = _plurality_agreement(mnist_votes)
            lo, hi = targets.mnist_vote_agreement
            rows.append(
                _row(
                    "mnist_vote_agreement",
                    "mnist",
                    agree,
                    f"in [{lo:g}, {hi:g}]",
                    _within(agree, targets.mnist_vote_agreement),
                )
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def _images(frame: pd.DataFrame) -> np.ndarray:
    from soft_label_audit.data_sources.tables import images_from_column

    return images_from_column(frame["image"]).astype(np.float64)


def _plurality_agreement(votes: pd.DataFrame) -> float:
    """Share of votes that name their item's most frequent choice (none counts as a choice)."""
    counts = votes.groupby(["item_id", "choice"]).size()
    top = counts.groupby(level="item_id").max()
    return float(top.sum() / len(votes))


#: the ``source`` of the rows that compare the crowd with people (MNIST test images, no study item)
PEOPLE_SOURCE = "mnist_test"


def people_reference_rows(
    comparison: PeopleComparison, config: PeopleReferenceConfig, n_reference: int
) -> list[dict[str, Any]]:
    """The rows of the comparison with people (module doc); ``n_reference`` images listed."""
    c, src = comparison, PEOPLE_SOURCE
    people_votes = people_reference.VOTES_PER_IMAGE * n_reference
    size = f"{c.n_images} images, {c.n_people_votes} votes"
    tol = config.label_wrong_tolerance
    shared_min = config.min_shared_label_wrong * c.people_label_wrong
    return [
        _row(
            "people_reference_images",
            src,
            c.n_images,
            f"= {n_reference} ({people_reference.CITATION}), all in digits with their label",
            c.n_images == n_reference,
        ),
        _row(
            "people_reference_votes",
            src,
            c.n_people_votes,
            f"= {people_votes} ({people_reference.VOTES_PER_IMAGE} workers per image); "
            f"the crowd gave {c.n_crowd_votes}",
            c.n_people_votes == people_votes,
        ),
        _row(
            "people_majority_agreement",
            src,
            c.majority_agreement,
            f">= {config.min_majority_agreement:g} over the {c.n_majority} of {c.n_images} "
            "images with a people majority (3 of 5)",
            c.majority_agreement >= config.min_majority_agreement,
        ),
        _row(
            "people_label_wrong_share",
            src,
            c.people_label_wrong,
            f"the people's share (reference; {size})",
            True,
        ),
        _row(
            "crowd_label_wrong_share",
            src,
            c.crowd_label_wrong,
            f"within {tol:g} of the people's share ({c.people_label_wrong:.3f})",
            abs(c.crowd_label_wrong - c.people_label_wrong) <= tol,
        ),
        _row(
            "both_label_wrong_share",
            src,
            c.both_label_wrong,
            f">= {config.min_shared_label_wrong:g} x the people's share ({shared_min:.3f})",
            c.both_label_wrong >= shared_min,
        ),
        _row(
            "people_entropy_spearman",
            src,
            c.entropy_spearman,
            f">= {config.min_entropy_spearman:g} ({size}; 3 categories)",
            c.entropy_spearman >= config.min_entropy_spearman,
        ),
    ]


def people_reference_table(
    digits: pd.DataFrame, simulated_crowd: dict[str, Any], config: PeopleReferenceConfig
) -> pd.DataFrame:
    """The rows comparing the crowd of ``simulated_crowd`` with people on the shipped reference
    (its memory without the reference images); no rows when the comparison is disabled."""
    if not config.enabled:
        return pd.DataFrame(columns=COLUMNS)
    reference = people_reference.load_reference()
    run = people_reference.crowd_on_reference(digits, simulated_crowd, reference)
    return pd.DataFrame(
        people_reference_rows(run.comparison, config, len(reference)), columns=COLUMNS
    )


def validity_frame_for_plot(
    item_stats: pd.DataFrame,
    human_soft_labels: pd.DataFrame,
    votes: pd.DataFrame,
    study_digits: pd.DataFrame,
    none_slot: str,
) -> pd.DataFrame:
    """Synthetic items with entropy, ambiguity, contrast and none/unsure share (for the figure)."""
    syn = (
        item_stats.loc[item_stats["source"] == "synthetic", ["item_id"]]
        .merge(human_soft_labels[["item_id", *H_COLS]], on="item_id")
        .merge(study_digits[["item_id", "image", "machine_soft_label"]], on="item_id")
    )
    if syn.empty:
        return pd.DataFrame(
            columns=["item_id", "entropy", "ambiguity", "contrast", "hesitant_share"]
        )
    hesitant = (votes["choice"].astype(str) == NONE_CHOICE) | votes["unsure"].astype(bool)
    share = hesitant.groupby(votes["item_id"]).mean() if len(votes) else pd.Series(dtype=float)
    return pd.DataFrame(
        {
            "item_id": syn["item_id"].to_numpy(),
            "entropy": human_entropy(syn[list(H_COLS)].to_numpy(float), none_slot),
            "ambiguity": _item_ambiguity(syn["machine_soft_label"]),
            "contrast": stroke_contrast(_images(syn) / 255.0),
            "hesitant_share": share.reindex(syn["item_id"]).to_numpy(float),
        }
    )


def plot_validity(table: pd.DataFrame, synthetic_items: pd.DataFrame, title: str):
    """Three panels: entropy vs ambiguity, none/unsure share vs contrast (synthetic items),
    and the checks with their verdicts."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    ax = axes[0]
    if len(synthetic_items):
        ax.scatter(synthetic_items["ambiguity"], synthetic_items["entropy"], s=8, alpha=0.5)
    ax.set_xlabel("generator ambiguity  -|w - 0.5|")
    ax.set_ylabel("human entropy (nats)")
    ax.set_title("synthetic: uncertainty follows ambiguity?", fontsize=10)
    ax = axes[1]
    if len(synthetic_items):
        ax.scatter(
            synthetic_items["contrast"],
            synthetic_items["hesitant_share"],
            s=8,
            alpha=0.5,
            color="tab:orange",
        )
    ax.set_xlabel("stroke contrast")
    ax.set_ylabel("share of none/unsure votes")
    ax.set_title("synthetic: contrast should not drive it", fontsize=10)
    ax = axes[2]
    ax.set_axis_off()
    lines = [
        f"{'holds' if r.holds else 'FAILS'}  {r.check} [{r.source}] = {r.value:.3f}  ({r.target})"
        for r in table.itertuples()
    ]
    ax.text(
        0.0,
        1.0,
        "\n".join(lines) or "no checks",
        va="top",
        ha="left",
        fontsize=7.5,
        family="monospace",
        transform=ax.transAxes,
        wrap=True,
    )
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def classifier_pool(
    digits: pd.DataFrame, study_digits: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels the independent classifier learns from: MNIST training images that
    are not study items (the simulated crowd remembers test images only, so the two never
    share an image)."""
    from soft_label_audit.data_sources.tables import images_from_column

    train = digits[(digits["source"] == "mnist") & digits["item_id"].isin(MNIST_TRAIN_IDS)]
    in_study = train["item_id"].isin(study_digits["item_id"])
    pool = train[~in_study]
    logging.getLogger(__name__).info(
        "validity classifier pool: %d MNIST training images; %d study items excluded "
        "(study items that are MNIST test images are never in it)",
        len(pool),
        int(in_study.sum()),
    )
    return images_from_column(pool["image"]), pool["original_label"].to_numpy()


def log_table(table: pd.DataFrame, annotation_source: str, logger: logging.Logger) -> None:
    """One log line per check: its value, target and whether it holds."""
    for row in table.itertuples():
        logger.info(
            "crowd validity [%s] %s (%s) = %.3f, target %s: %s",
            annotation_source,
            row.check,
            row.source,
            row.value,
            row.target,
            "holds" if row.holds else "FAILS",
        )
