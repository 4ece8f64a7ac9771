"""Entropy, human mode ties, item/annotator statistics and Krippendorff's alpha."""

import numpy as np
import pandas as pd

from soft_label_audit.crowd import statistics
from soft_label_audit.crowd.aggregation import aggregate
from soft_label_audit.human_labels import entropy


def test_entropy_in_nats():
    h = np.array([[0.5, 0.5] + [0] * 9, [1.0] + [0] * 10, [1 / 11] * 11])
    np.testing.assert_allclose(entropy(h), [np.log(2), 0.0, np.log(11)])


def test_mode_ties_prefer_the_original_label_else_the_lowest_digit():
    h = np.zeros((3, 10))
    h[0, [3, 5]] = 0.5
    h[1, [3, 5]] = 0.5
    h[2, [3, 5]] = [0.4, 0.6]
    assert statistics.human_mode(h, np.array([5, 8, 3])).tolist() == [5, 3, 5]


def test_krippendorff_alpha_matches_the_hand_computed_value():
    # 2 annotators x 4 items, nominal: pairs (0,0) (1,1) (0,1) (1,1)
    # coincidences: o00=2, o11=4, o01=o10=1; n=8, n0=3, n1=5
    # D_o = 2/8; D_e = 2*3*5/(8*7); alpha = 1 - D_o/D_e = 1 - (1/4)/(30/56) = 8/15
    votes = pd.DataFrame(
        {"item_id": [1, 1, 2, 2, 3, 3, 4, 4], "annotator_id": ["a", "b"] * 4, "choice": ["0", "0", "1", "1", "0", "1", "1", "1"], "unsure": False}
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
    study = pd.DataFrame({"item_id": [1, 2], "source": ["mnist", "synthetic"], "split": ["train", "test"], "original_label": [4, 4]})
    h = aggregate(votes, "vote_share")
    items = statistics.item_statistics(h, study, votes)
    assert items["unanimous"].tolist() == [True, False]
    assert items["human_mode"].tolist() == [4, 9]
    assert items["mode_shift"].tolist() == [False, True]
    np.testing.assert_allclose(items["pct_unsure"], [0, 1 / 3])
    np.testing.assert_allclose(items["human_entropy"], [0, -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3))])
    assert str(items["n_votes"].dtype) == "Int64"
    ann = statistics.annotator_statistics(votes, h, agreement_below=0.75).set_index("annotator_id")
    assert ann.loc["c", "agreement_with_aggregate"] == 0.5 and ann.loc["c", "suspect"]
    assert ann.loc["a", "agreement_with_aggregate"] == 1.0 and not ann.loc["a", "suspect"]
    summary = statistics.agreement_summary(votes, items).set_index("scope")
    assert summary.loc["all", "n_votes"] == 6 and summary.loc["mnist", "unanimous_share"] == 1.0
