"""Choosing the study subset for re-annotation and splitting it into train/val/test."""

from __future__ import annotations

import numpy as np
import pandas as pd

from soft_label_audit.columns import SPLITS


def stratified_sample(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` items with class counts as equal as the pool allows.

    Each class gets ``n // k`` items, the remainder going to classes drawn at random; a
    class short of items gives its shortfall to the others.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if n > len(labels):
        raise ValueError(f"asked for {n} items from a pool of {len(labels)}")
    pools = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    quota = {c: n // len(classes) for c in classes}
    for c in rng.choice(classes, size=n % len(classes), replace=False):
        quota[c] += 1
    # move the quota of classes that are too small to classes with room, round robin
    while True:
        excess = sum(max(0, quota[c] - len(pools[c])) for c in classes)
        if excess == 0:
            break
        for c in classes:
            quota[c] = min(quota[c], len(pools[c]))
        roomy = [c for c in classes if quota[c] < len(pools[c])]
        for i in range(excess):
            quota[roomy[i % len(roomy)]] += 1
    picked = np.concatenate([pools[c][: quota[c]] for c in classes])
    return np.sort(picked)


def split_items(labels: np.ndarray, fractions: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """Assign each item a split name, stratified by label; the counts follow ``fractions``."""
    total = sum(fractions[s] for s in SPLITS)
    if set(fractions) != set(SPLITS) or not np.isclose(total, 1.0) or min(fractions.values()) < 0:
        raise ValueError(f"split fractions must give train, val and test, summing to 1: {fractions}")
    out = np.empty(len(labels), dtype=object)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(fractions["val"] * len(idx)))
        n_test = int(round(fractions["test"] * len(idx)))
        out[idx[:n_test]] = "test"
        out[idx[n_test : n_test + n_val]] = "val"
        out[idx[n_test + n_val :]] = "train"
    return out


def select_study_items(
    digits: pd.DataFrame,
    n_per_source: dict[str, int],
    pool_ids: dict[str, tuple[int, int] | None],
    split_fractions: dict[str, float],
    seed: int,
) -> pd.DataFrame:
    """The study subset: per source, ``n`` items stratified by original label, then split.

    ``pool_ids[source]`` optionally restricts the candidates to ``lo <= item_id < hi``.
    Returns item_id, source, split, original_label, sorted by item_id.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for source, n in n_per_source.items():
        pool = digits[digits["source"] == source]
        bounds = pool_ids.get(source)
        if bounds is not None:
            lo, hi = bounds
            pool = pool[(pool["item_id"] >= lo) & (pool["item_id"] < hi)]
        if int(n) == 0:
            continue
        picked = pool.iloc[stratified_sample(pool["original_label"].to_numpy(), int(n), rng)]
        parts.append(
            pd.DataFrame(
                {
                    "item_id": picked["item_id"].to_numpy(np.int64),
                    "source": source,
                    "split": split_items(picked["original_label"].to_numpy(), split_fractions, rng),
                    "original_label": picked["original_label"].to_numpy(np.int64),
                }
            )
        )
    if not parts:
        raise ValueError("the study selects no items: set digits.study.n_per_source")
    out = pd.concat(parts, ignore_index=True).sort_values("item_id", ignore_index=True)
    out["split"] = out["split"].astype(str)
    return out
