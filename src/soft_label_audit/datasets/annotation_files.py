"""Kedro dataset for the annotation input: the chosen source and, for files, their table.

``source`` and the paths come from the catalog, which reads the command line's
``--params "annotation.source=...,annotation.raw_path=..."`` through the
``runtime_params`` resolver. Every path argument is named after the ``annotation.*`` setting
that holds it, and the registry (:data:`soft_label_audit.crowd.sources.SOURCES`) says which
one the chosen source reads and how; only that file is read, a source without a
``path_setting`` (the simulated crowd) reads nothing. Paths may be fsspec URLs (``s3://...``,
``gcs://...``); a source that ``reads_hub`` (the released soft labels) may also name a
dataset on the Hugging Face hub (``hf://datasets/OWNER/NAME``, see :mod:`.hub`).

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

from soft_label_audit.crowd import sources
from soft_label_audit.crowd.sources import AnnotationInput
from soft_label_audit.datasets import hub


def _is_file(path: str | None) -> bool:
    if not path:
        return False
    fs, local = fsspec.core.url_to_fs(str(path))
    return fs.isfile(local)


class AnnotationInputDataset(AbstractDataset[None, AnnotationInput]):
    """Loads an :class:`AnnotationInput`; read-only. ``paths``: the file settings of the
    registered sources (``raw_path=...``, ``released_path=...``), any of them unset."""

    def __init__(
        self,
        source: str,
        metadata: dict[str, Any] | None = None,
        **paths: str | None,
    ):
        unknown = sorted(set(paths) - set(sources.path_settings()))
        if unknown:
            raise DatasetError(
                f"AnnotationInputDataset got {unknown}; its paths are the file settings of the "
                f"annotation sources: {list(sources.path_settings())}"
            )
        self._source = str(source)
        self._paths = paths
        self.metadata = metadata

    def _entry(self) -> sources.AnnotationSource:
        return sources.get(self._source)

    def _path(self) -> str | None:
        key = self._entry().path_setting
        return None if key is None else self._paths.get(key)

    def load(self) -> AnnotationInput:
        entry = self._entry()
        if entry.path_setting is None:
            return AnnotationInput(self._source)
        path = self._path()
        if entry.reads_hub and hub.is_hub_path(path):
            return AnnotationInput(self._source, str(path), hub.read_hub_parquet(path))
        if not _is_file(path):
            raise DatasetError(
                f"annotation.source={self._source} needs a file: {path!r} does not exist; "
                f'pass it with --params "annotation.source={self._source},'
                f'annotation.{entry.path_setting}=PATH"'
            )
        try:
            frame = entry.read_file(path)
        except Exception as exc:  # a corrupt or unreadable file: say which one
            raise DatasetError(f"cannot read annotation file {path}: {exc}") from exc
        return AnnotationInput(self._source, str(path), frame)

    def save(self, data: None) -> None:
        raise DatasetError("AnnotationInputDataset is read-only")

    def _exists(self) -> bool:
        entry, path = self._entry(), self._path()
        return (
            entry.path_setting is None
            or (entry.reads_hub and hub.is_hub_path(path))
            or _is_file(path)
        )

    def _describe(self) -> dict[str, Any]:
        return {"source": self._source, **self._paths}
