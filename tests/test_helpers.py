"""The test helpers hold values the way the project's catalog does."""

from __future__ import annotations

import matplotlib.pyplot as plt  # MPLBACKEND=Agg (tests/conftest.py)
import pandas as pd

from tests.helpers import KeptMemoryDataset


def test_kept_memory_dataset_copies_tables_and_holds_figures_by_reference():
    frame = pd.DataFrame({"a": [1, 2]})
    tables = KeptMemoryDataset(frame)
    loaded = tables.load()
    loaded.loc[0, "a"] = 99  # a node changing its input leaves the stored table alone
    assert tables.load()["a"].tolist() == [1, 2] and frame["a"].tolist() == [1, 2]

    figure = plt.figure()
    try:
        figures = KeptMemoryDataset()
        figures.save({"seed0/run_overview": figure})  # as "{source}.{condition}.figures"
        assert figures.load()["seed0/run_overview"] is figure
        assert KeptMemoryDataset(figure).load() is figure
        assert KeptMemoryDataset({}).load() == {}
    finally:
        plt.close(figure)
