"""The released annotations fetched by name from the Hugging Face hub, through a local cache.

``annotation.released_path`` may name a dataset repository instead of a file::

    hf://datasets/majapavlo/image-level-soft-label-digits
    hf://datasets/OWNER/NAME@REVISION              (a branch, tag or commit)
    hf://datasets/OWNER/NAME/data/train.parquet    (one file of the repository)

``huggingface_hub.snapshot_download`` brings the repository's parquet files into its cache
(``HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``) and later runs read them from there,
also offline. Without network and without a cached copy, :class:`HubUnreachableError` says so
and how to pass a local file instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from kedro.io import DatasetError

HUB_PREFIX = "hf://datasets/"
_HUB_PATH = re.compile(
    r"^hf://datasets/(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<revision>[^/]+))?(?:/(?P<file>.+))?$"
)


class HubUnreachableError(DatasetError):
    """The hub cannot be reached and the dataset is not in the local cache."""


@dataclass(frozen=True)
class HubPath:
    repo_id: str
    revision: str | None = None
    filename: str | None = None

    @property
    def url(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"{HUB_PREFIX}{self.repo_id}{rev}" + (f"/{self.filename}" if self.filename else "")


def is_hub_path(path: str | None) -> bool:
    return bool(path) and str(path).startswith(HUB_PREFIX)


def parse_hub_path(path: str) -> HubPath:
    match = _HUB_PATH.match(str(path).rstrip("/"))
    if not match:
        raise DatasetError(
            f"{path!r} is not a Hugging Face dataset path; expected "
            f"{HUB_PREFIX}OWNER/NAME[@REVISION][/FILE.parquet]"
        )
    return HubPath(match["repo"], match["revision"], match["file"])


def download_parquet_files(path: str, cache_dir: str | None = None) -> list[Path]:
    """The repository's parquet files (or the one named), as local paths in the hub cache."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    hub = parse_hub_path(path)
    try:
        folder = snapshot_download(
            hub.repo_id,
            repo_type="dataset",
            revision=hub.revision,
            allow_patterns=[hub.filename] if hub.filename else ["*.parquet", "**/*.parquet"],
            cache_dir=cache_dir,
        )
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        from huggingface_hub import constants

        cache_dir = cache_dir or constants.HF_HUB_CACHE
        raise HubUnreachableError(
            f"cannot reach the Hugging Face hub for {hub.url}, and it is not in the local cache "
            f"({cache_dir}). Download the parquet where the hub is reachable "
            'and pass the file: --params "annotation.source=released,'
            'annotation.released_path=PATH/TO/FILE.parquet"'
        ) from exc
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise DatasetError(f"{hub.url}: no such dataset repository or revision on the hub") from exc
    files = sorted(p for p in Path(folder).rglob("*.parquet") if p.is_file())
    if hub.filename:
        files = [p for p in files if p.relative_to(folder).as_posix() == hub.filename]
    if not files:
        raise DatasetError(
            f"{hub.url}: the repository holds no parquet file {hub.filename or ''}".rstrip()
        )
    return files


def read_hub_parquet(path: str, cache_dir: str | None = None) -> pd.DataFrame:
    """All parquet files of the repository (its splits), one table in file-name order."""
    frames = [pd.read_parquet(p) for p in download_parquet_files(path, cache_dir)]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
