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
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from soft_label_audit import params as p
from soft_label_audit.columns import CHOICES, H_COLS

RULES = ("vote_share", "vote_share_yes_only", "vote_share_unsure_to_none", "dawid_skene")
_SLOT = {choice: i for i, choice in enumerate(CHOICES)}


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        columns=list(H_COLS), index=pd.Index([], dtype="int64", name="item_id"), dtype=float
    )


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


@dataclass
class DawidSkeneSoft:
    """crowd-kit's Dawid-Skene on the 11 labels; ids are cast to strings for crowd-kit."""

    n_iter: int = 100
    tol: float = 1e-5
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
            return cls(n_iter=block.n_iter, tol=block.tol)
        block = p.block(path, block)
        p.no_unknown(path, block, ("n_iter", "tol"))
        return cls(
            n_iter=p.positive_int(f"{path}.n_iter", p.required(path, block, "n_iter")),
            tol=p.number(f"{path}.tol", p.required(path, block, "tol"), 0, low_open=True),
        )

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


def aggregate(
    votes: pd.DataFrame, rule: str, dawid_skene: DawidSkeneSoft | Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``item_id``, ``h_0`` .. ``h_none``, ``aggregation`` (= rule), one row per voted item.

    Four votes on one item: a sure 4, an unsure 4, an unsure 9 and a "none":

    >>> votes = pd.DataFrame({"item_id": [1, 1, 1, 1], "annotator_id": ["a", "b", "c", "d"],
    ...                       "choice": ["4", "4", "9", "none"],
    ...                       "unsure": [False, True, True, False]})
    >>> for rule in RULES:
    ...     row = aggregate(votes, rule, {"n_iter": 100, "tol": 1e-5}).set_index("item_id")
    ...     row = row.loc[1, list(H_COLS)]
    ...     print(rule, {k: round(float(v), 3) for k, v in row.items() if v > 5e-4})
    vote_share {'h_4': 0.5, 'h_9': 0.25, 'h_none': 0.25}
    vote_share_yes_only {'h_4': 0.5, 'h_none': 0.5}
    vote_share_unsure_to_none {'h_4': 0.25, 'h_none': 0.75}
    dawid_skene {'h_4': 0.5, 'h_9': 0.25, 'h_none': 0.25}
    """
    probas = make_aggregator(rule, dawid_skene).fit_predict_proba(votes)
    out = probas.reset_index()
    out["aggregation"] = rule
    return out
