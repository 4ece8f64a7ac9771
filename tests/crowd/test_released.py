"""The released-schema fixture round trip and the released reader's rules."""

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.columns import H_COLS
from soft_label_audit.crowd import released
from soft_label_audit.crowd.inputs import read_released_file
from soft_label_audit.crowd.validation import AnnotationValidationError
from soft_label_audit.data_sources.tables import images_from_column, images_to_column
from soft_label_audit.parameter_tree import base_block

from .released_fixture import FIXTURE, MNIST_IDS, N_SYNTHETIC, make

CONFIG = released.ReleasedConfig.from_params(base_block("annotation"))


@pytest.fixture(scope="module")
def digits(mnist_arrays):
    ids = np.arange(2000)
    return pd.DataFrame(
        {
            "item_id": ids,
            "source": "mnist",
            "original_label": mnist_arrays["train_labels"][ids].astype(np.int64),
            "image": images_to_column(mnist_arrays["train_images"][ids]),
        }
    )


def test_committed_fixture_is_what_the_builder_makes(mnist_arrays):
    pd.testing.assert_frame_equal(pd.read_parquet(FIXTURE), make(mnist_arrays))
    assert list(pd.read_parquet(FIXTURE).columns) == list(released.RELEASED_COLUMNS)


def test_round_trip(digits, tmp_path):
    frame = pd.read_parquet(FIXTURE)
    path = tmp_path / "released.parquet"
    frame.to_parquet(path)
    again = read_released_file(path)
    released.validate_released(again, str(path), CONFIG)
    study, soft = released.released_to_study(again, digits, str(path), CONFIG)
    assert study["item_id"].tolist() == MNIST_IDS + [
        200_000 + len(MNIST_IDS) + j for j in range(N_SYNTHETIC)
    ]
    assert study["source"].tolist() == ["mnist"] * len(MNIST_IDS) + ["synthetic"] * N_SYNTHETIC
    assert study["split"].tolist() == frame["split"].tolist()
    np.testing.assert_array_equal(
        images_from_column(study["image"]), images_from_column(frame["images"])
    )
    assert set(soft["aggregation"]) == {f"released:{c}" for c in released.SOFT_LABEL_COLUMNS}
    chosen = soft[soft["aggregation"] == "released:soft_label"]
    expected = np.stack([released.parse_vector(s, 11) for s in frame["soft_label"]])
    np.testing.assert_allclose(
        chosen[list(H_COLS)].to_numpy(), expected / expected.sum(1, keepdims=True)
    )
    np.testing.assert_allclose(chosen[list(H_COLS)].sum(axis=1), 1.0)


def test_two_rows_work(digits):
    frame = pd.read_parquet(FIXTURE).iloc[[0, len(MNIST_IDS)]]
    released.validate_released(frame, "two.parquet", CONFIG)
    study, _ = released.released_to_study(frame, digits, "two.parquet", CONFIG)
    assert len(study) == 2


def _fails(frame, digits, rule):
    with pytest.raises(AnnotationValidationError) as err:
        released.validate_released(frame, "bad.parquet", CONFIG)
        released.released_to_study(frame, digits, "bad.parquet", CONFIG)
    assert "bad.parquet" in str(err.value) and rule in str(err.value)
    return str(err.value)


def test_soft_label_that_does_not_sum_to_one(digits):
    frame = pd.read_parquet(FIXTURE)
    frame.loc[3, "soft_label"] = "[0.5, 0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0]"
    message = _fails(
        frame, digits, "soft_label: soft label is 11 non-negative numbers summing to 1"
    )
    assert "1 offending row(s)" in message


def test_nan_soft_label_and_missing_column(digits):
    frame = pd.read_parquet(FIXTURE)
    frame.loc[0, "soft_label_yes_only"] = "[nan, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]"
    _fails(frame, digits, "soft_label_yes_only")
    _fails(pd.read_parquet(FIXTURE).drop(columns=["split"]), digits, "missing column(s) ['split']")


def test_image_must_equal_the_mnist_image_of_its_index(digits):
    frame = pd.read_parquet(FIXTURE)
    frame.loc[1, "indices"] = 3  # the image of id 1 stored under id 3
    _fails(frame, digits, "stored image equals the MNIST image of its index")


def test_unknown_source_split_and_duplicate_index(digits):
    frame = pd.read_parquet(FIXTURE)
    frame.loc[0, "source"] = "cifar"
    frame.loc[1, "split"] = "holdout"
    frame.loc[2, "indices"] = int(frame.loc[3, "indices"])
    message = _fails(frame, digits, "source is one of")
    assert "split is one of" in message and "distinct indices" in message


def test_index_missing_from_digits(digits):
    frame = pd.read_parquet(FIXTURE)
    frame.loc[0, "indices"] = 5000
    frame.loc[0, "images"] = np.zeros(784, np.uint8).tobytes()
    _fails(frame, digits, "MNIST rows refer to digits items")


def test_vectors_and_images_in_other_encodings():
    assert released.parse_vector("[0.1 0.9]", 2).tolist() == [0.1, 0.9]
    assert released.parse_vector([0.1, 0.9], 2).tolist() == [0.1, 0.9]
    assert released.parse_vector("[0.1, 0.9]", 3) is None
    img = (np.arange(784) % 256).astype(np.uint8)
    np.testing.assert_array_equal(released.decode_image(img.tobytes()).ravel(), img)
    np.testing.assert_array_equal(released.decode_image({"bytes": img.tobytes()}).ravel(), img)
    np.testing.assert_array_equal(released.decode_image(list(img / 255.0)).ravel(), img)
    assert released.decode_image(b"short") is None
