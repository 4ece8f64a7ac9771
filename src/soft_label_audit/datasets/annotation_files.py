"""Kedro dataset for the annotation input: the chosen source and, for files, their table.

``source`` and the paths come from the catalog, which reads the command line's
``--params "annotation.source=...,annotation.raw_path=..."`` through the
``runtime_params`` resolver. Only the chosen file is read; ``simulated`` reads nothing.
Paths may be fsspec URLs (``s3://...``, ``gcs://...``); ``released_path`` may also name the
released dataset on the Hugging Face hub (``hf://datasets/OWNER/NAME``, see :mod:`.hub`).

Example (conf/base/catalog_annotation.yml)::

    annotation_input:
      type: soft_label_audit.datasets.annotation_files.AnnotationInputDataset
      source: released
      released_path: hf://datasets/majapavlo/image-level-soft-label-digits
"""

from __future__ import annotations

from typing import Any

import fsspec
from kedro.io import AbstractDataset, DatasetError

from soft_label_audit.crowd.inputs import AnnotationInput, read_released_file, read_votes_file
from soft_label_audit.datasets import hub


def _is_file(path: str | None) -> bool:
    if not path:
        return False
    fs, local = fsspec.core.url_to_fs(str(path))
    return fs.isfile(local)


class AnnotationInputDataset(AbstractDataset[None, AnnotationInput]):
    """Loads an :class:`AnnotationInput`; read-only."""

    def __init__(
        self,
        source: str,
        raw_path: str | None = None,
        released_path: str | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._source = str(source)
        self._raw_path = raw_path
        self._released_path = released_path
        self.metadata = metadata

    def _path(self) -> str | None:
        return {"raw_file": self._raw_path, "released": self._released_path}.get(self._source)

    def load(self) -> AnnotationInput:
        if self._source == "simulated":
            return AnnotationInput("simulated")
        path = self._path()
        key = "raw_path" if self._source == "raw_file" else "released_path"
        if self._source == "released" and hub.is_hub_path(path):
            return AnnotationInput(self._source, str(path), hub.read_hub_parquet(path))
        if not _is_file(path):
            raise DatasetError(
                f"annotation.source={self._source} needs a file: {path!r} does not exist; "
                f'pass it with --params "annotation.source={self._source},annotation.{key}=PATH"'
            )
        reader = read_votes_file if self._source == "raw_file" else read_released_file
        try:
            frame = reader(path)
        except Exception as exc:  # a corrupt or unreadable file: say which one
            raise DatasetError(f"cannot read annotation file {path}: {exc}") from exc
        return AnnotationInput(self._source, str(path), frame)

    def save(self, data: None) -> None:
        raise DatasetError("AnnotationInputDataset is read-only")

    def _exists(self) -> bool:
        path = self._path()
        return self._source == "simulated" or hub.is_hub_path(path) or _is_file(path)

    def _describe(self) -> dict[str, Any]:
        return {
            "source": self._source,
            "raw_path": self._raw_path,
            "released_path": self._released_path,
        }
