"""The held-out scoring pool (soft_label_audit.data_sources.pool) on a slice of real MNIST."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.columns import MNIST_TEST_IDS, MNIST_TRAIN_IDS
from soft_label_audit.contracts import ContractError, check_table
from soft_label_audit.data_sources import geometry, pool, study, synthetic, tables
from soft_label_audit.parameter_tree import base_block
from soft_label_audit.params import ParameterError

GENERATOR = synthetic.AmbiguityConfig.from_params(
    {**base_block("digits.synthetic"), "n_items": 40, "parent_share": 0.5}
)
CONFIG = pool.PoolConfig(
    mnist_n_items=200, synthetic_n_items=60, synthetic_first_item_id=150_000, seed=3
)


@pytest.fixture(scope="module")
def study_tables(small_mnist_raw):
    """``digits`` and ``study_items`` as the digits pipeline makes them from 600 training images."""
    raw = small_mnist_raw
    made = synthetic.generate_ambiguous(raw["train_images"], raw["train_labels"], GENERATOR)
    digits = tables.combine(
        tables.mnist_table(
            raw["train_images"], raw["train_labels"], raw["test_images"], raw["test_labels"]
        ),
        tables.synthetic_table(made, GENERATOR.first_item_id),
    )
    chosen = study.select_study_items(
        digits,
        n_per_source={"mnist": 100, "synthetic": 20},
        pool_ids={"mnist": (0, 600), "synthetic": None},
        split_fractions={"train": 0.6, "val": 0.2, "test": 0.2},
        seed=2,
    )
    return digits, chosen


def _pool(study_tables, raw, config=CONFIG) -> pd.DataFrame:
    digits, chosen = study_tables
    return pool.build_pool(
        digits, chosen, raw["train_images"], raw["train_labels"], GENERATOR, config
    )


@pytest.fixture(scope="module")
def made(study_tables, small_mnist_raw) -> pd.DataFrame:
    return _pool(study_tables, small_mnist_raw)


def _study_parents(study_tables) -> set[int]:
    digits, chosen = study_tables
    rows = digits[digits["item_id"].isin(chosen["item_id"]) & (digits["source"] == "synthetic")]
    assert len(rows) == 20
    return set(rows["parent_a"]) | set(rows["parent_b"])


def test_sizes_columns_and_contract(made, study_tables):
    digits, _ = study_tables
    assert made.groupby("source").size().to_dict() == {"mnist": 200, "synthetic": 60}
    assert list(made.columns) == list(digits.columns)
    assert made["item_id"].is_unique
    check_table("pool_digits", made)


def test_mnist_items_are_training_images_outside_the_study(made, study_tables, small_mnist_raw):
    digits, chosen = study_tables
    mnist = made[made["source"] == "mnist"]
    ids = mnist["item_id"].to_numpy()
    assert np.isin(ids, MNIST_TRAIN_IDS).all() and not np.isin(ids, MNIST_TEST_IDS).any()
    assert not set(ids) & set(chosen["item_id"])
    assert not set(ids) & _study_parents(study_tables)
    # the rows are the digits rows of those ids: the image and label of that training image
    raw = small_mnist_raw
    assert np.array_equal(tables.images_from_column(mnist["image"]), raw["train_images"][ids])
    assert (mnist["original_label"].to_numpy() == raw["train_labels"][ids]).all()
    assert mnist["machine_soft_label"].isna().all()


def test_mnist_items_are_stratified_by_label(made):
    counts = made.loc[made["source"] == "mnist", "original_label"].value_counts()
    assert len(counts) == 10 and counts.max() - counts.min() <= 1


def test_synthetic_items_have_their_own_ids_and_parents_outside_the_study(made, study_tables):
    digits, chosen = study_tables
    blends = made[made["source"] == "synthetic"]
    assert blends["item_id"].tolist() == list(range(150_000, 150_060))
    assert not set(blends["item_id"]) & set(digits["item_id"])
    parents = set(blends["parent_a"]) | set(blends["parent_b"])
    assert parents <= set(MNIST_TRAIN_IDS[:600])
    assert not parents & set(chosen["item_id"])
    assert not parents & _study_parents(study_tables)


def test_synthetic_items_are_the_generators_blends_and_labels(made, small_mnist_raw):
    raw = small_mnist_raw
    blends = made[made["source"] == "synthetic"]
    a, b = blends["parent_a"].to_numpy(), blends["parent_b"].to_numpy()
    class_a, class_b = blends["class_a"].to_numpy(), blends["class_b"].to_numpy()
    w = blends["mix_weight"].to_numpy()
    assert (raw["train_labels"][a] == class_a).all() and (raw["train_labels"][b] == class_b).all()
    assert {tuple(sorted(pair)) for pair in zip(class_a, class_b, strict=True)} <= {
        tuple(sorted(pair)) for pair in GENERATOR.class_pairs
    }
    assert ((w >= GENERATOR.min_weight) & (w <= GENERATOR.max_weight)).all()
    soft = np.stack(blends["machine_soft_label"].to_numpy())
    expected = np.zeros_like(soft)
    expected[np.arange(len(w)), class_a] += 1 - w
    expected[np.arange(len(w)), class_b] += w
    np.testing.assert_allclose(soft, expected, atol=1e-12)
    assert (blends["original_label"].to_numpy() == np.where(w > 0.5, class_b, class_a)).all()
    # the image is the generator's blend of those two parents with that weight
    deskewed = geometry.deskew(raw["train_images"].astype(np.float64) / 255.0)
    again = synthetic.blend_parents(
        deskewed[a],
        deskewed[b],
        w,
        geometry.stroke_contrast(deskewed[a]),
        geometry.stroke_contrast(deskewed[b]),
    )
    assert np.array_equal(tables.images_from_column(blends["image"]), again)


def test_the_seed_decides_the_pool(made, study_tables, small_mnist_raw):
    assert made.equals(_pool(study_tables, small_mnist_raw))
    other = _pool(study_tables, small_mnist_raw, dataclasses.replace(CONFIG, seed=4))
    assert set(other["item_id"][other["source"] == "mnist"]) != set(
        made["item_id"][made["source"] == "mnist"]
    )
    assert not np.array_equal(other["mix_weight"].dropna(), made["mix_weight"].dropna())


def test_held_out_ids_are_the_mnist_items_and_the_blends_parents(made):
    blends = made[made["source"] == "synthetic"]
    expected = (
        set(made.loc[made["source"] == "mnist", "item_id"])
        | set(blends["parent_a"])
        | set(blends["parent_b"])
    )
    held = pool.held_out_ids(made)
    assert set(held.tolist()) == expected and np.all(np.diff(held) > 0)


def test_a_pool_of_size_zero_is_empty(study_tables, small_mnist_raw):
    none = dataclasses.replace(CONFIG, mnist_n_items=0, synthetic_n_items=0)
    empty = _pool(study_tables, small_mnist_raw, none)
    assert empty.empty and list(empty.columns) == list(study_tables[0].columns)
    check_table("pool_digits", empty)
    assert len(pool.held_out_ids(empty)) == 0
    only_mnist = _pool(
        study_tables, small_mnist_raw, dataclasses.replace(CONFIG, synthetic_n_items=0)
    )
    assert set(only_mnist["source"]) == {"mnist"} and len(only_mnist) == 200
    only_blends = _pool(study_tables, small_mnist_raw, dataclasses.replace(CONFIG, mnist_n_items=0))
    assert set(only_blends["source"]) == {"synthetic"} and len(only_blends) == 60


def test_a_pool_larger_than_the_images_left_is_refused(study_tables, small_mnist_raw):
    too_many = dataclasses.replace(CONFIG, mnist_n_items=600)
    with pytest.raises(ValueError, match=r"lower digits.pool.mnist.n_items"):
        _pool(study_tables, small_mnist_raw, too_many)


def test_pool_ids_colliding_with_digits_are_refused(study_tables, small_mnist_raw):
    clash = dataclasses.replace(CONFIG, synthetic_first_item_id=GENERATOR.first_item_id + 10)
    with pytest.raises(ValueError, match=r"move digits.pool.synthetic.first_item_id"):
        _pool(study_tables, small_mnist_raw, clash)


def test_the_contract_refuses_mnist_test_images_and_synthetic_ids_in_the_mnist_range(made):
    test_image = made.copy()
    test_image.loc[test_image.index[0], "item_id"] = MNIST_TEST_IDS.start
    with pytest.raises(ContractError, match="never a test image"):
        check_table("pool_digits", test_image)
    low = made.copy()
    low.loc[low["source"] == "synthetic", "item_id"] = np.arange(60) + 1000
    with pytest.raises(ContractError, match="a synthetic item_id is >= 70000"):
        check_table("pool_digits", low)


def test_the_pool_block_is_read_with_its_paths():
    block = base_block("digits.pool")
    config = pool.PoolConfig.from_params(block)
    assert config.synthetic_ids() == range(150_000, 155_000)
    zero = pool.PoolConfig.from_params({**block, "mnist": {"n_items": 0}})
    assert zero.mnist_n_items == 0
    with pytest.raises(ParameterError, match=r"digits.pool.mnist.n_items must be a non-negative"):
        pool.PoolConfig.from_params({**block, "mnist": {"n_items": -1}})
    with pytest.raises(ParameterError, match=r"digits.pool.synthetic has unknown settings"):
        pool.PoolConfig.from_params({**block, "synthetic": {**block["synthetic"], "seed": 1}})
    with pytest.raises(ParameterError, match=r"digits.pool.seed is missing"):
        pool.PoolConfig.from_params({k: v for k, v in block.items() if k != "seed"})
