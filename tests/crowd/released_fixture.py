"""The small released-schema fixture: how tests/fixtures/released_annotations_small.parquet is made.

Regenerate with ``python -m tests.crowd.released_fixture`` from the project root.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from soft_label_audit.columns import H_COLS, MNIST_TEST_IDS, SPLITS
from soft_label_audit.crowd.released import (
    RELEASED_COLUMNS,
    SOFT_LABEL_COLUMNS,
    parse_vector,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "released_annotations_small.parquet"
MNIST_IDS = [0, 1, 2, 7, 42, 1234]
N_SYNTHETIC = 3  # with the 6 MNIST rows, every source has train, val and test rows


def make(mnist_arrays: dict) -> pd.DataFrame:
    return build(
        mnist_arrays["train_images"], mnist_arrays["train_labels"], MNIST_IDS, N_SYNTHETIC, seed=0
    )


def build(
    mnist_images: np.ndarray,
    mnist_labels: np.ndarray,
    mnist_ids: list[int],
    n_synthetic: int,
    seed: int = 0,
) -> pd.DataFrame:
    """A small table in the released schema, made by the project itself.

    MNIST rows carry the real images of ``mnist_ids`` (70k ordering; ``mnist_images`` indexed
    by that id); synthetic rows blend two of those images pixel-wise. Soft labels are drawn
    from a Dirichlet around the label and stored as strings, like the released file.
    """
    rng = np.random.default_rng(seed)
    rows = []
    splits = list(SPLITS)

    def soft_strings(label: int) -> dict[str, str]:
        base = np.full(11, 0.02)
        base[label] = 1.0
        variants = {}
        for col in SOFT_LABEL_COLUMNS:
            h = rng.dirichlet(base * 8)
            variants[col] = "[" + ", ".join(f"{x:.6f}" for x in h / h.sum()) + "]"
        return variants

    def add(image: np.ndarray, index: int, label: int, source: str, i: int) -> None:
        soft = soft_strings(label)
        h = parse_vector(soft["soft_label"], len(H_COLS))
        onehot = np.zeros(10)
        onehot[label] = 1.0
        rows.append(
            {
                "images": image.astype(np.uint8).tobytes(),
                "indices": int(index),
                "original_labels": "[" + ", ".join(f"{x:.1f}" for x in onehot) + "]",
                **soft,
                "soft_label_argmax": int(h.argmax()),
                "pct_ann_unsure": float(np.round(rng.uniform(0, 0.3), 4)),
                "human_uncert_mean": float(np.round(rng.uniform(0, 1), 4)),
                "split": splits[i % 3],
                "source": source,
            }
        )

    for i, item in enumerate(mnist_ids):
        add(mnist_images[item], item, int(mnist_labels[item]), "mnist", i)
    for j in range(n_synthetic):
        a, b = rng.choice(len(mnist_ids), size=2, replace=False)
        w = rng.uniform(0.3, 0.7)
        blend = (1 - w) * mnist_images[mnist_ids[a]].astype(float) + w * mnist_images[
            mnist_ids[b]
        ].astype(float)
        add(
            np.rint(blend).astype(np.uint8),
            MNIST_TEST_IDS.start + j,
            int(mnist_labels[mnist_ids[a]]),
            "synthetic",
            len(mnist_ids) + j,
        )
    return pd.DataFrame(rows, columns=list(RELEASED_COLUMNS))


if __name__ == "__main__":
    from soft_label_audit.data_sources import mnist

    arrays = mnist.load_idx_files(Path("data/01_raw/MNIST/raw"))
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    make(arrays).to_parquet(FIXTURE, index=False)
    print(f"wrote {FIXTURE}")
