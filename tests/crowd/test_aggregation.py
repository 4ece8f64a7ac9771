"""Aggregation rules against hand-computed examples; Dawid-Skene is crowd-kit's."""

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.columns import H_COLS
from soft_label_audit.crowd.aggregation import (
    RULES,
    DawidSkeneSoft,
    VoteShare,
    aggregate,
)
from soft_label_audit.parameter_tree import base_block

VOTES = pd.DataFrame(
    {
        "item_id": [1, 1, 1, 1, 2, 2],
        "annotator_id": ["a", "b", "c", "d", "a", "b"],
        "choice": ["4", "4", "9", "none", "7", "7"],
        "unsure": [False, True, True, False, False, False],
    }
)


def row(table, item):
    return table.set_index("item_id").loc[item, list(H_COLS)].to_numpy(float)


def test_vote_share_counts_unsure_votes_as_sure():
    h = aggregate(VOTES, "vote_share")
    expected = np.zeros(11)
    expected[4], expected[9], expected[10] = 0.5, 0.25, 0.25
    np.testing.assert_allclose(row(h, 1), expected)
    np.testing.assert_allclose(row(h, 2), np.eye(11)[7])
    assert set(h["aggregation"]) == {"vote_share"}


def test_unsure_mass_moves_to_none():
    h = aggregate(VOTES, "vote_share_unsure_to_none")
    expected = np.zeros(11)
    expected[4], expected[10] = 0.25, 0.75  # one sure 4; unsure 4, unsure 9 and "none" -> none
    np.testing.assert_allclose(row(h, 1), expected)


def test_dawid_skene_is_a_distribution_over_eleven_slots_and_discounts_a_spammer():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 10, 60)
    rows = []
    for item, t in enumerate(truth):
        for worker in ("good1", "good2", "good3"):
            rows.append((item, worker, str(t)))
        rows.append((item, "spammer", str(rng.integers(0, 10))))
        rows.append((item, "spammer2", str(rng.integers(0, 10))))
    votes = pd.DataFrame(rows, columns=["item_id", "annotator_id", "choice"]).assign(unsure=False)
    model = DawidSkeneSoft().fit(votes)
    probas = model.probas_
    assert list(probas.columns) == list(H_COLS)
    np.testing.assert_allclose(probas.sum(axis=1), 1.0)
    assert (probas.to_numpy()[:, :10].argmax(axis=1) == truth).all()
    # DS is more certain than the raw vote share, which keeps the spammers' 2/5
    share = VoteShare().fit_predict_proba(votes)
    assert (probas.max(axis=1) >= share.max(axis=1) - 1e-9).all()
    assert probas.index.dtype == np.int64


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_sums_to_one(rule):
    # (a table that does not is refused by the human_soft_labels_by_rule contract:
    # tests/test_contracts.py)
    values = aggregate(VOTES, rule, base_block("annotation.dawid_skene"))[list(H_COLS)]
    values = values.to_numpy(float)
    assert np.isfinite(values).all() and (values >= 0).all()
    np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-9)


def test_unknown_rule():
    with pytest.raises(ValueError, match="unknown aggregation rule"):
        aggregate(VOTES, "median")
