"""The wiring helpers of the study grid (soft_label_audit.grid)."""

from __future__ import annotations

import inspect

import pytest

from soft_label_audit.grid import bind_cell, gather, pick
from soft_label_audit.pipelines.reporting.nodes import collect


def test_gather_keys_values_in_order_and_refuses_a_missing_one():
    assert gather(("a", "b"))(1, 2) == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="1 values for the keys"):
        gather(("a", "b"))(1)


def test_pick_applies_the_function_to_one_entry_of_each_bundle_and_shows_it():
    import pandas as pd

    picked = pick("metrics", collect)
    table = picked({"metrics": pd.DataFrame({"x": [1]})}, {"metrics": pd.DataFrame({"x": [2]})})
    assert table["x"].tolist() == [1, 2]
    assert picked.__name__ == "collect" and inspect.unwrap(picked) is collect


def test_bind_cell_shows_the_real_function_in_kedro_viz():
    def build(table, *, source, condition):
        return (table, source, condition)

    bound = bind_cell(build, "mnist", "human_soft")
    assert bound("t") == ("t", "mnist", "human_soft")
    assert list(inspect.signature(bound).parameters) == ["table"]
    assert inspect.unwrap(bound) is build  # kedro-viz reads the code of the unwrapped function
