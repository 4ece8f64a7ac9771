"""Aggregation rules against hand-computed examples; Dawid-Skene is crowd-kit's."""

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.columns import H_COLS
from soft_label_audit.crowd.aggregation import (
    RULES,
    AggregationAssumptionError,
    Assumptions,
    DawidSkeneSoft,
    VoteShare,
    aggregate,
    check_assumptions,
    require_assumptions,
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


def _one_vote_per_annotator(n_items: int = 30, votes_per_item: int = 5) -> pd.DataFrame:
    """The annotation tool's open crowd: every vote from a new annotator."""
    rng = np.random.default_rng(1)
    rows = [
        (item, f"w{item}_{k}", str(item % 10 if rng.random() < 0.8 else rng.integers(0, 10)))
        for item in range(n_items)
        for k in range(votes_per_item)
    ]
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "choice"]).assign(unsure=False)


def _few_annotators_many_votes(annotators_per_item: int) -> pd.DataFrame:
    """Five annotators, each voting on most of 60 items, ``annotators_per_item`` per item."""
    rows = [
        (item, f"a{(item + k) % 5}", str(item % 10))
        for item in range(60)
        for k in range(annotators_per_item)
    ]
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "choice"]).assign(unsure=False)


DS = base_block("annotation.dawid_skene")


def test_dawid_skene_assumptions_fail_with_one_vote_per_annotator():
    votes = _one_vote_per_annotator()
    checked = check_assumptions(votes, "dawid_skene", DS)
    assert not checked.ok
    assert "median votes per annotator 1 < 11" in checked.note
    assert "per item" not in checked.note  # five votes per item are enough there
    for rule in ("vote_share", "vote_share_yes_only", "vote_share_unsure_to_none"):
        assert check_assumptions(votes, rule, DS) == Assumptions(True, "")
    assert check_assumptions(votes, "released:soft_label", DS).ok


def test_dawid_skene_assumptions_need_three_annotators_per_item():
    assert check_assumptions(_few_annotators_many_votes(3), "dawid_skene", DS).ok  # 36 each
    two = check_assumptions(_few_annotators_many_votes(2), "dawid_skene", DS)
    assert not two.ok and two.note.startswith("median votes per item 2 < 3")
    strict = {**DS, "min_median_votes_per_annotator": 40}
    assert (
        "median votes per annotator 36 < 40"
        in check_assumptions(_few_annotators_many_votes(3), "dawid_skene", strict).note
    )


def test_a_rule_whose_assumptions_fail_is_computed_with_a_warning_and_refused_as_the_choice(
    caplog,
):
    votes = _one_vote_per_annotator()
    with caplog.at_level("WARNING", logger="soft_label_audit.crowd.aggregation"):
        h = aggregate(votes, "dawid_skene", DS)
    assert len(h) == 30  # still there for comparison in human_soft_labels_by_rule
    assert any(
        "dawid_skene" in r.message and "assumptions fail" in r.message for r in caplog.records
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="soft_label_audit.crowd.aggregation"):
        aggregate(votes, "vote_share", DS)
    assert not caplog.records
    with pytest.raises(
        AggregationAssumptionError, match="annotation.aggregation is dawid_skene"
    ) as info:
        require_assumptions(votes, "dawid_skene", DS)
    assert "annotation.aggregation=vote_share" in info.value.fix
    require_assumptions(votes, "vote_share", DS)
    require_assumptions(_few_annotators_many_votes(3), "dawid_skene", DS)


def _study_of(votes: pd.DataFrame) -> pd.DataFrame:
    items = np.unique(votes["item_id"])
    return pd.DataFrame(
        {
            "item_id": items,
            "source": "mnist",
            "split": "train",
            "original_label": items % 10,
            "annotation_source": "raw_file",
        }
    )


def test_mode_shifts_by_rule_flags_the_rules_whose_assumptions_fail(caplog):
    from soft_label_audit.pipelines.labels.nodes import count_mode_shifts_by_rule

    votes = _one_vote_per_annotator()
    by_rule = pd.concat([aggregate(votes, r, DS) for r in ("dawid_skene", "vote_share")])
    with caplog.at_level("WARNING", logger="soft_label_audit.pipelines.labels.nodes"):
        table = count_mode_shifts_by_rule(
            by_rule,
            _study_of(votes),
            votes,
            "spread",
            {"min_vote_share": 0.5, "min_sure_votes": 3},
            DS,
        ).set_index("aggregation")
    assert table["assumptions_ok"].to_dict() == {"dawid_skene": False, "vote_share": True}
    assert "median votes per annotator 1 < 11" in table.loc["dawid_skene", "assumption_note"]
    assert table.loc["vote_share", "assumption_note"] == ""
    warned = [r.getMessage() for r in caplog.records if r.name.endswith("labels.nodes")]
    assert len(warned) == 1 and "mode shifts (dawid_skene, mnist)" in warned[0]
    # what the flag warns of: unidentified, Dawid-Skene moves the argmax off most labels
    moved = table["argmax_not_original"]
    assert moved["dawid_skene"] > 15 and moved["dawid_skene"] > 3 * moved["vote_share"]


def test_dawid_skene_cannot_be_the_chosen_rule_where_its_assumptions_fail():
    from soft_label_audit.pipelines.annotation.nodes import aggregate_soft_labels
    from tests.crowd.data import annotation_params

    votes = _one_vote_per_annotator()
    study = _study_of(votes)
    params = annotation_params(source="raw_file", aggregation="dawid_skene")
    with pytest.raises(AggregationAssumptionError, match="median votes per annotator 1 < 11"):
        aggregate_soft_labels(votes, pd.DataFrame(), study, params)
    # vote_share on the same votes goes through, Dawid-Skene still among the compared rules
    table = aggregate_soft_labels(
        votes, pd.DataFrame(), study, {**params, "aggregation": "vote_share"}
    )
    assert set(table["aggregation"]) == {"vote_share", "vote_share_unsure_to_none", "dawid_skene"}
