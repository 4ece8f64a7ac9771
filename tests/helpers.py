"""Running a pipeline slice in memory and keeping every output for inspection."""

from __future__ import annotations

from typing import Any

from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner


class KeptMemoryDataset(MemoryDataset):
    """A MemoryDataset that the runner cannot release, so tests can read intermediates."""

    def _release(self) -> None:
        pass


def run_in_memory(pipeline: Pipeline, inputs: dict[str, Any]) -> dict[str, Any]:
    """Run ``pipeline`` with ``inputs`` (datasets and ``params:`` entries) and return every dataset."""
    datasets = {name: KeptMemoryDataset(value) for name, value in inputs.items()}
    for name in pipeline.datasets():
        datasets.setdefault(name, KeptMemoryDataset())
    catalog = DataCatalog(datasets)
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in pipeline.datasets() if catalog[name]._data is not None}
