"""Entropy, human mode ties, item/annotator statistics and Krippendorff's alpha."""

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.crowd import statistics
from soft_label_audit.crowd.aggregation import aggregate
from soft_label_audit.human_labels import entropy

#: a human mode needs half the votes and one sure vote
ONE_SURE_VOTE = {"min_vote_share": 0.5, "min_sure_votes": 1}


def test_entropy_in_nats():
    h = np.array([[0.5, 0.5] + [0] * 9, [1.0] + [0] * 10, [1 / 11] * 11])
    np.testing.assert_allclose(entropy(h), [np.log(2), 0.0, np.log(11)])


def test_argmax_ties_prefer_the_original_label_else_the_lowest_digit():
    h = np.zeros((3, 10))
    h[0, [3, 5]] = 0.5
    h[1, [3, 5]] = 0.5
    h[2, [3, 5]] = [0.4, 0.6]
    assert statistics.human_argmax(h, np.array([5, 8, 3])).tolist() == [5, 3, 5]


def test_krippendorff_alpha_matches_the_hand_computed_value():
    # 2 annotators x 4 items, nominal: pairs (0,0) (1,1) (0,1) (1,1)
    # coincidences: o00=2, o11=4, o01=o10=1; n=8, n0=3, n1=5
    # D_o = 2/8; D_e = 2*3*5/(8*7); alpha = 1 - D_o/D_e = 1 - (1/4)/(30/56) = 8/15
    votes = pd.DataFrame(
        {
            "item_id": [1, 1, 2, 2, 3, 3, 4, 4],
            "annotator_id": ["a", "b"] * 4,
            "choice": ["0", "0", "1", "1", "0", "1", "1", "1"],
            "unsure": False,
        }
    )
    assert abs(statistics.krippendorff_alpha(votes) - 8 / 15) < 1e-9


def test_item_and_annotator_statistics():
    votes = pd.DataFrame(
        {
            "item_id": [1, 1, 1, 2, 2, 2],
            "annotator_id": ["a", "b", "c", "a", "b", "c"],
            "choice": ["4", "4", "4", "9", "9", "4"],
            "unsure": [False, False, False, False, True, False],
            "response_time": [1.0, 2.0, 3.0, 1.0, 2.0, 3.0],
        }
    )
    study = pd.DataFrame(
        {
            "item_id": [1, 2],
            "source": ["mnist", "synthetic"],
            "split": ["train", "test"],
            "original_label": [4, 4],
        }
    )
    h = aggregate(votes, "vote_share")
    items = statistics.item_statistics(h, study, votes, mode_support=ONE_SURE_VOTE)
    assert items["unanimous"].tolist() == [True, False]
    assert items["human_mode"].tolist() == [4, 9]
    assert items["mode_shift"].tolist() == [False, True]
    np.testing.assert_allclose(items["pct_unsure"], [0, 1 / 3])
    np.testing.assert_allclose(
        items["human_entropy"], [0, -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3))]
    )
    assert str(items["n_votes"].dtype) == "Int64"
    ann = statistics.annotator_statistics(votes, h, agreement_below=0.75).set_index("annotator_id")
    assert ann.loc["c", "agreement_with_aggregate"] == 0.5 and ann.loc["c", "suspect"]
    assert ann.loc["a", "agreement_with_aggregate"] == 1.0 and not ann.loc["a", "suspect"]
    summary = statistics.agreement_summary(votes, items).set_index("scope")
    assert summary.loc["all", "n_votes"] == 6 and summary.loc["mnist", "unanimous_share"] == 1.0


def _votes(rows):
    """rows: (item_id, choice, unsure) triples; one annotator per vote."""
    return pd.DataFrame(
        {
            "item_id": [r[0] for r in rows],
            "annotator_id": [f"a{i}" for i in range(len(rows))],
            "choice": [r[1] for r in rows],
            "unsure": [r[2] for r in rows],
            "response_time": 1.0,
        }
    )


def test_an_all_none_item_is_uncertain_not_unanimous_and_its_entropy_is_its_targets():
    """Under either none-slot rule an all-"none" item is uniform; the default (spread) also
    keeps item 4 (two "none" votes of three) out of the unanimous band, where renormalise
    would have put it (tests/test_label_semantics.py has the default's other cases)."""
    from soft_label_audit.metrics.bands import difficulty_band
    from soft_label_audit.pipelines.labels.nodes import build_condition_targets

    votes = _votes(
        [(1, "none", False)] * 5
        + [(2, "3", False)] * 5
        + [(2, "5", True)]
        + [(3, "8", False)] * 3
        + [(4, "none", False), (4, "none", True), (4, "2", False)]
    )
    study = pd.DataFrame(
        {
            "item_id": [1, 2, 3, 4],
            "source": "mnist",
            "split": ["train", "train", "val", "test"],
            "original_label": [4, 3, 8, 2],
        }
    )
    h = aggregate(votes, "vote_share")
    expected = {
        "renormalise": ["high", "low", "unanimous", "unanimous"],
        "spread": ["high", "low", "unanimous", "high"],
    }
    for rule, bands_expected in expected.items():
        stats = statistics.item_statistics(
            h, study, votes, none_slot=rule, mode_support=ONE_SURE_VOTE
        )
        items = stats.set_index("item_id")
        assert items.loc[1, "human_entropy"] == pytest.approx(np.log(10))  # uniform target
        assert not items.loc[1, "unanimous"] and items.loc[3, "unanimous"]
        bands = difficulty_band(items["human_entropy"].to_numpy(), 1e-9, 0.5)
        assert bands.tolist() == bands_expected, rule
        targets = build_condition_targets(
            study.assign(machine_soft_label=None),
            {},
            rule,
            h,
            stats,
            source="mnist",
            condition="human_soft",
        ).set_index("item_id")
        np.testing.assert_allclose(
            items["human_entropy"],
            entropy(targets.loc[items.index].to_numpy()[:, 1:]),
            atol=1e-12,
        )


def test_a_mode_shift_needs_the_support_of_the_votes():
    # item 1: 9 of 10 votes none, one sure "7" (original 9): no supported mode
    # item 2: 6 of 10 votes for 4, three of them sure (original 9): a supported mode shift
    # item 3: 6 of 10 for 4 but only two sure: unsupported with min_sure_votes 3
    votes = _votes(
        [(1, "none", False)] * 6
        + [(1, "none", True)] * 3
        + [(1, "7", False)]
        + [(2, "4", False)] * 3
        + [(2, "4", True)] * 3
        + [(2, "9", False)] * 4
        + [(3, "4", False)] * 2
        + [(3, "4", True)] * 4
        + [(3, "9", False)] * 4
    )
    study = pd.DataFrame(
        {"item_id": [1, 2, 3], "source": "mnist", "split": "train", "original_label": [9, 9, 9]}
    )
    h = aggregate(votes, "vote_share")
    support = {"min_vote_share": 0.5, "min_sure_votes": 3}
    items = statistics.item_statistics(h, study, votes, mode_support=support).set_index("item_id")
    assert items["human_argmax"].tolist() == [7, 4, 4]
    assert items["human_mode"].tolist() == [9, 4, 9]
    assert items["mode_shift"].tolist() == [False, True, False]
    assert items["mode_unsupported"].tolist() == [True, False, True]


def test_the_default_aggregation_counts_unsure_votes_on_their_digit():
    import yaml

    from tests.conftest import PROJECT_ROOT

    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_annotation.yml").read_text())[
        "annotation"
    ]
    assert params["aggregation"] == "vote_share"
    assert {"vote_share_yes_only", "vote_share_unsure_to_none"} <= set(params["rules"])
    votes = _votes([(1, "9", True)] * 3 + [(1, "7", False)] + [(1, "none", False)])
    h = aggregate(votes, params["aggregation"]).iloc[0]
    assert (
        h["h_9"] == pytest.approx(0.6)
        and h["h_7"] == pytest.approx(0.2)
        and h["h_none"] == pytest.approx(0.2)
    )
    yes = aggregate(votes, "vote_share_yes_only").iloc[0]
    assert (
        yes["h_9"] == 0 and yes["h_7"] == pytest.approx(0.5) and yes["h_none"] == pytest.approx(0.5)
    )
    only_unsure = aggregate(_votes([(2, "3", True)] * 2), "vote_share_yes_only").iloc[0]
    assert only_unsure["h_none"] == 1.0
