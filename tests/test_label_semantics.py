"""What the votes mean, end to end on hand-made votes: "can't tell" stays uncertain (the
default ``labels.none_slot``), and every condition that carries the human mode shifts the same
items (``item_stats.mode_shift``), in the targets and in the metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from soft_label_audit import targets as tg
from soft_label_audit.columns import H_COLS, T_COLS
from soft_label_audit.crowd import statistics
from soft_label_audit.crowd.aggregation import aggregate
from soft_label_audit.metrics.bands import difficulty_band
from soft_label_audit.pipelines.labels.nodes import build_condition_targets, summarise_targets
from tests.conftest import PROJECT_ROOT


def _conf(name: str) -> dict:
    return yaml.safe_load((PROJECT_ROOT / f"conf/base/parameters_{name}.yml").read_text())


NONE_SLOT = _conf("labels")["labels"]["none_slot"]
MODE_SUPPORT = _conf("annotation")["annotation"]["mode_support"]
BANDS = _conf("evaluation")["evaluation"]["bands"]
#: conditions whose builder reads only the human label and the mode
HUMAN_CONDITIONS = ("original_hard", "human_mode_hard", "human_soft", "human_soft_mode_aligned")


def _votes(rows: list[tuple[int, str, bool]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [r[0] for r in rows],
            "annotator_id": [f"a{i}" for i in range(len(rows))],
            "choice": [r[1] for r in rows],
            "unsure": [r[2] for r in rows],
            "response_time": 1.0,
        }
    )


# item 1: 2 sure "6", 3 "none" (original 6)
# item 2: no vote for its label 7, 2 sure "1", 3 "none"
# item 3: all five votes "none" (original 4)
# item 4: five sure "3" (original 3): unanimous
# item 5: six sure "2", one "5" (original 5): a shift the votes support
# item 6: 3 sure "8", 1 "none" (original 8), 7: 4 sure "0" (original 0): fill the splits
VOTES = _votes(
    [(1, "6", False)] * 2
    + [(1, "none", False)] * 3
    + [(2, "1", False)] * 2
    + [(2, "none", False)] * 3
    + [(3, "none", False)] * 5
    + [(4, "3", False)] * 5
    + [(5, "2", False)] * 6
    + [(5, "5", False)]
    + [(6, "8", False)] * 3
    + [(6, "none", False)]
    + [(7, "0", False)] * 4
)
STUDY = pd.DataFrame(
    {
        "item_id": [1, 2, 3, 4, 5, 6, 7],
        "source": "mnist",
        "split": ["train", "train", "train", "train", "train", "val", "test"],
        "original_label": [6, 7, 4, 3, 5, 8, 0],
        "machine_soft_label": None,
    }
)
NONE_MAJORITY = [1, 2, 3]


@pytest.fixture(scope="module")
def tables():
    h = aggregate(VOTES, "vote_share").assign(annotation_source="raw_file")
    stats = statistics.item_statistics(
        h, STUDY, VOTES, none_slot=NONE_SLOT, mode_support=MODE_SUPPORT
    )
    targets = {
        c: build_condition_targets(STUDY, {}, NONE_SLOT, h, stats, source="mnist", condition=c)
        for c in HUMAN_CONDITIONS
    }
    return h, stats.set_index("item_id"), targets


def test_the_default_keeps_cant_tell_uncertain():
    assert NONE_SLOT == "spread"
    # renormalise would make item 1 (2 "6", 3 "none") a certain, unanimous item
    h = aggregate(VOTES, "vote_share").set_index("item_id").loc[[1], list(H_COLS)].to_numpy()
    assert tg.human_digits(h, "renormalise")[0, 6] == 1.0
    assert tg.human_digits(h, NONE_SLOT)[0, 6] == pytest.approx(0.46)


def test_an_item_most_people_could_not_read_is_neither_certain_nor_easy(tables):
    h, stats, targets = tables
    assert (stats.loc[NONE_MAJORITY, "h_none"] >= 0.5).all()
    band = pd.Series(
        difficulty_band(
            stats["human_entropy"].to_numpy(), BANDS["unanimous_max"], BANDS["low_max"]
        ),
        index=stats.index,
    )
    assert band.loc[NONE_MAJORITY].tolist() == ["high"] * 3
    assert band.loc[[4, 5, 7]].tolist() == ["unanimous", "low", "unanimous"]
    assert stats.loc[3, "human_entropy"] == pytest.approx(np.log(10))  # all "none": uniform
    for condition in ("human_soft", "human_soft_mode_aligned"):
        t = targets[condition].set_index("item_id").loc[NONE_MAJORITY, list(T_COLS)].to_numpy()
        assert t.max(1).max() <= 0.55 + 1e-12, condition  # never a certain target
        # the bands' entropy is the entropy of the soft target the model trains on
        np.testing.assert_allclose(
            tg.entropy(t), stats.loc[NONE_MAJORITY, "human_entropy"], atol=1e-12
        )


def test_the_human_mode_the_targets_and_the_stats_agree_on_unsupported_items(tables):
    _, stats, targets = tables
    # item 2's votes name "1" twice of five: unsupported, so its mode stays its label 7
    assert stats.loc[2, "human_argmax"] == 1 and stats.loc[2, "mode_unsupported"]
    assert stats.loc[2, "human_mode"] == 7 and not stats.loc[2, "mode_shift"]
    assert stats.loc[[1, 3], "mode_unsupported"].all()
    assert stats.loc[[1, 3], "human_mode"].tolist() == [6, 4]
    expected = {
        "human_mode_hard": stats["human_mode"],
        "human_soft": stats["human_mode"],
        "human_soft_mode_aligned": stats["original_label"],  # no shift, supported or not
    }
    for condition, top_label in expected.items():
        t = targets[condition].set_index("item_id").loc[stats.index, list(T_COLS)].to_numpy()
        unique = np.sort(t, 1)[:, -1] > np.sort(t, 1)[:, -2] + 1e-12
        assert unique[stats.index != 3].all()  # only the all-"none" item is a tie (uniform)
        np.testing.assert_array_equal(
            t.argmax(1)[unique], top_label.to_numpy()[unique], err_msg=condition
        )
    soft = targets["human_soft"].set_index("item_id")
    assert soft.loc[2, "t_7"] == pytest.approx(0.46) and soft.loc[2, "t_1"] == pytest.approx(0.06)


def test_conditions_carrying_the_human_mode_shift_exactly_the_same_items(tables):
    _, stats, targets = tables
    supported = set(stats.index[stats["mode_shift"]])
    assert supported == {5}
    o = stats["original_label"]
    for condition in HUMAN_CONDITIONS:
        t = targets[condition]
        moved = tg.argmax_not_original(t[list(T_COLS)].to_numpy(), o.loc[t["item_id"]].to_numpy())
        expected = supported if tg.builder_for(condition).carries_mode else set()
        assert set(t["item_id"][moved]) == expected, condition
    summary = summarise_targets(
        STUDY, *targets.values(), keys=[("mnist", c) for c in HUMAN_CONDITIONS]
    ).set_index(["condition", "split"])
    counts = summary.xs("all", level="split")["n_argmax_not_original"]
    assert counts.to_dict() == {
        "original_hard": 0,
        "human_mode_hard": 1,
        "human_soft": 1,
        "human_soft_mode_aligned": 0,
    }


def test_the_summary_refuses_mode_carriers_that_shift_different_items(tables):
    _, _, targets = tables
    raw_h = targets["human_soft"].copy()
    raw_h.loc[raw_h["item_id"] == 2, list(T_COLS)] = np.eye(10)[1]  # the unsupported argmax
    with pytest.raises(ValueError, match="carry the human mode shift different items"):
        summarise_targets(
            STUDY,
            targets["human_mode_hard"],
            raw_h,
            keys=[("mnist", "human_mode_hard"), ("mnist", "human_soft")],
        )
