"""Which items the annotation tool shows: the study items plus a few attention checks.

Plain pandas/numpy, no database and no web: the ``init`` command feeds the result to
:func:`soft_label_audit.annotation_tool.store.insert_items`.

Attention checks are "known easy" MNIST training images that are *not* study items, so their
votes never enter ``raw_annotations`` (whose item ids must be study items). Easy is made
concrete as typicality: among a pool of candidate images, the one whose pixels have the
highest cosine similarity to the mean image of its own class,

    sim(x, c) = <x, mu_c> / (|x| |mu_c|),   mu_c = mean of the pool's images labelled c,

one per class, for distinct classes drawn with a seeded generator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from soft_label_audit.columns import N_CLASSES
from soft_label_audit.data_sources.tables import images_from_column, images_to_column

#: MNIST training images are item ids 0..59999 (architecture.md)
N_MNIST_TRAIN = 60_000

ITEM_COLUMNS = (
    "item_id",
    "source",
    "split",
    "original_label",
    "image",
    "is_attention_check",
    "expected_choice",
)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; it has {list(frame.columns)}")


def select_attention_checks(
    digits: pd.DataFrame,
    exclude_ids: set[int],
    n_checks: int,
    seed: int = 0,
    pool_size: int = 5000,
) -> pd.DataFrame:
    """``n_checks`` typical MNIST training images outside ``exclude_ids`` (see module doc).

    Returns rows of ``digits`` (``item_id``, ``source``, ``original_label``, ``image``), one
    per class for ``n_checks`` distinct classes (classes repeat only when ``n_checks`` > 10).
    """
    if n_checks <= 0:
        return digits.iloc[0:0][["item_id", "source", "original_label", "image"]]
    _require(digits, ("item_id", "source", "original_label", "image"), "digits")
    ids = digits["item_id"].astype(np.int64)
    candidates = (
        digits[(digits["source"] == "mnist") & (ids < N_MNIST_TRAIN) & ~ids.isin(exclude_ids)]
        .sort_values("item_id")
        .head(pool_size)
    )
    if candidates.empty:
        raise ValueError("no MNIST training image outside the study is left for attention checks")
    pixels = images_from_column(candidates["image"]).reshape(len(candidates), -1).astype(float)
    labels = candidates["original_label"].to_numpy(dtype=np.int64)
    unit = pixels / np.maximum(np.linalg.norm(pixels, axis=1, keepdims=True), 1e-12)

    rng = np.random.default_rng(seed)
    present = np.unique(labels)
    order = rng.permutation(present)
    chosen: list[int] = []
    taken = np.zeros(len(candidates), dtype=bool)
    while len(chosen) < n_checks and not taken.all():
        progressed = False
        for cls in order:
            if len(chosen) == n_checks:
                break
            mask = (labels == cls) & ~taken
            if not mask.any():
                continue
            mean = pixels[labels == cls].mean(axis=0)
            sim = unit @ (mean / max(np.linalg.norm(mean), 1e-12))
            sim[~mask] = -np.inf
            best = int(np.argmax(sim))
            taken[best] = True
            chosen.append(best)
            progressed = True
        if not progressed:
            break
    return candidates.iloc[chosen][["item_id", "source", "original_label", "image"]]


def build_annotation_items(
    study_items: pd.DataFrame,
    digits: pd.DataFrame,
    n_attention_checks: int = 4,
    seed: int = 0,
) -> pd.DataFrame:
    """The tool's item table: every study item with its image, plus the attention checks.

    Columns :data:`ITEM_COLUMNS`; ``expected_choice`` is the digit as a string for attention
    checks and None for study items. A study item without an image in ``digits`` is an error.
    """
    _require(study_items, ("item_id", "source"), "study_items")
    _require(digits, ("item_id", "image", "original_label"), "digits")
    study = study_items.copy()
    study["item_id"] = study["item_id"].astype(np.int64)
    if study["item_id"].duplicated().any():
        dup = study.loc[study["item_id"].duplicated(), "item_id"].tolist()
        raise ValueError(f"study_items repeats item ids {dup[:10]}")
    digit_cols = ["item_id", "image"] + (
        [] if "original_label" in study.columns else ["original_label"]
    )
    images = digits[digit_cols].copy()
    images["item_id"] = images["item_id"].astype(np.int64)
    merged = study.merge(images, on="item_id", how="left", validate="one_to_one")
    lacking = merged.loc[merged["image"].isna(), "item_id"].tolist()
    if lacking:
        raise ValueError(
            f"{len(lacking)} study item(s) have no image in digits, e.g. {lacking[:10]}"
        )
    if "split" not in merged.columns:
        merged["split"] = None
    # round-trip through the image decoder: validates every cell is 784 bytes
    merged["image"] = images_to_column(images_from_column(merged["image"]))
    merged["is_attention_check"] = False
    merged["expected_choice"] = None

    checks = select_attention_checks(
        digits, set(study["item_id"].tolist()), n_attention_checks, seed=seed
    ).copy()
    checks["item_id"] = checks["item_id"].astype(np.int64)
    checks["split"] = None
    checks["is_attention_check"] = True
    checks["expected_choice"] = checks["original_label"].astype(int).astype(str)
    checks["image"] = images_to_column(images_from_column(checks["image"]))

    out = pd.concat([merged[list(ITEM_COLUMNS)], checks[list(ITEM_COLUMNS)]], ignore_index=True)
    labels = out["original_label"]
    bad = out.loc[labels.notna() & ~labels.isin(range(N_CLASSES)), "item_id"].tolist()
    if bad:
        raise ValueError(f"original_label outside 0..9 for items {bad[:10]}")
    return out
