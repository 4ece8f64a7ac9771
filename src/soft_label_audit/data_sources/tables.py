"""Packing images and label vectors into table columns (the `digits` contract).

Images are stored as one ``bytes`` cell of 784 row-major uint8 pixels per item, which
parquet keeps compactly; machine soft labels as a list of 10 floats (``None`` for MNIST).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

IMAGE_SHAPE = (28, 28)
IMAGE_BYTES = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]


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
