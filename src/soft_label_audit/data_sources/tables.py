"""Packing images and label vectors into table columns (the `digits` contract).

Images are stored as one ``bytes`` cell of 784 row-major uint8 pixels per item, which
parquet keeps compactly; machine soft labels as a list of 10 floats (``None`` for MNIST).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from soft_label_audit.columns import IMAGE_BYTES, IMAGE_SHAPE, MNIST_TEST_IDS, MNIST_TRAIN_IDS


def images_to_column(images: np.ndarray) -> list[bytes]:
    images = np.ascontiguousarray(images, dtype=np.uint8).reshape(-1, IMAGE_BYTES)
    return [row.tobytes() for row in images]


def images_from_column(column: pd.Series) -> np.ndarray:
    """(n, 28, 28) uint8 array from a column of 784-byte cells."""
    values = list(column)
    if not values:
        return np.zeros((0, *IMAGE_SHAPE), np.uint8)
    bad = [
        i
        for i, v in enumerate(values)
        if not isinstance(v, bytes | bytearray) or len(v) != IMAGE_BYTES
    ]
    if bad:
        raise ValueError(
            f"image cells must be {IMAGE_BYTES} bytes; rows {bad[:5]} (of {len(bad)}) are not"
        )
    return np.frombuffer(b"".join(values), dtype=np.uint8).reshape(-1, *IMAGE_SHAPE)


def soft_labels_from_column(column: pd.Series, n_classes: int = 10) -> np.ndarray:
    """(n, n_classes) float array; rows with no label (MNIST items) are NaN."""
    out = np.full((len(column), n_classes), np.nan)
    for i, v in enumerate(column):
        if v is not None and not (isinstance(v, float) and np.isnan(v)):
            out[i] = np.asarray(v, dtype=float)
    return out


#: columns the `digits` table carries besides the contract's (item_id, source, original_label,
#: image, machine_soft_label): the generator's pair and weight, and the parents' item ids
#: (-1 and NaN for MNIST items)
GENERATOR_COLUMNS = ("class_a", "class_b", "mix_weight", "parent_a", "parent_b")


def mnist_table(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
) -> pd.DataFrame:
    """MNIST items in the 70k ordering: training image ``i`` has id ``MNIST_TRAIN_IDS[i]``,
    test image ``i`` id ``MNIST_TEST_IDS[i]`` (a slice of MNIST keeps the ids it has there)."""
    n_train, n_test = len(train_images), len(test_images)
    if n_train > len(MNIST_TRAIN_IDS) or n_test > len(MNIST_TEST_IDS):
        raise ValueError(
            f"MNIST has {len(MNIST_TRAIN_IDS)} training and {len(MNIST_TEST_IDS)} test images, "
            f"got {n_train} and {n_test}"
        )
    ids = np.r_[np.asarray(MNIST_TRAIN_IDS[:n_train]), np.asarray(MNIST_TEST_IDS[:n_test])]
    n = n_train + n_test
    return pd.DataFrame(
        {
            "item_id": ids.astype(np.int64),
            "source": "mnist",
            "original_label": np.r_[train_labels, test_labels].astype(np.int64),
            "image": images_to_column(np.concatenate([train_images, test_images])),
            "machine_soft_label": [None] * n,
            "class_a": np.full(n, -1, np.int64),
            "class_b": np.full(n, -1, np.int64),
            "mix_weight": np.full(n, np.nan),
            "parent_a": np.full(n, -1, np.int64),
            "parent_b": np.full(n, -1, np.int64),
        }
    )


def synthetic_table(made: dict[str, np.ndarray], first_item_id: int) -> pd.DataFrame:
    """Generated items (:func:`.synthetic.generate_ambiguous`) as `digits` rows with ids from
    ``first_item_id``; ``parent_a``/``parent_b`` are the item ids of the two MNIST training
    images each item was blended from."""
    n = len(made["images"])
    return pd.DataFrame(
        {
            "item_id": np.arange(n, dtype=np.int64) + int(first_item_id),
            "source": "synthetic",
            "original_label": made["original_label"].astype(np.int64),
            "image": images_to_column(made["images"]),
            "machine_soft_label": [row.tolist() for row in made["machine_soft_label"]],
            "class_a": made["class_a"].astype(np.int64),
            "class_b": made["class_b"].astype(np.int64),
            "mix_weight": made["mix_weight"],
            "parent_a": np.asarray(MNIST_TRAIN_IDS)[made["source_a"]].astype(np.int64),
            "parent_b": np.asarray(MNIST_TRAIN_IDS)[made["source_b"]].astype(np.int64),
        }
    )


def combine(mnist: pd.DataFrame, synthetic: pd.DataFrame) -> pd.DataFrame:
    """The `digits` table: MNIST then synthetic items; item ids must not collide."""
    overlap = np.intersect1d(mnist["item_id"], synthetic["item_id"])
    if len(overlap):
        raise ValueError(
            f"synthetic item ids collide with MNIST ids {overlap[:5].tolist()} "
            f"({len(overlap)} in all): raise digits.synthetic.first_item_id"
        )
    return pd.concat([mnist, synthetic], ignore_index=True)
