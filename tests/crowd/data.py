"""Small annotation test data built from real MNIST (no pipeline outputs needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from soft_label_audit.data_sources.tables import images_to_column

PAIRS = [(4, 9), (3, 5), (3, 8), (1, 7), (2, 7)]


def small_digits(
    mnist_arrays: dict,
    n_mnist: int = 120,
    n_synthetic: int = 60,
    n_memory: int = 2000,
    seed: int = 0,
):
    """(digits, study_items): MNIST training items, MNIST test items (the crowd's memory) and
    pixel blends of two training digits of confusable classes (ids from 100000)."""
    rng = np.random.default_rng(seed)
    tr_x, tr_y = mnist_arrays["train_images"], mnist_arrays["train_labels"].astype(np.int64)
    te_x, te_y = mnist_arrays["test_images"], mnist_arrays["test_labels"].astype(np.int64)
    study_ids = np.sort(rng.choice(60_000, n_mnist, replace=False))
    mem_ids = np.arange(n_memory)
    blends, labels, soft = [], [], []
    for j in range(n_synthetic):
        a, b = PAIRS[j % len(PAIRS)]
        ia = rng.choice(np.flatnonzero(tr_y[:5000] == a))
        ib = rng.choice(np.flatnonzero(tr_y[:5000] == b))
        w = rng.uniform(0.4, 0.6)
        blends.append(np.rint((1 - w) * tr_x[ia] + w * tr_x[ib]).astype(np.uint8))
        labels.append(a if w < 0.5 else b)
        mixture = np.zeros(10)
        mixture[[a, b]] = [1 - w, w]
        soft.append(mixture.tolist())
    digits = pd.concat(
        [
            pd.DataFrame(
                {
                    "item_id": study_ids,
                    "source": "mnist",
                    "original_label": tr_y[study_ids],
                    "image": images_to_column(tr_x[study_ids]),
                }
            ),
            pd.DataFrame(
                {
                    "item_id": 60_000 + mem_ids,
                    "source": "mnist",
                    "original_label": te_y[mem_ids],
                    "image": images_to_column(te_x[mem_ids]),
                }
            ),
            pd.DataFrame(
                {
                    "item_id": 100_000 + np.arange(n_synthetic),
                    "source": "synthetic",
                    "original_label": np.asarray(labels, np.int64),
                    "image": images_to_column(np.stack(blends)),
                }
            ),
        ],
        ignore_index=True,
    )
    digits["machine_soft_label"] = None
    digits.loc[digits["source"] == "synthetic", "machine_soft_label"] = pd.Series(
        soft, index=digits.index[digits["source"] == "synthetic"], dtype=object
    )
    study = digits[(digits["item_id"] < 60_000) | (digits["item_id"] >= 100_000)][
        ["item_id", "source", "original_label"]
    ].copy()
    study["split"] = np.array(["train", "val", "test"])[np.arange(len(study)) % 3]
    return digits, study[["item_id", "source", "split", "original_label"]].reset_index(drop=True)


def crowd_params(seed: int = 3) -> dict:
    """The base simulated_crowd parameters with a smaller memory."""
    return {
        "seed": seed,
        "n_annotators": 20,
        "votes_per_item": {"min": 8, "max": 10},
        "contrast_sensitivity": 0.5,
        "perception": {
            "memory_size": 2000,
            "n_profiles": 3,
            "memory_share": 0.8,
            "n_components": [30, 50],
            "k_neighbours": [10, 30],
            "bandwidth_scale": 1.0,
            "typical_quantile": 0.99,
            "class_neighbours": 5,
        },
        "traits": {
            "shift_px": [0.0, 0.6],
            "jitter_px": [0.2, 0.8],
            "rotation_deg": [2.0, 8.0],
            "blur_px": [0.3, 1.0],
            "sharpness": [4.0, 8.0],
            "lapse": [0.0, 0.004],
            "none_threshold": [0.35, 0.5],
            "atypical_threshold": [1.1, 1.6],
            "unsure_threshold": [0.3, 0.6],
            "speed_s": [1.2, 2.5],
        },
        "careless": {
            "share": 0.1,
            "lapse": [0.1, 0.25],
            "sharpness": [1.0, 2.0],
            "speed_s": [0.4, 0.8],
        },
    }


def annotation_params(**overrides) -> dict:
    params = {
        "source": "simulated",
        "raw_path": "data/01_raw/annotations.csv",
        "released_path": "data/01_raw/released_annotations.parquet",
        "aggregation": "vote_share_unsure_to_none",
        "rules": ["vote_share", "vote_share_unsure_to_none", "dawid_skene"],
        "dawid_skene": {
            "n_iter": 100,
            "tol": 1e-5,
            "min_median_votes_per_annotator": 11,
            "min_median_votes_per_item": 3,
        },
        "require_votes_for_all_study_items": True,
        "soft_label_tolerance": 1e-3,
        "mode_support": {"min_vote_share": 0.5, "min_sure_votes": 3},
        "released": {
            "soft_label_column": "soft_label",
            "image_tolerance": 0,
            "non_mnist_id_offset": 200000,
            "source_map": {"mnist": "mnist", "synthetic": "synthetic"},
        },
    }
    params.update(overrides)
    return params
