import numpy as np
import pandas as pd
import pytest

from soft_label_audit.data_sources import geometry, study, synthetic
from soft_label_audit.parameter_tree import base_block
from soft_label_audit.params import ParameterError

SYNTHETIC = base_block("digits.synthetic")
STUDY = base_block("digits.study")

CONFIG = synthetic.AmbiguityConfig.from_params(
    {
        **SYNTHETIC,
        "n_items": 64,
        "class_pairs": [[4, 9], [1, 7]],
        "min_weight": 0.3,
        "max_weight": 0.7,
        "seed": 5,
    }
)


@pytest.fixture(scope="module")
def made(small_mnist_raw):
    return synthetic.generate_ambiguous(
        small_mnist_raw["train_images"], small_mnist_raw["train_labels"], CONFIG
    )


def test_generated_items_have_two_class_machine_labels(small_mnist_raw, made):
    soft = made["machine_soft_label"]
    assert made["images"].shape == (64, 28, 28) and made["images"].dtype == np.uint8
    np.testing.assert_allclose(soft.sum(1), 1.0)
    assert ((soft > 0).sum(1) == 2).all()
    pairs = {tuple(sorted(p)) for p in zip(made["class_a"], made["class_b"])}
    assert pairs <= {(4, 9), (1, 7)}
    assert np.array_equal(made["original_label"], soft.argmax(1))
    assert (made["mix_weight"] >= 0.3).all() and (made["mix_weight"] <= 0.7).all()
    # the source images really are of the classes named in the label
    labels = small_mnist_raw["train_labels"]
    assert (labels[made["source_a"]] == made["class_a"]).all()
    assert (labels[made["source_b"]] == made["class_b"]).all()
    again = synthetic.generate_ambiguous(small_mnist_raw["train_images"], labels, CONFIG)
    assert np.array_equal(again["images"], made["images"])


def test_parents_are_the_typical_share_of_their_class(small_mnist_raw, made):
    images, labels = small_mnist_raw["train_images"], small_mnist_raw["train_labels"]
    eligible = synthetic.typical_parents(
        geometry.deskew(images / 255.0), labels, CONFIG.parent_share
    )
    for k in range(10):
        n_k = int((labels == k).sum())
        assert eligible[labels == k].sum() == int(np.ceil(CONFIG.parent_share * n_k))
    assert eligible[made["source_a"]].all() and eligible[made["source_b"]].all()


def test_blends_keep_the_stroke_contrast_of_their_parents(small_mnist_raw):
    """A plain pixel blend halves the ink where two digits do not overlap, so evenly mixed
    items would also be the faint ones; the generator restores the parents' contrast."""
    images, labels = small_mnist_raw["train_images"], small_mnist_raw["train_labels"]
    config = synthetic.AmbiguityConfig.from_params(
        {**SYNTHETIC, "n_items": 200, "min_weight": 0.0, "max_weight": 1.0, "seed": 3}
    )
    made = synthetic.generate_ambiguous(images, labels, config)
    contrast = geometry.stroke_contrast(made["images"] / 255.0)
    parents = geometry.stroke_contrast(geometry.deskew(images / 255.0))
    expected = (1 - made["mix_weight"]) * parents[made["source_a"]] + made["mix_weight"] * (
        parents[made["source_b"]]
    )
    assert np.quantile(np.abs(contrast - expected), 0.95) < 0.02
    even = np.abs(made["mix_weight"] - 0.5) < 0.1
    assert contrast[even].mean() > 0.95 * contrast[~even].mean()
    # without the restoration the evenly mixed items are clearly fainter
    plain = (1 - made["mix_weight"][:, None, None]) * geometry.deskew(
        images[made["source_a"]] / 255.0
    ) + made["mix_weight"][:, None, None] * geometry.deskew(images[made["source_b"]] / 255.0)
    faint = geometry.stroke_contrast(plain)
    assert faint[even].mean() < 0.95 * faint[~even].mean()


def test_configuration_is_checked_with_the_one_template():
    with pytest.raises(ParameterError) as err:
        synthetic.AmbiguityConfig.from_params({**SYNTHETIC, "n_items": -3})
    assert str(err.value).splitlines()[0] == (
        "digits.synthetic.n_items must be a positive integer, got -3"
    )
    with pytest.raises(
        ParameterError, match=r"digits.synthetic.class_pairs must be a list of pairs"
    ):
        synthetic.AmbiguityConfig.from_params({**SYNTHETIC, "class_pairs": [[3, 3]]})
    with pytest.raises(ParameterError, match=r"digits.synthetic.max_weight must be a number >="):
        synthetic.AmbiguityConfig.from_params({**SYNTHETIC, "min_weight": 0.6, "max_weight": 0.4})
    with pytest.raises(ParameterError, match=r"digits.synthetic has unknown settings \['n_item'\]"):
        synthetic.AmbiguityConfig.from_params({**SYNTHETIC, "n_item": 3})
    with pytest.raises(ParameterError, match=r"digits.study.n_per_source.mnist must be a non-neg"):
        study.StudyConfig.from_params({**STUDY, "n_per_source": {"mnist": -1}})
    with pytest.raises(ParameterError, match=r"digits.study.split_fractions must be train, val"):
        study.StudyConfig.from_params(
            {
                **STUDY,
                "n_per_source": {"mnist": 1},
                "split_fractions": {"train": 0.9, "val": 0.2, "test": 0},
            }
        )


def _digits(n_mnist=500, n_syn=120, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "item_id": np.r_[np.arange(n_mnist), 100000 + np.arange(n_syn)],
            "source": ["mnist"] * n_mnist + ["synthetic"] * n_syn,
            "original_label": rng.integers(0, 10, n_mnist + n_syn),
        }
    )


FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def test_study_split_is_disjoint_stratified_and_reproducible():
    digits = _digits()
    args = dict(
        n_per_source={"mnist": 200, "synthetic": 50},
        pool_ids={"mnist": (0, 400)},
        split_fractions=FRACTIONS,
    )
    a = study.select_study_items(digits, seed=7, **args)
    b = study.select_study_items(digits, seed=7, **args)
    c = study.select_study_items(digits, seed=8, **args)
    pd.testing.assert_frame_equal(a, b)
    assert not a["item_id"].equals(c["item_id"])
    assert a["item_id"].is_unique  # one split per item: the splits are disjoint
    assert set(a["split"]) == {"train", "val", "test"}
    assert (a.groupby("source").size() == pd.Series({"mnist": 200, "synthetic": 50})).all()
    assert a.loc[a.source == "mnist", "item_id"].max() < 400
    mnist_counts = a[a.source == "mnist"].groupby("original_label").size()
    assert mnist_counts.max() - mnist_counts.min() <= 1  # stratified by class
    shares = a[a.source == "mnist"]["split"].value_counts(normalize=True)
    assert abs(shares["train"] - 0.6) < 0.05 and abs(shares["test"] - 0.2) < 0.05


def test_stratified_sample_moves_quota_of_small_classes():
    labels = np.r_[np.zeros(2), np.ones(50), np.full(50, 2)].astype(int)
    picked = study.stratified_sample(labels, 30, np.random.default_rng(0))
    counts = np.bincount(labels[picked], minlength=3)
    assert counts.sum() == 30 and counts[0] == 2 and abs(counts[1] - counts[2]) <= 1


def test_bad_fractions_and_oversized_requests_are_refused():
    with pytest.raises(ValueError, match="summing to 1"):
        study.split_items(
            np.zeros(10), {"train": 0.5, "val": 0.2, "test": 0.2}, np.random.default_rng(0)
        )
    with pytest.raises(ValueError, match="pool of"):
        study.stratified_sample(np.zeros(5, int), 6, np.random.default_rng(0))


def test_parent_groups_join_items_that_share_a_parent_transitively():
    parents = np.array([[10, 11], [12, 13], [11, 14], [-1, -1], [14, 15], [-1, -1], [13, 16]])
    groups = study.parent_groups(parents)
    assert groups[0] == groups[2] == groups[4]  # 0-2 share 11, 2-4 share 14
    assert groups[1] == groups[6]  # share 13
    assert len({groups[0], groups[1], groups[3], groups[5]}) == 4  # no parent: own group


def test_split_groups_keeps_each_group_in_one_split_and_hits_the_targets():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    singletons = study.split_groups(labels, np.arange(300), FRACTIONS, np.random.default_rng(1))
    for c in range(3):
        counts = pd.Series(singletons[labels == c]).value_counts()
        n_c = int((labels == c).sum())
        assert counts["test"] == round(0.2 * n_c) and counts["val"] == round(0.2 * n_c)
    groups = rng.integers(0, 120, 300)  # many groups of two or three items
    split = study.split_groups(labels, groups, FRACTIONS, np.random.default_rng(1))
    per_group = pd.DataFrame({"g": groups, "s": split}).groupby("g")["s"].nunique()
    assert (per_group == 1).all()
    shares = pd.Series(split).value_counts(normalize=True)
    assert abs(shares["train"] - 0.6) < 0.1 and abs(shares["test"] - 0.2) < 0.1


def test_no_parent_image_feeds_two_splits():
    """Synthetic items drawn from a small pool of parents share parents often; the study split
    must still put every parent's items in one split (the old item-wise split did not)."""
    rng = np.random.default_rng(3)
    n = 200
    digits = pd.DataFrame(
        {
            "item_id": 100000 + np.arange(n),
            "source": "synthetic",
            "original_label": rng.integers(0, 10, n),
            "parent_a": rng.integers(0, 150, n),  # few parents: about half the items share one
            "parent_b": rng.integers(150, 300, n),
        }
    )
    items = study.select_study_items(digits, {"synthetic": 150}, {}, FRACTIONS, seed=4)
    merged = items.merge(digits[["item_id", "parent_a", "parent_b"]], on="item_id")
    parents = pd.concat(
        [
            merged[["parent_a", "split"]].set_axis(["parent", "split"], axis=1),
            merged[["parent_b", "split"]].set_axis(["parent", "split"], axis=1),
        ]
    )
    assert (parents.groupby("parent")["split"].nunique() == 1).all()
    assert set(items["split"]) == {"train", "val", "test"}
    # the item-wise split of the same items would have put some parents in two splits
    itemwise = study.split_items(
        merged["original_label"].to_numpy(), FRACTIONS, np.random.default_rng(0)
    )
    both = pd.concat(
        [pd.DataFrame({"parent": merged[c], "split": itemwise}) for c in ("parent_a", "parent_b")]
    )
    assert (both.groupby("parent")["split"].nunique() > 1).any()
