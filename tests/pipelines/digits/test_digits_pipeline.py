"""The `digits` pipeline run in memory on a slice of real MNIST."""

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.columns import MNIST_TEST_IDS, MNIST_TRAIN_IDS
from soft_label_audit.data_sources.tables import images_from_column
from soft_label_audit.pipelines.digits import create_pipeline
from tests.helpers import run_in_memory

PARAMS = {
    "synthetic": {
        "n_items": 40,
        "first_item_id": 100000,
        "class_pairs": [[4, 9], [3, 5]],
        "min_weight": 0.3,
        "max_weight": 0.7,
        "parent_share": 0.2,
        "seed": 1,
    },
    "study": {
        "items_from": "draw",
        "n_per_source": {"mnist": 100, "synthetic": 20},
        "pool_item_ids": {"mnist": [0, 600], "synthetic": None},
        "split_fractions": {"train": 0.6, "val": 0.2, "test": 0.2},
        "seed": 2,
        "label_noise": {"share": 0.0, "seed": 11},
    },
    "pool": {
        "mnist": {"n_items": 150},
        "synthetic": {"n_items": 30, "first_item_id": 150000},
        "seed": 3,
    },
    "figure": {"rows": 2, "cols": 4},
}


def _run(small_mnist_raw):
    inputs = {"mnist_raw": small_mnist_raw, **{f"params:digits.{k}": v for k, v in PARAMS.items()}}
    return run_in_memory(create_pipeline(), inputs)


@pytest.fixture(scope="module")
def outputs(small_mnist_raw):
    return _run(small_mnist_raw)


def test_digits_table_contract(outputs, small_mnist_raw):
    digits = outputs["digits"]
    assert {"item_id", "source", "original_label", "image", "machine_soft_label"} <= set(
        digits.columns
    )
    mnist = digits[digits.source == "mnist"]
    # the 70k ordering: training images first, then test images (a slice keeps MNIST's ids)
    assert mnist["item_id"].tolist() == [*MNIST_TRAIN_IDS[:600], *MNIST_TEST_IDS[:200]]
    assert np.array_equal(
        images_from_column(mnist["image"])[600], small_mnist_raw["test_images"][0]
    )
    assert mnist["original_label"].iloc[600] == small_mnist_raw["test_labels"][0]
    assert mnist["machine_soft_label"].isna().all()
    synthetic = digits[digits.source == "synthetic"]
    assert len(synthetic) == 40 and synthetic["item_id"].min() == 100000
    soft = np.stack(synthetic["machine_soft_label"].to_numpy())
    np.testing.assert_allclose(soft.sum(1), 1.0)
    assert (soft.argmax(1) == synthetic["original_label"].to_numpy()).all()
    assert digits["item_id"].is_unique and digits["original_label"].between(0, 9).all()


def test_study_items_contract(outputs):
    study = outputs["study_items"]
    assert list(study.columns) == ["item_id", "source", "split", "original_label"]
    assert study.groupby("source").size().to_dict() == {"mnist": 100, "synthetic": 20}
    assert study["item_id"].is_unique
    digits = outputs["digits"].set_index("item_id")
    assert (digits.loc[study["item_id"], "source"].to_numpy() == study["source"].to_numpy()).all()
    assert (study.loc[study.source == "mnist", "item_id"] < 600).all()


def test_pipeline_is_deterministic(outputs, small_mnist_raw):
    again = _run(small_mnist_raw)
    assert outputs["digits"].equals(again["digits"])
    assert outputs["study_items"].equals(again["study_items"])
    assert outputs["pool_digits"].equals(again["pool_digits"])


def test_scoring_pool_holds_no_study_item_no_test_image_and_no_study_parent(outputs):
    from soft_label_audit.contracts import check_table

    pool, digits, study = outputs["pool_digits"], outputs["digits"], outputs["study_items"]
    check_table("pool_digits", pool)
    assert pool.groupby("source").size().to_dict() == {"mnist": 150, "synthetic": 30}
    mnist = pool[pool.source == "mnist"]
    assert mnist["item_id"].isin(MNIST_TRAIN_IDS).all()
    assert not mnist["item_id"].isin(MNIST_TEST_IDS).any()
    chosen = digits[digits["item_id"].isin(study["item_id"])]
    study_parents = set(chosen["parent_a"]) | set(chosen["parent_b"])
    blends = pool[pool.source == "synthetic"]
    pool_parents = set(blends["parent_a"]) | set(blends["parent_b"])
    for ids in (set(mnist["item_id"]), pool_parents):
        assert not ids & set(study["item_id"]) and not ids & study_parents
    # the blends have ids of their own, and the MNIST rows are those of digits
    assert blends["item_id"].tolist() == list(range(150000, 150030))
    assert not set(blends["item_id"]) & set(digits["item_id"])
    rows = digits.set_index("item_id").loc[mnist["item_id"]]
    assert (rows["image"].to_numpy() == mnist["image"].to_numpy()).all()


def test_figure_is_made(outputs):
    fig = outputs["synthetic_samples_figure"]
    assert len([ax for ax in fig.axes if ax.images]) == 8


def test_synthetic_items_record_their_parents_and_no_parent_spans_two_splits(
    outputs, small_mnist_raw
):
    digits = outputs["digits"]
    synthetic = digits[digits.source == "synthetic"]
    mnist = digits[digits.source == "mnist"]
    assert (mnist[["parent_a", "parent_b"]] == -1).all().all()
    # parents are MNIST training images of the classes the item lies between
    labels = small_mnist_raw["train_labels"]
    assert (labels[synthetic["parent_a"]] == synthetic["class_a"]).all()
    assert (labels[synthetic["parent_b"]] == synthetic["class_b"]).all()
    study = outputs["study_items"].merge(
        synthetic[["item_id", "parent_a", "parent_b"]], on="item_id"
    )
    parents = pd.concat(
        [
            study[[c, "split"]].set_axis(["parent", "split"], axis=1)
            for c in ("parent_a", "parent_b")
        ]
    )
    assert (parents.groupby("parent")["split"].nunique() == 1).all()


def test_a_bad_parameter_stops_the_pipeline_with_its_path(small_mnist_raw):
    from soft_label_audit.params import ParameterError

    inputs = {"mnist_raw": small_mnist_raw, **{f"params:digits.{k}": v for k, v in PARAMS.items()}}
    inputs["params:digits.synthetic"] = {**PARAMS["synthetic"], "n_items": -3}
    with pytest.raises(
        ParameterError, match="digits.synthetic.n_items must be a positive integer, got -3"
    ):
        run_in_memory(create_pipeline(), inputs)
