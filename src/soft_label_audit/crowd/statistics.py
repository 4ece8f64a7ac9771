"""Item, annotator and study-level agreement statistics of the human soft labels.

* human entropy: :func:`soft_label_audit.human_labels.human_entropy`, the entropy (nats) of the
  10-digit label that the none-slot rule (``labels.none_slot``) makes of h, i.e. the entropy
  of the ``human_soft`` training target (an item whose votes are all "none" is uniform, ln 10);
* ``human_argmax``: argmax of ``h`` over the 10 digits; ties go to the original label when it
  is among the maxima, else to the lowest digit;
* the mode is *supported* when at least ``min_vote_share`` of all the item's votes (none and
  unsure included) name it and at least ``min_sure_votes`` of those are sure (released soft
  labels carry no votes: the mode's 11-slot mass stands for its vote share, sure votes are
  not checked); ``human_mode`` = ``human_argmax`` where supported, else the original label,
  ``mode_unsupported`` = not supported; ``mode_shift`` = human mode != original label;
* an item is unanimous when all its votes name the same digit (an item without digit votes
  never is);
* an annotator's agreement with the aggregate is the share of its votes that name the
  item's aggregate mode over all 11 slots, its soft agreement the mean ``h[choice]``;
* Krippendorff's alpha (nominal, 11 categories) over the annotator x item matrix,
  ``alpha = 1 - D_o / D_e`` (the ``krippendorff`` package).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from soft_label_audit import params as p
from soft_label_audit.columns import CHOICES, H_COLS, NONE_CHOICE
from soft_label_audit.human_labels import human_argmax, human_digits, human_entropy

_SLOT = {choice: i for i, choice in enumerate(CHOICES)}


def vote_summary(votes: pd.DataFrame) -> pd.DataFrame:
    """Per item: n_votes, pct_unsure, pct_none, unanimous (all votes the same choice)."""
    if votes.empty:
        return pd.DataFrame(
            {
                "n_votes": pd.Series(dtype="Int64"),
                "pct_unsure": [],
                "pct_none": [],
                "unanimous": pd.Series(dtype="boolean"),
            },
            index=pd.Index([], dtype="int64", name="item_id"),
        )
    g = votes.assign(is_none=votes["choice"] == NONE_CHOICE).groupby("item_id")
    return pd.DataFrame(
        {
            "n_votes": g.size().astype("Int64"),
            "pct_unsure": g["unsure"].mean().astype(float),
            "pct_none": g["is_none"].mean().astype(float),
            "unanimous": ((g["choice"].nunique() == 1) & ~g["is_none"].any()).astype("boolean"),
        }
    )


@dataclass(frozen=True)
class ModeSupport:
    """``annotation.mode_support``: the votes a human mode needs (module doc)."""

    min_vote_share: float
    min_sure_votes: int

    @classmethod
    def from_params(
        cls, block: ModeSupport | Mapping[str, Any] | None, path: str = "annotation.mode_support"
    ) -> ModeSupport:
        """
        >>> ModeSupport.from_params({"min_vote_share": 2})
        Traceback (most recent call last):
        ...
        soft_label_audit.params.ParameterError: annotation.mode_support.min_vote_share must be a number in [0, 1], got 2
        """
        if isinstance(block, ModeSupport):
            return block
        block = p.block(path, block)
        p.no_unknown(path, block, ("min_vote_share", "min_sure_votes"))
        return cls(
            min_vote_share=p.probability(
                f"{path}.min_vote_share", p.required(path, block, "min_vote_share")
            ),
            min_sure_votes=p.non_negative_int(
                f"{path}.min_sure_votes", p.required(path, block, "min_sure_votes")
            ),
        )


def item_statistics(
    soft_labels: pd.DataFrame,
    study: pd.DataFrame,
    votes: pd.DataFrame,
    pct_unsure: pd.Series | None = None,
    none_slot: str = "spread",
    mode_support: ModeSupport | Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The ``item_stats`` table (one row per study item with a soft label).

    ``pct_unsure`` (indexed by item_id) replaces the vote-based share when there are no votes
    (released soft labels carry it). ``none_slot``: the ``labels.none_slot`` rule behind the
    entropy; ``mode_support``: ``min_vote_share`` and ``min_sure_votes`` (module doc).
    """
    merged = study[["item_id", "source", "split", "original_label"]].merge(
        soft_labels[["item_id", *H_COLS]], on="item_id", how="inner", validate="one_to_one"
    )
    h = merged[list(H_COLS)].to_numpy(float)
    summary = vote_summary(votes).reindex(merged["item_id"])
    unsure = summary["pct_unsure"].to_numpy(float)
    if pct_unsure is not None:
        given = pct_unsure.reindex(merged["item_id"]).to_numpy(float)
        unsure = np.where(np.isnan(unsure), given, unsure)
    original = merged["original_label"].to_numpy(np.int64)
    argmax = human_argmax(human_digits(h, none_slot), original)
    supported = mode_supported(h, argmax, merged["item_id"].to_numpy(np.int64), votes, mode_support)
    mode = np.where(supported, argmax, original)
    return pd.DataFrame(
        {
            "item_id": merged["item_id"].astype("int64"),
            "source": merged["source"].astype(str),
            "split": merged["split"].astype(str),
            "original_label": merged["original_label"].astype("int64"),
            "n_votes": pd.array(summary["n_votes"].to_numpy(), dtype="Int64"),
            "human_entropy": human_entropy(h, none_slot),
            "pct_unsure": unsure,
            "pct_none_votes": summary["pct_none"].to_numpy(float),
            "unanimous": pd.array(summary["unanimous"].to_numpy(), dtype="boolean"),
            "h_none": h[:, -1],
            "human_argmax": argmax,
            "human_mode": mode,
            "mode_unsupported": ~supported,
            "mode_shift": mode != original,
        }
    )


def mode_supported(
    h: np.ndarray,
    mode: np.ndarray,
    item_ids: np.ndarray,
    votes: pd.DataFrame,
    mode_support: ModeSupport | Mapping[str, Any] | None,
) -> np.ndarray:
    """Per item: do the votes support ``mode`` (module doc)? Items without votes use ``h``."""
    rule = ModeSupport.from_params(mode_support)
    min_share, min_sure = rule.min_vote_share, rule.min_sure_votes
    share = h[np.arange(len(h)), mode].astype(float)
    sure = np.full(len(h), np.iinfo(np.int64).max)
    if len(votes):
        lookup = pd.Series(np.arange(len(item_ids)), index=item_ids)
        row = lookup.reindex(votes["item_id"]).to_numpy()
        known = ~np.isnan(row)
        row = row[known].astype(np.int64)
        choice = votes["choice"].to_numpy(str)[known]
        on_mode = choice == mode[row].astype(str)
        n_all = np.bincount(row, minlength=len(h))
        n_mode = np.bincount(row, weights=on_mode, minlength=len(h))
        sure_on_mode = on_mode & ~votes["unsure"].to_numpy(bool)[known]
        n_sure = np.bincount(row, weights=sure_on_mode, minlength=len(h))
        voted = n_all > 0
        share = np.where(voted, n_mode / np.maximum(n_all, 1), share)
        sure = np.where(voted, n_sure, sure)
    return (share >= min_share - 1e-12) & (sure >= min_sure)


def aggregate_mode_slot(soft_labels: pd.DataFrame) -> pd.Series:
    """Argmax over all 11 slots (as a choice string), indexed by item_id."""
    h = soft_labels[list(H_COLS)].to_numpy(float)
    return pd.Series(np.asarray(CHOICES)[h.argmax(axis=1)], index=soft_labels["item_id"].to_numpy())


def annotator_statistics(
    votes: pd.DataFrame, soft_labels: pd.DataFrame, agreement_below: float
) -> pd.DataFrame:
    """One row per annotator: votes, agreement with the aggregate, unsure/none shares, speed.

    ``suspect`` flags annotators whose agreement with the aggregate mode is below
    ``agreement_below`` (careless or adversarial annotators).
    """
    columns = [
        "annotator_id",
        "n_votes",
        "agreement_with_aggregate",
        "soft_agreement",
        "pct_unsure",
        "pct_none",
        "median_response_time",
        "suspect",
    ]
    if votes.empty:
        return pd.DataFrame(
            {
                c: pd.Series(dtype=t)
                for c, t in zip(
                    columns,
                    ["str", "int64", "float64", "float64", "float64", "float64", "float64", "bool"],
                    strict=True,
                )
            }
        )
    mode = aggregate_mode_slot(soft_labels)
    h = soft_labels.set_index("item_id")[list(H_COLS)]
    slot = votes["choice"].map(_SLOT).to_numpy()
    rows = h.index.get_indexer(votes["item_id"])
    mass = h.to_numpy(float)[rows, slot]
    frame = votes.assign(
        agrees=votes["choice"].to_numpy() == mode.reindex(votes["item_id"]).to_numpy(),
        mass=mass,
        is_none=votes["choice"] == NONE_CHOICE,
    )
    g = frame.groupby("annotator_id")
    out = pd.DataFrame(
        {
            "n_votes": g.size().astype("int64"),
            "agreement_with_aggregate": g["agrees"].mean().astype(float),
            "soft_agreement": g["mass"].mean().astype(float),
            "pct_unsure": g["unsure"].mean().astype(float),
            "pct_none": g["is_none"].mean().astype(float),
            "median_response_time": g["response_time"].median().astype(float),
        }
    ).reset_index()
    out["annotator_id"] = out["annotator_id"].astype(str)
    out["suspect"] = out["agreement_with_aggregate"] < agreement_below
    return out[columns]


def krippendorff_alpha(votes: pd.DataFrame) -> float:
    """Nominal Krippendorff's alpha over (annotator x item); NaN when it is undefined."""
    import krippendorff

    if votes.empty or votes["choice"].nunique() < 2 or votes["item_id"].nunique() < 1:
        return float("nan")
    annotators, a_idx = np.unique(votes["annotator_id"].astype(str), return_inverse=True)
    items, i_idx = np.unique(votes["item_id"].to_numpy(np.int64), return_inverse=True)
    matrix = np.full((len(annotators), len(items)), np.nan)
    matrix[a_idx, i_idx] = votes["choice"].map(_SLOT).to_numpy(float)
    try:
        return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))
    except (ValueError, ZeroDivisionError):
        return float("nan")


def agreement_summary(votes: pd.DataFrame, item_stats: pd.DataFrame) -> pd.DataFrame:
    """Study-level agreement, overall (scope ``all``) and per source."""
    rows = []
    scopes = [("all", item_stats)] + [(s, g) for s, g in item_stats.groupby("source", sort=True)]
    for scope, items in scopes:
        v = votes[votes["item_id"].isin(items["item_id"])] if not votes.empty else votes
        rows.append(
            {
                "scope": scope,
                "n_items": int(len(items)),
                "n_votes": int(len(v)),
                "n_annotators": int(v["annotator_id"].nunique()) if len(v) else 0,
                "votes_per_item": float(len(v) / len(items))
                if len(v) and len(items)
                else float("nan"),
                "krippendorff_alpha": krippendorff_alpha(v),
                "unanimous_share": float(items["unanimous"].astype("float").mean())
                if len(v)
                else float("nan"),
                "mean_human_entropy": float(items["human_entropy"].mean())
                if len(items)
                else float("nan"),
                "mean_pct_unsure": float(items["pct_unsure"].mean())
                if len(items)
                else float("nan"),
                "none_votes": int((v["choice"] == NONE_CHOICE).sum()) if len(v) else 0,
                "unsure_votes": int(v["unsure"].sum()) if len(v) else 0,
                "mode_shift_share": float(items["mode_shift"].mean())
                if len(items)
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)
