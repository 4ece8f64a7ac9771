"""Aggregation of long vote tables into 11-slot human soft labels (10 digits + "none").

All aggregators follow crowd-kit's contract: ``fit(votes)`` stores ``probas_`` (a frame
indexed by item_id with columns ``h_0`` .. ``h_9``, ``h_none``, rows summing to one) and
``fit_predict_proba(votes)`` returns it. With ``n_c`` the votes for slot ``c`` of an item
(``none`` votes count for ``h_none``), ``u_c`` the unsure ones among them and ``n`` all votes:

* ``vote_share`` (the default): ``h_c = n_c / n``: a sure and an unsure vote on a digit count
  equally on that digit (the released data's own ``soft_label`` semantics);
* ``vote_share_yes_only``: only sure votes count, ``h_c = (n_c - u_c) / (n - u)`` with ``u``
  all unsure votes; an item whose votes are all unsure gets ``h_none = 1``;
* ``vote_share_unsure_to_none``: ``h_c = (n_c - u_c) / n`` for digits and
  ``h_none = (n_none + sum_c u_c) / n``: an unsure vote's mass moves to the "none" slot;
* ``dawid_skene``: crowd-kit's :class:`~crowdkit.aggregation.DawidSkene` posterior over the
  11 labels (one confusion matrix per annotator, fitted by EM; unsure votes count as sure).

A rule's assumptions (:func:`check_assumptions`): the vote shares assume nothing beyond the
votes. Dawid-Skene is identified only with enough votes per annotator and per item, and
``annotation.dawid_skene`` sets both:

* ``min_median_votes_per_annotator`` (11 = the number of labels): each annotator has an 11 x 11
  confusion matrix, one row per true label. An annotator with fewer votes than labels leaves
  rows without a single observation, and one vote per annotator fits its matrix to that vote
  exactly; when the median annotator has fewer, most matrices are free and EM moves the
  posterior wherever its start and its artefacts lead (on real votes of one per annotator it
  moved the argmax off the dataset label on 83 of 100 items);
* ``min_median_votes_per_item`` (3): a latent-class model of conditionally independent
  annotators needs at least three annotators per item to be identified (Kruskal's theorem, as
  applied by Allman, Matias & Rhodes 2009, Ann. Statist. 37(6A)).

A rule whose assumptions fail is still computed for ``human_soft_labels_by_rule``, with a
logged warning and ``assumptions_ok`` false in ``mode_shifts_by_rule``; it is refused as
``annotation.aggregation`` (:func:`require_assumptions`): no silent fallback, the user chooses
another rule or brings more votes.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from soft_label_audit import params as p
from soft_label_audit.columns import CHOICES, H_COLS
from soft_label_audit.errors import UserError

logger = logging.getLogger(__name__)

RULES = ("vote_share", "vote_share_yes_only", "vote_share_unsure_to_none", "dawid_skene")
_SLOT = {choice: i for i, choice in enumerate(CHOICES)}


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        columns=list(H_COLS), index=pd.Index([], dtype="int64", name="item_id"), dtype=float
    )


@dataclass(frozen=True)
class Assumptions:
    """Whether a rule's assumptions hold on a vote table, and why not (``""`` when they do)."""

    ok: bool
    note: str


class AggregationAssumptionError(UserError, ValueError):
    """``annotation.aggregation`` names a rule whose assumptions fail on the votes."""


@dataclass
class VoteShare:
    """Share of votes per slot; ``unsure_to_none`` moves unsure votes' mass to ``h_none``;
    ``yes_only`` drops unsure votes (an item with no sure vote is all ``h_none``)."""

    unsure_to_none: bool = False
    yes_only: bool = False
    probas_: pd.DataFrame = field(init=False, repr=False)

    def fit(self, votes: pd.DataFrame) -> VoteShare:
        if votes.empty:
            self.probas_ = _empty()
            return self
        slot = votes["choice"].map(_SLOT).to_numpy()
        if self.unsure_to_none:
            slot = np.where(votes["unsure"].to_numpy(bool), _SLOT["none"], slot)
        items, item_idx = np.unique(votes["item_id"].to_numpy(np.int64), return_inverse=True)
        counts = np.zeros((len(items), len(H_COLS)))
        weight = 1.0 - votes["unsure"].to_numpy(bool) if self.yes_only else np.ones(len(votes))
        np.add.at(counts, (item_idx, slot), weight)
        counts[counts.sum(axis=1) == 0, _SLOT["none"]] = 1.0
        self.probas_ = pd.DataFrame(
            counts / counts.sum(axis=1, keepdims=True),
            index=pd.Index(items, name="item_id"),
            columns=list(H_COLS),
        )
        return self

    def fit_predict_proba(self, votes: pd.DataFrame) -> pd.DataFrame:
        return self.fit(votes).probas_

    def assumptions(self, votes: pd.DataFrame) -> Assumptions:
        """A vote share is each item's own count: nothing to identify."""
        return Assumptions(True, "")


@dataclass
class DawidSkeneSoft:
    """crowd-kit's Dawid-Skene on the 11 labels; ids are cast to strings for crowd-kit."""

    n_iter: int = 100
    tol: float = 1e-5
    #: identifiability: median votes per annotator and per item (module doc)
    min_median_votes_per_annotator: float = len(CHOICES)
    min_median_votes_per_item: float = 3
    probas_: pd.DataFrame = field(init=False, repr=False)
    errors_: pd.DataFrame = field(init=False, repr=False)

    @classmethod
    def from_params(
        cls, block: DawidSkeneSoft | Mapping[str, Any] | None, path: str = "annotation.dawid_skene"
    ) -> DawidSkeneSoft:
        """
        >>> DawidSkeneSoft.from_params({"n_iter": 0})
        Traceback (most recent call last):
        ...
        soft_label_audit.params.ParameterError: annotation.dawid_skene.n_iter must be a positive integer, got 0
        """
        if isinstance(block, DawidSkeneSoft):
            return cls(
                n_iter=block.n_iter,
                tol=block.tol,
                min_median_votes_per_annotator=block.min_median_votes_per_annotator,
                min_median_votes_per_item=block.min_median_votes_per_item,
            )
        block = p.block(path, block)
        minima = ("min_median_votes_per_annotator", "min_median_votes_per_item")
        p.no_unknown(path, block, ("n_iter", "tol", *minima))
        return cls(
            n_iter=p.positive_int(f"{path}.n_iter", p.required(path, block, "n_iter")),
            tol=p.number(f"{path}.tol", p.required(path, block, "tol"), 0, low_open=True),
            **{key: p.number(f"{path}.{key}", p.required(path, block, key), 1) for key in minima},
        )

    def assumptions(self, votes: pd.DataFrame) -> Assumptions:
        """Are the confusion matrices identified on ``votes`` (module doc)?

        >>> votes = pd.DataFrame({"item_id": [1, 1, 1, 2, 2, 2], "choice": ["3"] * 6,
        ...                       "annotator_id": ["a", "b", "c", "d", "e", "f"]})
        >>> DawidSkeneSoft().assumptions(votes).note
        'median votes per annotator 1 < 11 (min_median_votes_per_annotator: its confusion matrix has 11 rows)'
        """
        if votes.empty:
            return Assumptions(False, "no votes")
        per_annotator = float(votes.groupby("annotator_id").size().median())
        per_item = float(votes.groupby("item_id").size().median())
        notes = []
        if per_annotator < self.min_median_votes_per_annotator:
            notes.append(
                f"median votes per annotator {per_annotator:g} < "
                f"{self.min_median_votes_per_annotator:g} (min_median_votes_per_annotator: its "
                f"confusion matrix has {len(CHOICES)} rows)"
            )
        if per_item < self.min_median_votes_per_item:
            notes.append(
                f"median votes per item {per_item:g} < {self.min_median_votes_per_item:g} "
                "(min_median_votes_per_item: a latent-class model needs three annotators per item)"
            )
        return Assumptions(not notes, "; ".join(notes))

    def fit(self, votes: pd.DataFrame) -> DawidSkeneSoft:
        from crowdkit.aggregation import DawidSkene

        if votes.empty:
            self.probas_ = _empty()
            self.errors_ = pd.DataFrame()
            return self
        data = pd.DataFrame(
            {
                "task": votes["item_id"].astype(np.int64).astype(str),
                "worker": votes["annotator_id"].astype(str),
                "label": votes["choice"].astype(str),
            }
        )
        model = DawidSkene(n_iter=self.n_iter, tol=self.tol)
        with warnings.catch_warnings():
            # crowd-kit 1.4.2 still passes pandas' deprecated copy/inplace keywords
            warnings.filterwarnings("ignore", module=r"crowdkit\.")
            probas = model.fit_predict_proba(data)
        probas = probas.reindex(columns=list(CHOICES), fill_value=0.0).fillna(0.0)
        probas.columns = list(H_COLS)
        probas.index = pd.Index(probas.index.astype(np.int64), name="item_id")
        probas = probas.div(probas.sum(axis=1), axis=0).sort_index()
        self.probas_ = probas
        self.errors_ = model.errors_
        return self

    def fit_predict_proba(self, votes: pd.DataFrame) -> pd.DataFrame:
        return self.fit(votes).probas_


def make_aggregator(
    rule: str, dawid_skene: DawidSkeneSoft | Mapping[str, Any] | None = None
) -> VoteShare | DawidSkeneSoft:
    if rule == "vote_share":
        return VoteShare(unsure_to_none=False)
    if rule == "vote_share_yes_only":
        return VoteShare(yes_only=True)
    if rule == "vote_share_unsure_to_none":
        return VoteShare(unsure_to_none=True)
    if rule == "dawid_skene":
        return DawidSkeneSoft.from_params(dawid_skene)
    raise ValueError(f"unknown aggregation rule {rule!r}; choose one of {RULES}")


def check_assumptions(
    votes: pd.DataFrame, rule: str, dawid_skene: DawidSkeneSoft | Mapping[str, Any] | None = None
) -> Assumptions:
    """Do ``rule``'s assumptions hold on ``votes`` (module doc)? A rule that is not one of
    :data:`RULES` (e.g. ``released:soft_label``) names soft labels taken as given."""
    if rule not in RULES:
        return Assumptions(True, "soft labels taken as given (no votes to check)")
    return make_aggregator(rule, dawid_skene).assumptions(votes)


def require_assumptions(
    votes: pd.DataFrame, rule: str, dawid_skene: DawidSkeneSoft | Mapping[str, Any] | None = None
) -> None:
    """Refuse ``rule`` as ``annotation.aggregation`` when its assumptions fail on ``votes``.

    >>> votes = pd.DataFrame({"item_id": [1, 1, 1], "choice": ["3", "3", "5"],
    ...                       "annotator_id": ["a", "b", "c"], "unsure": False})
    >>> try:
    ...     require_assumptions(votes, "dawid_skene", DawidSkeneSoft())
    ... except AggregationAssumptionError as error:
    ...     print(str(error).replace(": ", ":\\n"))
    annotation.aggregation is dawid_skene, but its assumptions fail on these votes:
    median votes per annotator 1 < 11 (min_median_votes_per_annotator:
    its confusion matrix has 11 rows)
    >>> require_assumptions(votes, "vote_share", DawidSkeneSoft())  # nothing to identify
    """
    checked = check_assumptions(votes, rule, dawid_skene)
    if not checked.ok:
        raise AggregationAssumptionError(
            f"annotation.aggregation is {rule}, but its assumptions fail on these votes: "
            f"{checked.note}",
            fix="choose another rule (--params annotation.aggregation=vote_share) or collect "
            "more votes per annotator and per item",
        )


def aggregate(
    votes: pd.DataFrame, rule: str, dawid_skene: DawidSkeneSoft | Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``item_id``, ``h_0`` .. ``h_none``, ``aggregation`` (= rule), one row per voted item.

    Four votes on one item: a sure 4, an unsure 4, an unsure 9 and a "none". Four votes cannot
    identify Dawid-Skene (one vote per annotator: :func:`check_assumptions` fails, and
    ``aggregate`` would log a warning), so the example relaxes its checks:

    >>> votes = pd.DataFrame({"item_id": [1, 1, 1, 1], "annotator_id": ["a", "b", "c", "d"],
    ...                       "choice": ["4", "4", "9", "none"],
    ...                       "unsure": [False, True, True, False]})
    >>> check_assumptions(votes, "dawid_skene", DawidSkeneSoft()).ok
    False
    >>> relaxed = DawidSkeneSoft(min_median_votes_per_annotator=1, min_median_votes_per_item=1)
    >>> for rule in RULES:
    ...     row = aggregate(votes, rule, relaxed).set_index("item_id")
    ...     row = row.loc[1, list(H_COLS)]
    ...     print(rule, {k: round(float(v), 3) for k, v in row.items() if v > 5e-4})
    vote_share {'h_4': 0.5, 'h_9': 0.25, 'h_none': 0.25}
    vote_share_yes_only {'h_4': 0.5, 'h_none': 0.5}
    vote_share_unsure_to_none {'h_4': 0.25, 'h_none': 0.75}
    dawid_skene {'h_4': 0.5, 'h_9': 0.25, 'h_none': 0.25}
    """
    aggregator = make_aggregator(rule, dawid_skene)
    checked = aggregator.assumptions(votes)
    if not checked.ok:
        logger.warning(
            "aggregation rule %s: its assumptions fail on these votes (%s); its soft labels "
            "are kept for comparison in human_soft_labels_by_rule, flagged in "
            "mode_shifts_by_rule.assumptions_ok, and it cannot be annotation.aggregation",
            rule,
            checked.note,
        )
    probas = aggregator.fit_predict_proba(votes)
    out = probas.reset_index()
    out["aggregation"] = rule
    return out
