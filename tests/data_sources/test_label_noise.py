"""The positive control's flipped labels (digits.study.label_noise): only MNIST training items,
to a confusable digit, seeded and stratified; share 0 leaves study_items as it was; the crowd
votes on the image, never on the label."""

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.contracts import ContractError, check_table
from soft_label_audit.crowd import collection
from soft_label_audit.data_sources import study
from soft_label_audit.parameter_tree import base_block
from soft_label_audit.params import ParameterError
from soft_label_audit.pipelines.digits import nodes
from tests.crowd.data import crowd_params, small_digits

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def _digits(n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    mnist = pd.DataFrame(
        {
            "item_id": np.arange(n, dtype=np.int64),
            "source": "mnist",
            "original_label": rng.integers(0, 10, n).astype(np.int64),
        }
    )
    synthetic = pd.DataFrame(
        {
            "item_id": np.arange(100_000, 100_200, dtype=np.int64),
            "source": "synthetic",
            "original_label": rng.integers(0, 10, 200).astype(np.int64),
        }
    )
    return pd.concat([mnist, synthetic], ignore_index=True)


def _params(share: float, seed: int = 11) -> dict:
    return {
        **base_block("digits.study"),
        "n_per_source": {"mnist": 500, "synthetic": 100},
        "pool_item_ids": {"mnist": [0, 60000], "synthetic": None},
        "split_fractions": FRACTIONS,
        "label_noise": {"share": share, "seed": seed},
    }


def test_share_zero_is_the_study_without_the_block():
    """The default study (share 0): the same table, no new columns, byte for byte."""
    digits = _digits()
    made = nodes.choose_study_items(digits, _params(0.0))
    plain = study.select_study_items(
        digits,
        {"mnist": 500, "synthetic": 100},
        {"mnist": (0, 60000), "synthetic": None},
        FRACTIONS,
        seed=base_block("digits.study")["seed"],
    )
    pd.testing.assert_frame_equal(made, plain, check_exact=True)
    assert list(made.columns) == ["item_id", "source", "split", "original_label"]
    assert base_block("digits.study")["label_noise"]["share"] == 0.0


def test_flips_a_share_of_mnist_training_items_to_a_confusable_digit():
    digits = _digits()
    clean = nodes.choose_study_items(digits, _params(0.0))
    noisy = nodes.choose_study_items(digits, _params(0.2))
    # the items and their split are those of the clean study; only labels change
    pd.testing.assert_frame_equal(
        noisy[["item_id", "source", "split"]], clean[["item_id", "source", "split"]]
    )
    assert (noisy["true_label"] == clean["original_label"]).all()
    flipped = noisy["label_flipped"].to_numpy()
    eligible = ((noisy["source"] == "mnist") & (noisy["split"] == "train")).to_numpy()
    assert flipped.sum() == round(0.2 * eligible.sum()) > 0
    assert not flipped[~eligible].any()  # val, test and synthetic items keep their labels
    wrong = noisy["true_label"].map(study.CONFUSABLE)
    assert (noisy.loc[flipped, "original_label"] == wrong[flipped]).all()
    assert (noisy.loc[~flipped, "original_label"] == noisy.loc[~flipped, "true_label"]).all()
    # stratified by true label: the flips per class differ by at most one
    per_class = noisy[flipped].groupby("true_label").size().reindex(range(10), fill_value=0)
    assert per_class.max() - per_class.min() <= 1
    check_table("study_items", noisy)


def test_flips_are_seeded():
    digits = _digits()
    a = nodes.choose_study_items(digits, _params(0.2, seed=11))
    b = nodes.choose_study_items(digits, _params(0.2, seed=11))
    c = nodes.choose_study_items(digits, _params(0.2, seed=12))
    pd.testing.assert_frame_equal(a, b)
    assert not a["label_flipped"].equals(c["label_flipped"])


def test_the_confusion_map_never_keeps_a_label():
    assert sorted(study.CONFUSABLE) == list(range(10))
    assert all(study.CONFUSABLE[d] != d for d in range(10))


def test_bad_label_noise_settings_are_refused_by_path():
    with pytest.raises(ParameterError, match=r"^digits\.study\.label_noise\.share must be"):
        study.StudyConfig.from_params({**_params(0.2), "label_noise": {"share": -0.1, "seed": 1}})
    with pytest.raises(ParameterError, match=r"^digits\.study\.label_noise\.seed is missing"):
        study.StudyConfig.from_params({**_params(0.2), "label_noise": {"share": 0.1}})


def test_the_contract_refuses_a_flag_that_disagrees_with_the_labels():
    noisy = nodes.choose_study_items(_digits(), _params(0.2))
    broken = noisy.copy()
    first = int(np.flatnonzero(broken["label_flipped"])[0])
    broken.loc[first, "label_flipped"] = False
    with pytest.raises(ContractError, match="label_flipped exactly where"):
        check_table("study_items", broken)


def test_the_crowd_votes_on_the_image_not_the_label(mnist_arrays):
    """The same votes whatever original_label says: the crowd never reads it."""
    digits, items = small_digits(mnist_arrays, n_mnist=60, n_synthetic=5)
    items = items[items["source"] == "mnist"].reset_index(drop=True)
    relabelled = items.assign(original_label=items["original_label"].map(study.CONFUSABLE))
    votes, traits = collection.simulate(
        digits, collection.study_with_images(items, digits), crowd_params()
    )
    votes_wrong, traits_wrong = collection.simulate(
        digits, collection.study_with_images(relabelled, digits), crowd_params()
    )
    pd.testing.assert_frame_equal(votes, votes_wrong)
    pd.testing.assert_frame_equal(traits, traits_wrong)
