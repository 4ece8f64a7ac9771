"""The plain readers of annotation files (:mod:`soft_label_audit.crowd.sources` says which
source reads its file with which)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_votes_file(path: str | Path) -> pd.DataFrame:
    """A long vote table from CSV (every cell read as text) or parquet (types as stored).

    ``path`` may be an fsspec URL; it reaches pandas as given.
    """
    suffix = Path(str(path)).suffix.lower()
    if suffix in (".csv", ".txt"):
        try:
            return pd.read_csv(str(path), dtype=str, keep_default_na=True, skipinitialspace=True)
        except pd.errors.EmptyDataError:
            from soft_label_audit.crowd.validation import VOTE_COLUMNS, AnnotationValidationError

            raise AnnotationValidationError(
                f"{path} is empty: an annotation file needs a header row with the columns "
                f"{', '.join(VOTE_COLUMNS)} (+ optional response_time) and one row per vote"
            ) from None
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(str(path))
    raise ValueError(
        f"{path}: annotation files must be .csv or .parquet, not {suffix or 'no suffix'}"
    )


def read_released_file(path: str | Path) -> pd.DataFrame:
    return pd.read_parquet(str(path))
