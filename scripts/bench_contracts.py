"""What the table contracts cost: check time of a digits-sized table and of a small one.

    python scripts/bench_contracts.py            # a synthetic table the size of `digits`
    python scripts/bench_contracts.py PARQUET    # a `digits` table written by a run

Prints the median of several checks next to the time to read the same table from parquet,
since the hook checks a table once per run as it is saved or first loaded.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from soft_label_audit.contracts import check_table
from soft_label_audit.data_sources.tables import images_to_column


def digits_like(n_mnist: int = 70_000, n_synthetic: int = 5_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_mnist + n_synthetic
    weight = rng.uniform(0.3, 0.7, n_synthetic)
    a, b = rng.integers(0, 10, (2, n_synthetic))
    machine = np.zeros((n_synthetic, 10))
    machine[np.arange(n_synthetic), a] += 1 - weight
    machine[np.arange(n_synthetic), b] += weight
    return pd.DataFrame(
        {
            "item_id": np.r_[np.arange(n_mnist), 100_000 + np.arange(n_synthetic)].astype(np.int64),
            "source": ["mnist"] * n_mnist + ["synthetic"] * n_synthetic,
            "original_label": rng.integers(0, 10, n).astype(np.int64),
            "image": images_to_column(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
            "machine_soft_label": [None] * n_mnist + [list(m) for m in machine],
        }
    )


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if len(sys.argv) > 1:
            path = Path(sys.argv[1])
        else:
            path = Path(tmp) / "digits.parquet"
            digits_like().to_parquet(path)
        digits = pd.read_parquet(path)
        read = timed(lambda: pd.read_parquet(path))
    check = timed(lambda: check_table("digits", digits))
    print(
        f"digits: {len(digits)} rows, read {read * 1e3:.0f} ms, contract check {check * 1e3:.0f} ms"
    )
    small = digits.head(150)[["item_id", "source", "original_label"]].assign(split="train")
    check = timed(lambda: check_table("study_items", small), repeat=20)
    print(f"study_items: {len(small)} rows, contract check {check * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
