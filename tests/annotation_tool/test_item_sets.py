"""Study items joined with their images, and the choice of attention checks."""

from __future__ import annotations

import numpy as np
import pytest

from soft_label_audit.annotation_tool.item_sets import (
    ITEM_COLUMNS,
    build_annotation_items,
    select_attention_checks,
)

from .conftest import make_study_items


def test_study_items_get_their_images_and_checks_are_added(mnist_digits):
    study = make_study_items(mnist_digits, 20)
    items = build_annotation_items(study, mnist_digits, n_attention_checks=4, seed=1)
    assert list(items.columns) == list(ITEM_COLUMNS)
    study_rows = items[~items["is_attention_check"]]
    assert study_rows["item_id"].tolist() == study["item_id"].tolist()
    assert study_rows["split"].tolist() == study["split"].tolist()
    by_id = mnist_digits.set_index("item_id")["image"]
    assert all(by_id[i] == img for i, img in zip(study_rows["item_id"], study_rows["image"]))
    assert study_rows["expected_choice"].isna().all()

    checks = items[items["is_attention_check"]]
    assert len(checks) == 4
    assert not set(checks["item_id"]) & set(study["item_id"])
    assert (checks["expected_choice"] == checks["original_label"].astype(str)).all()
    assert checks["original_label"].nunique() == 4  # distinct classes


def test_attention_checks_are_typical_images_of_their_class(mnist_digits):
    checks = select_attention_checks(mnist_digits, exclude_ids=set(), n_checks=10, seed=0)
    assert sorted(checks["original_label"]) == list(range(10))
    pixels = np.stack([np.frombuffer(b, np.uint8) for b in mnist_digits["image"]]).astype(float)
    labels = mnist_digits["original_label"].to_numpy()
    unit = pixels / np.linalg.norm(pixels, axis=1, keepdims=True)
    for item_id, label in zip(checks["item_id"], checks["original_label"]):
        mean = pixels[labels == label].mean(0)
        sims = unit[labels == label] @ (mean / np.linalg.norm(mean))
        chosen = unit[item_id] @ (mean / np.linalg.norm(mean))
        assert chosen == pytest.approx(sims.max())


def test_attention_checks_avoid_excluded_ids_and_are_seeded(mnist_digits):
    first = select_attention_checks(mnist_digits, set(), 3, seed=5)
    again = select_attention_checks(mnist_digits, set(), 3, seed=5)
    assert first["item_id"].tolist() == again["item_id"].tolist()
    avoided = select_attention_checks(mnist_digits, set(first["item_id"]), 3, seed=5)
    assert not set(avoided["item_id"]) & set(first["item_id"])


def test_study_item_without_image_is_an_error(mnist_digits):
    study = make_study_items(mnist_digits, 3)
    study.loc[0, "item_id"] = 10_000_000
    with pytest.raises(ValueError, match="no image in digits.*10000000"):
        build_annotation_items(study, mnist_digits, n_attention_checks=0)


def test_duplicate_study_item_is_an_error(mnist_digits):
    study = make_study_items(mnist_digits, 3)
    study.loc[2, "item_id"] = study.loc[1, "item_id"]
    with pytest.raises(ValueError, match="repeats item ids"):
        build_annotation_items(study, mnist_digits, n_attention_checks=0)


def test_missing_column_is_named(mnist_digits):
    with pytest.raises(ValueError, match="lacks column.*image"):
        build_annotation_items(
            make_study_items(mnist_digits, 3), mnist_digits.drop(columns="image")
        )
