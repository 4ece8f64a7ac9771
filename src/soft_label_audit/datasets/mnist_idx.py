"""Kedro dataset for the four MNIST idx files (made when missing, always MD5-verified)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from soft_label_audit.data_sources import mnist


class MnistIdxDataset(AbstractDataset[None, dict[str, np.ndarray]]):
    """Loads ``{train,test}_{images,labels}`` from ``<path>`` (torchvision's ``MNIST/raw`` layout).

    Missing files are made first (``method``: ``auto``, ``package`` or ``download``); a file
    that fails its published MD5 stops the load and is never overwritten. Read-only.
    """

    def __init__(self, path: str, method: str = "auto", metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self._method = method
        self.metadata = metadata

    def load(self) -> dict[str, np.ndarray]:
        mnist.ensure_idx_files(self._path, self._method)
        return mnist.load_idx_files(self._path)

    def save(self, data: None) -> None:
        raise DatasetError(
            "MnistIdxDataset is read-only: the idx files are made and verified on load"
        )

    def _exists(self) -> bool:
        return all((self._path / name).exists() for name in mnist.IDX_MD5)

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "method": self._method}
