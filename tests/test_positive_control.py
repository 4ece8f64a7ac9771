"""The positive control (issue 22): on a study where a fifth of the MNIST training items carry
a flipped label that the crowd sees through, the testbed finds what is known to be true.

The slow test runs ``kedro run --env positive_control`` (about a minute) and asserts the three
outcomes with the margins of ``positive_control.EXPECTED``; the others pin how the outcomes
are computed on hand-made tables, and that a testbed blind to the flips misses them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soft_label_audit import positive_control as pc


def _tables(mode_follows_truth: bool = True, gain: float = 0.1, flipped_hard: bool = True):
    """Four training items, two of them flipped (4 -> 9, 3 -> 5), two seeds."""
    study_items = pd.DataFrame(
        {
            "item_id": [1, 2, 3, 4, 5],
            "source": "mnist",
            "split": ["train"] * 4 + ["test"],
            "original_label": [9, 5, 1, 7, 2],
            "true_label": [4, 3, 1, 7, 2],
            "label_flipped": [True, True, False, False, False],
        }
    )
    mode = study_items["true_label"] if mode_follows_truth else study_items["original_label"]
    item_stats = study_items[["item_id"]].assign(human_mode=mode.to_numpy())
    item_stats.loc[1, "human_mode"] = 8  # one flipped item's mode is neither label
    metrics = pd.DataFrame(
        {
            "source": "mnist",
            "condition": ["original_hard"] * 2 + ["human_mode_hard"] * 2,
            "seed": [0, 1, 0, 1],
            "pool__accuracy": [0.80, 0.70, 0.80 + gain, 0.70 + gain / 2],
        }
    )
    region = ["hard", "hard", "easy", "easy"] if flipped_hard else ["easy"] * 4
    cartography = pd.DataFrame(
        {
            "condition": "original_hard",
            "seed": np.repeat([0, 1], 4),
            "item_id": [1, 2, 3, 4] * 2,
            "region_original": region + ["ambiguous", "easy", "hard", "easy"],
        }
    )
    # another condition's rows must not count
    other = cartography.assign(condition="human_mode_hard", region_original="hard")
    return study_items, item_stats, metrics, pd.concat([cartography, other], ignore_index=True)


def test_the_outcomes_on_hand_made_tables():
    study_items, item_stats, metrics, cartography = _tables()
    # a source without flipped items has no known pool gain: it is left out
    unflipped_source = metrics.assign(source="synthetic", pool__accuracy=[0.9, 0.9, 0.5, 0.5])
    metrics = pd.concat([metrics, unflipped_source], ignore_index=True)
    found = pc.outcomes(study_items, item_stats, metrics, cartography)
    assert found.n_flipped == 2
    assert found.recovered_share == 0.5 and found.kept_wrong_share == 0.0
    assert found.pool_gain == {"mnist": pytest.approx(0.075)}
    assert found.pool_gain_by_seed["mnist"] == pytest.approx([0.1, 0.05])
    # flipped: hard, hard (seed 0), ambiguous, easy (seed 1); unflipped: easy, easy, hard, easy
    assert found.hard_share_flipped == 0.5 and found.hard_share_unflipped == 0.25
    assert len(found.lines()) == 4


@pytest.mark.parametrize(
    "broken, missed",
    [
        ({"mode_follows_truth": False}, "recovery"),
        ({"gain": -0.01}, "pool gain"),
        ({"flipped_hard": False}, "cartography"),
    ],
)
def test_a_testbed_blind_to_the_flips_misses_the_outcome(broken, missed):
    found = pc.outcomes(*_tables(**broken))
    holds = {name: ok for name, _, ok in pc.verdicts(found)}
    assert not holds[missed]


def test_a_study_without_flips_is_not_a_positive_control():
    study_items, item_stats, metrics, cartography = _tables()
    with pytest.raises(pc.NotAPositiveControlError, match="label_noise.share > 0"):
        pc.outcomes(study_items.iloc[:, :4], item_stats, metrics, cartography)
    with pytest.raises(pc.NotAPositiveControlError, match="human_mode_hard"):
        pc.outcomes(
            study_items, item_stats, metrics[metrics.condition != "human_mode_hard"], cartography
        )


def test_the_environment_flips_a_fifth_of_the_mnist_training_items():
    from soft_label_audit.parameter_tree import read_parameters
    from tests.conftest import PROJECT_ROOT
    from tests.helpers import config_loader, data_root

    params = config_loader(PROJECT_ROOT, "positive_control")["parameters"]
    tree = read_parameters(params)
    assert tree["study"].sources == ("mnist",)
    assert set(tree["study"].conditions) == {pc.CONDITION, pc.BASELINE}
    assert tree["digits"].study.label_noise.share == 0.2
    assert data_root(PROJECT_ROOT, "positive_control").name == "positive_control"
    base = config_loader(PROJECT_ROOT, "base")["parameters"]
    assert base["digits"]["study"]["label_noise"]["share"] == 0.0  # the default study is clean


@pytest.mark.slow
def test_the_positive_control_finds_the_known_answer(tmp_path, mnist_raw_dir, monkeypatch):
    """``kedro run --env positive_control``: 120 of 600 MNIST training items flipped."""
    from kedro.io import DataCatalog

    from tests.helpers import config_loader, kedro_cli, make_project_copy

    project = make_project_copy(tmp_path, mnist_raw_dir)
    result = kedro_cli(project, "run", "--env", "positive_control", timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    monkeypatch.chdir(project)  # the catalog's paths are relative to the project
    catalog = DataCatalog.from_config(config_loader(project, "positive_control")["catalog"])
    found = pc.outcomes_from_catalog(catalog)
    assert found.n_flipped == 120
    assert {name: ok for name, _, ok in pc.verdicts(found)} == {
        "recovery": True,
        "pool gain": True,
        "cartography": True,
    }, found.lines()
    # the claim the control was built for is found supported, on its own data root only
    claims = catalog.load("claims")
    assert claims.set_index("claim").loc["b_mode_shift", "verdict"] == "supported"
    assert not (project / "data" / "08_reporting" / "claims.csv").exists()
