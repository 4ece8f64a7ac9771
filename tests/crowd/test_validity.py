"""The crowd validity checks: each one holds on a crowd that behaves as people do and fails on
one that does not (hand-made votes and labels; MNIST images for the classifier check)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.columns import H_COLS
from soft_label_audit.crowd import validity
from soft_label_audit.data_sources.tables import images_to_column
from soft_label_audit.parameter_tree import base_block

TARGETS = validity.ValidityTargets.from_params(
    {**base_block("crowd_validity"), "classifier": {"n_train": 400, "C": 5.0, "seed": 0}}
)


def _synthetic(n=200, follows_ambiguity=True, contrast_driven=False, seed=0):
    """Synthetic items whose human label splits between two digits by ``w`` (or at random)."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.1, 0.9, n)
    split = w if follows_ambiguity else rng.uniform(0.1, 0.9, n)
    h = np.zeros((n, 11))
    h[:, 4], h[:, 9] = 1 - split, split
    soft = [[0, 0, 0, 0, 1 - x, 0, 0, 0, 0, x] for x in w]
    contrast = rng.uniform(0.3, 1.0, n)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 10:18, 12:16] = np.rint(contrast * 255).astype(np.uint8)[:, None, None]
    ids = 100_000 + np.arange(n)
    # none/unsure votes: on ambiguous items, or on faint ones
    hesitant = (1 - contrast) if contrast_driven else 1 - np.abs(split - 0.5) * 2
    votes = []
    for i, item in enumerate(ids):
        n_hes = int(round(10 * hesitant[i]))
        for a in range(20):
            votes.append((item, f"a{a}", "4" if a % 2 else "9", a < n_hes))
    return (
        ids,
        h,
        soft,
        images,
        pd.DataFrame(votes, columns=["item_id", "annotator_id", "choice", "unsure"]),
    )


def _tables(ids, h, soft, images, source="synthetic", original=None, mode=None):
    n = len(ids)
    original = np.full(n, 4) if original is None else original
    mode = original if mode is None else mode
    stats = pd.DataFrame(
        {
            "item_id": ids,
            "source": source,
            "original_label": original,
            "human_mode": mode,
            "mode_shift": mode != original,
        }
    )
    labels = pd.DataFrame(h, columns=list(H_COLS)).assign(item_id=ids)
    digits = pd.DataFrame(
        {"item_id": ids, "image": images_to_column(images), "machine_soft_label": soft}
    )
    return stats, labels, digits


def _checks(ids, h, soft, images, votes):
    stats, labels, digits = _tables(ids, h, soft, images)
    empty_pool = (np.zeros((0, 28, 28), np.uint8), np.zeros(0, int))
    table = validity.crowd_validity(
        stats, labels, votes, digits, empty_pool, TARGETS, "renormalise"
    )
    return table.set_index("check")


def test_ambiguity_check_holds_only_when_uncertainty_follows_the_generator():
    good = _checks(*_synthetic(follows_ambiguity=True))
    bad = _checks(*_synthetic(follows_ambiguity=False))
    assert (
        good.loc["ambiguity_correlation", "value"] > 0.9
        and good.loc["ambiguity_correlation", "holds"]
    )
    assert (
        abs(bad.loc["ambiguity_correlation", "value"]) < 0.2
        and not bad.loc["ambiguity_correlation", "holds"]
    )


def test_contrast_check_fails_when_faint_strokes_make_the_crowd_hesitate():
    good = _checks(*_synthetic(contrast_driven=False))
    bad = _checks(*_synthetic(follows_ambiguity=False, contrast_driven=True))
    assert good.loc["contrast_vs_uncertainty", "holds"]
    assert (
        bad.loc["contrast_vs_uncertainty", "value"] > 0.9
        and not bad.loc["contrast_vs_uncertainty", "holds"]
    )


def test_votes_per_item_and_agreement_ranges():
    table = _checks(*_synthetic())
    assert table.loc["votes_per_item", "value"] == 20 and table.loc["votes_per_item", "holds"]
    few = _synthetic()[4].groupby("item_id").head(9)
    ids, h, soft, images, _ = _synthetic()
    assert not _checks(ids, h, soft, images, few).loc["votes_per_item", "holds"]


@pytest.fixture(scope="module")
def mnist_shift_case(mnist_arrays):
    """60 MNIST study items, 3 of them shifted; a pool of other training images for the SVM."""
    x, y = mnist_arrays["train_images"], mnist_arrays["train_labels"].astype(int)
    study = np.arange(60)
    pool = (x[1000:1400], y[1000:1400])
    return x[study], y[study], pool


def _mnist_checks(images, labels, pool, original, mode, agree_share=0.95):
    ids = np.arange(len(images))
    h = np.zeros((len(ids), 11))
    h[ids, mode] = 1.0
    stats, tables_h, digits = _tables(ids, h, [None] * len(ids), images, "mnist", original, mode)
    votes = pd.DataFrame(
        [
            (
                i,
                f"a{a}",
                str(mode[i]) if a < round(20 * agree_share) else str((mode[i] + 1) % 10),
                False,
            )
            for i in ids
            for a in range(20)
        ],
        columns=["item_id", "annotator_id", "choice", "unsure"],
    )
    table = validity.crowd_validity(stats, tables_h, votes, digits, pool, TARGETS, "renormalise")
    return table.set_index("check")


def test_mode_shifts_that_correct_label_errors_pass_and_observer_errors_fail(mnist_shift_case):
    images, labels, pool = mnist_shift_case
    shifted = np.array([0, 1, 2])
    # label errors: the dataset label is wrong on 3 items and the crowd names the true digit
    corrupted = labels.copy()
    corrupted[shifted] = (labels[shifted] + 3) % 10
    good = _mnist_checks(images, labels, pool, original=corrupted, mode=labels)
    assert good.loc["mnist_shift_classifier_agreement", "value"] == 1.0
    assert good.loc["mnist_shift_classifier_agreement", "holds"]
    assert good.loc["mnist_mode_shift_share", "value"] == pytest.approx(0.05)
    # observer errors: the label is right and the crowd names another digit
    wrong_mode = labels.copy()
    wrong_mode[shifted] = (labels[shifted] + 3) % 10
    bad = _mnist_checks(images, labels, pool, original=labels, mode=wrong_mode)
    assert bad.loc["mnist_shift_classifier_agreement", "value"] == 0.0
    assert not bad.loc["mnist_shift_classifier_agreement", "holds"]
    assert not bad.loc["mnist_mode_shift_share", "holds"]  # 5% > 3%
    assert good.loc["mnist_vote_agreement", "value"] == pytest.approx(0.95)
    assert not _mnist_checks(images, labels, pool, labels, labels, agree_share=1.0).loc[
        "mnist_vote_agreement", "holds"
    ]
