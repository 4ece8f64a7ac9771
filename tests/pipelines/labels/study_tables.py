"""Small study tables in the contracts of docs/architecture.md, made from real MNIST images."""

from __future__ import annotations

import numpy as np
import pandas as pd

from soft_label_audit import targets as tg
from soft_label_audit.columns import H_COLS
from soft_label_audit.data_sources.tables import images_to_column
from soft_label_audit.human_labels import human_entropy

N_MNIST, N_SYNTHETIC, N_POOL = 60, 30, 1500


def small_study(mnist_arrays: dict, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    images, labels = mnist_arrays["train_images"], mnist_arrays["train_labels"].astype(np.int64)
    # synthetic items: pixel blends of two MNIST images, the generator label is the mix
    a, b = rng.choice(np.arange(N_MNIST, N_POOL), (2, N_SYNTHETIC), replace=False)
    w = rng.uniform(0.2, 0.8, N_SYNTHETIC)
    blends = (images[a] * (1 - w[:, None, None]) + images[b] * w[:, None, None]).astype(np.uint8)
    machine = np.zeros((N_SYNTHETIC, 10))
    machine[np.arange(N_SYNTHETIC), labels[a]] += 1 - w
    machine[np.arange(N_SYNTHETIC), labels[b]] += w
    digits = pd.DataFrame(
        {
            "item_id": np.r_[np.arange(N_POOL), 100_000 + np.arange(N_SYNTHETIC)].astype(np.int64),
            "source": ["mnist"] * N_POOL + ["synthetic"] * N_SYNTHETIC,
            "original_label": np.r_[labels[:N_POOL], machine.argmax(1)],
            "image": images_to_column(np.concatenate([images[:N_POOL], blends])),
            "machine_soft_label": [None] * N_POOL + [list(m) for m in machine],
        }
    )
    study_ids = np.r_[np.arange(N_MNIST), 100_000 + np.arange(N_SYNTHETIC)]
    study = digits[digits["item_id"].isin(study_ids)].reset_index(drop=True)
    split = np.empty(len(study), object)
    for source in ("mnist", "synthetic"):
        rows = np.flatnonzero(study["source"] == source)
        n = len(rows)
        split[rows] = np.r_[
            ["train"] * (6 * n // 10), ["val"] * (2 * n // 10), ["test"] * (n - 8 * n // 10)
        ]
    study["split"] = split
    study["annotation_source"] = "simulated"
    # human labels: 15 votes, mostly for the original label, some "none", a few mode shifts
    n = len(study)
    probs = np.full((n, 11), 0.02)
    probs[np.arange(n), study["original_label"]] += rng.uniform(0.3, 0.9, n)
    shift = rng.random(n) < 0.1
    probs[np.flatnonzero(shift), rng.integers(0, 10, shift.sum())] += 1.0
    votes = np.stack([rng.multinomial(15, p / p.sum()) for p in probs]) / 15.0
    human = pd.DataFrame(votes, columns=list(H_COLS))
    human.insert(0, "item_id", study["item_id"].to_numpy())
    human["aggregation"] = "majority_share"
    human["annotation_source"] = "simulated"
    h = tg.human_digits(votes)
    stats = pd.DataFrame(
        {
            "item_id": study["item_id"],
            "source": study["source"],
            "split": study["split"],
            "original_label": study["original_label"],
            "n_votes": pd.array([15] * n, dtype="Int64"),
            "human_entropy": human_entropy(votes),
            "pct_unsure": 0.0,
            "human_mode": tg.human_argmax(h, study["original_label"].to_numpy()),
        }
    )
    stats["mode_shift"] = stats["human_mode"] != stats["original_label"]
    stats["annotation_source"] = "simulated"
    no_votes = pd.DataFrame(
        {
            "item_id": pd.Series(dtype="int64"),
            "annotator_id": pd.Series(dtype="str"),
            "choice": pd.Series(dtype="str"),
            "unsure": pd.Series(dtype="bool"),
        }
    )
    return {
        "digits": digits,
        "study_digits": study,
        "pool_digits": _scoring_pool(digits, images, labels),
        "human_soft_labels": human,
        "item_stats": stats,
        "human_soft_labels_by_rule": human,
        "validated_annotations": no_votes,
    }


def _scoring_pool(digits: pd.DataFrame, images: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """A held-out pool in the pool_digits contract: MNIST images N_MNIST..N_MNIST+199 and ten
    blends of parents from N_POOL - 40 .. N_POOL - 1, neither of which a model may learn from."""
    mnist = digits[digits["item_id"].between(N_MNIST, N_MNIST + 199)].assign(
        parent_a=-1, parent_b=-1
    )
    a, b = np.arange(N_POOL - 40, N_POOL - 30), np.arange(N_POOL - 30, N_POOL - 20)
    soft = np.zeros((10, 10))
    soft[np.arange(10), labels[a]] += 0.5
    soft[np.arange(10), labels[b]] += 0.5
    blends = pd.DataFrame(
        {
            "item_id": 150_000 + np.arange(10, dtype=np.int64),
            "source": "synthetic",
            "original_label": labels[a],
            "image": images_to_column(images[a] // 2 + images[b] // 2),
            "machine_soft_label": [list(row) for row in soft],
            "parent_a": a.astype(np.int64),
            "parent_b": b.astype(np.int64),
        }
    )
    return pd.concat([mnist, blends], ignore_index=True)


def targets_for(
    tables: dict,
    labels_params: dict,
    source: str,
    condition: str,
    teacher_logits: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One condition's targets from the small study, as the labels pipeline builds them."""
    from soft_label_audit.pipelines.labels.nodes import build_condition_targets

    return build_condition_targets(
        tables["study_digits"],
        labels_params["conditions"][condition],
        labels_params["none_slot"],
        tables["human_soft_labels"],
        tables["item_stats"],
        teacher_logits,
        source=source,
        condition=condition,
    )


def pool_for(tables: dict) -> pd.DataFrame:
    """The small study's ``pool_digits`` without its synthetic items: a source without pool
    items is allowed (its pool tables are empty)."""
    pool = tables["pool_digits"]
    return pool[pool["source"] == "mnist"].reset_index(drop=True)
