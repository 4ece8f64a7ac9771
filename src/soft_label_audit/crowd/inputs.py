"""What the annotation input dataset hands to the pipeline, and the plain file readers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from soft_label_audit.columns import ANNOTATION_SOURCES


@dataclass(frozen=True)
class AnnotationInput:
    """The chosen annotation source; ``frame`` is the file's table (None for ``simulated``)."""

    source: str
    path: str | None = None
    frame: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if self.source not in ANNOTATION_SOURCES:
            raise ValueError(
                f"annotation.source must be one of {ANNOTATION_SOURCES}, not {self.source!r}"
            )


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
