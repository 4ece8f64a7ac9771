"""The small released-schema fixture: how tests/fixtures/released_annotations_small.parquet is made.

Regenerate with ``python -m tests.crowd.released_fixture`` from the project root.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from soft_label_audit.crowd.released import build_released_fixture

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "released_annotations_small.parquet"
MNIST_IDS = [0, 1, 2, 7, 42, 1234]
N_SYNTHETIC = 3  # with the 6 MNIST rows, every source has train, val and test rows


def make(mnist_arrays: dict) -> pd.DataFrame:
    return build_released_fixture(
        mnist_arrays["train_images"], mnist_arrays["train_labels"], MNIST_IDS, N_SYNTHETIC, seed=0
    )


if __name__ == "__main__":
    from soft_label_audit.data_sources import mnist

    arrays = mnist.load_idx_files(Path("data/01_raw/MNIST/raw"))
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    make(arrays).to_parquet(FIXTURE, index=False)
    print(f"wrote {FIXTURE}")
