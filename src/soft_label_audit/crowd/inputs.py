"""The plain readers of annotation files (:mod:`soft_label_audit.crowd.sources` says which
source reads its file with which)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

#: the last local vote file read, by (path, modification time, size): the start-up check of
#: ``digits.study.items_from: votes`` and the catalog's annotation input then read it once
_LAST_READ: dict[tuple[str, int, int], pd.DataFrame] = {}


def read_votes_file(path: str | Path) -> pd.DataFrame:
    """A long vote table from CSV (every cell read as text) or parquet (types as stored).

    ``path`` may be an fsspec URL; it reaches pandas as given. A local file unchanged since
    its last read is not read again (a copy of the table is returned).
    """
    try:
        stat = os.stat(str(path))
        key = (os.path.abspath(str(path)), stat.st_mtime_ns, stat.st_size)
    except (OSError, ValueError):
        return _read_votes_file(path)
    if key not in _LAST_READ:
        frame = _read_votes_file(path)
        _LAST_READ.clear()
        _LAST_READ[key] = frame
    return _LAST_READ[key].copy()


def _read_votes_file(path: str | Path) -> pd.DataFrame:
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
