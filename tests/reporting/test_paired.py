"""Paired differences over seeds and their t-intervals."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from soft_label_audit.reporting.paired import paired_differences, t_interval


def test_t_interval_matches_scipy():
    d = np.array([0.1, -0.05, 0.2, 0.07])
    mean, sd, low, high = t_interval(d, 0.95)
    ref = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert mean == pytest.approx(d.mean()) and sd == pytest.approx(d.std(ddof=1))
    assert (low, high) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_t_interval_of_one_seed_has_no_width():
    mean, sd, low, high = t_interval(np.array([0.3]))
    assert mean == 0.3 and np.isnan(sd) and np.isnan(low) and np.isnan(high)


def test_differences_are_paired_by_seed():
    # seed effects are large, the condition effect is a constant +1: pairing removes the seeds
    runs = pd.DataFrame(
        {
            "source": "mnist",
            "condition": ["original_hard"] * 3 + ["human_soft"] * 3,
            "seed": [2, 0, 1, 0, 1, 2],
            "m": [30.0, 10.0, 20.0, 11.0, 21.0, 31.0],
        }
    )
    out = paired_differences(runs, ["m"], ["original_hard"], 0.95)
    assert len(out) == 1
    row = out.iloc[0]
    assert (row["baseline"], row["condition"], row["n_pairs"]) == ("original_hard", "human_soft", 3)
    assert row["mean_diff"] == pytest.approx(1.0) and row["std_diff"] == pytest.approx(0.0)
    assert row["ci_low"] == pytest.approx(1.0) and row["ci_high"] == pytest.approx(1.0)


def test_every_condition_against_every_baseline_per_source():
    rng = np.random.default_rng(0)
    conditions = ["original_hard", "human_soft", "machine_soft"]
    runs = pd.DataFrame(
        [
            {"source": s, "condition": c, "seed": k, "a": rng.random(), "b": rng.random()}
            for s in ("mnist", "synthetic")
            for c in conditions
            for k in range(3)
        ]
    )
    out = paired_differences(runs, ["a", "b"], ["original_hard", "human_soft"])
    assert len(out) == 2 * 2 * 2 * 2  # sources x baselines x other conditions x metrics
    assert not ((out["baseline"] == out["condition"]).any())
    row = out[
        (out.source == "synthetic")
        & (out.baseline == "human_soft")
        & (out.condition == "machine_soft")
        & (out.metric == "a")
    ].iloc[0]
    a = runs.set_index(["source", "condition", "seed"])["a"].sort_index()
    d = a.loc["synthetic", "machine_soft"].to_numpy() - a.loc["synthetic", "human_soft"].to_numpy()
    ref = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ref.low, ref.high))


def test_a_missing_baseline_is_named():
    runs = pd.DataFrame({"source": "mnist", "condition": "human_soft", "seed": [0], "m": [1.0]})
    with pytest.raises(ValueError, match="original_hard"):
        paired_differences(runs, ["m"], ["original_hard"])
