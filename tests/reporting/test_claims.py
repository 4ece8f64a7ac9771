"""Multiple-testing corrections, the verdict rule, power, spread ratios and the claims table."""

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.reporting import claims, claims_report, multiple, stability


def test_holm_against_hand_computed_values():
    # sorted p: 0.01, 0.02, 0.03, 0.5 (m = 4): 0.04, 0.06, 0.06 (monotone), 0.5
    p = [0.03, 0.01, 0.5, 0.02]
    np.testing.assert_allclose(multiple.holm(p), [0.06, 0.04, 0.5, 0.06])
    assert np.isnan(multiple.holm([0.01, np.nan])[1])
    assert multiple.holm([0.01, np.nan])[0] == pytest.approx(0.01)  # NaN not counted in m
    assert multiple.holm([0.4, 0.3, 0.6]).max() <= 1.0
    with pytest.raises(ValueError, match="lie in"):
        multiple.holm([1.2])


def test_benjamini_hochberg_against_hand_computed_values():
    # sorted p: 0.01, 0.02, 0.03, 0.5 (m = 4): 0.04, 0.04, 0.04, 0.5 after the step-up minimum
    p = [0.03, 0.01, 0.5, 0.02]
    np.testing.assert_allclose(multiple.benjamini_hochberg(p), [0.04, 0.04, 0.5, 0.04])
    np.testing.assert_allclose(
        multiple.benjamini_hochberg([0.01, 0.04, np.nan]), [0.02, 0.04, np.nan]
    )


@pytest.mark.parametrize(
    ("low", "high", "p", "direction", "expected"),
    [
        (0.01, 0.03, 0.01, "increase", "supported"),
        (0.01, 0.03, 0.01, "decrease", "contradicted"),
        (-0.03, -0.01, 0.01, "decrease", "supported"),
        (-0.03, -0.01, 0.01, "increase", "contradicted"),
        (-0.01, 0.03, 0.01, "increase", "inconclusive"),  # interval reaches 0
        (0.01, 0.03, 0.2, "increase", "inconclusive"),  # adjusted p too large
        (0.01, 0.03, np.nan, "increase", "inconclusive"),
    ],
)
def test_verdict_rule(low, high, p, direction, expected):
    assert claims.verdict(low, high, p, direction, alpha=0.05) == expected


def test_verdict_rule_of_a_ratio_uses_its_null_value():
    assert claims.verdict(0.4, 0.9, 0.01, "decrease", 0.05, null=1.0) == "supported"
    assert claims.verdict(0.4, 1.2, 0.01, "decrease", 0.05, null=1.0) == "inconclusive"
    with pytest.raises(ValueError, match="direction"):
        claims.verdict(0.1, 0.2, 0.01, "up", 0.05)


def test_std_relative_error_and_detectable_spread_ratio():
    assert stability.std_relative_error(6) == pytest.approx(1 / np.sqrt(10))
    r6, r20 = (
        stability.detectable_spread_ratio(6, 0.05),
        stability.detectable_spread_ratio(20, 0.05),
    )
    assert 0 < r6 < r20 < 1


def test_spread_ratio_interval_covers_the_observed_ratio_and_is_seeded():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1.0, 8)
    cond = 0.5 * base + rng.normal(0, 0.05, 8)
    a = stability.spread_ratio(cond, base, 500, 1)
    b = stability.spread_ratio(cond, base, 500, 1)
    assert a["ratio"] == pytest.approx(np.std(cond, ddof=1) / np.std(base, ddof=1))
    assert a["ratio_low"] <= a["ratio"] <= a["ratio_high"]
    assert a["ratio_high"] < 1 and a["p_value"] < 0.05
    assert (a["ratio_low"], a["ratio_high"]) == (b["ratio_low"], b["ratio_high"])


def test_claims_markdown_renders_every_row():
    frame = pd.DataFrame(
        {
            "claim": ["a_accuracy", "a_accuracy", "b_mode_shift"],
            "source": ["mnist", "synthetic", "mnist"],
            "metric": ["accuracy"] * 3,
            "comparison": ["human_soft - original_hard"] * 2 + ["human_mode_hard - original_hard"],
            "effect": [0.012, -0.0004, 1.85e-17],
            "ci_low": [0.002, -0.01, -0.019],
            "ci_high": [0.02, 0.009, 0.019],
            "p_adjusted": [0.03, 1.0, 1.0],
            "verdict": ["supported", "inconclusive", "inconclusive"],
        }
    )
    text = claims_report.claims_markdown(frame)
    lines = text.strip().splitlines()
    assert len(lines) == 5 and lines[0].startswith("| claim | source")
    assert (
        "| a_accuracy | mnist | `accuracy` | human_soft - original_hard | 0.012 | [0.002, 0.020] | 0.030 | "
        "**supported** |" == lines[2]
    )
    assert "-0.0004" in lines[3] and "**inconclusive**" in lines[3]
    # two equal means differ by float rounding only: no effect of 1.85e-17 in the README
    assert "| 0.000 | [-0.019, 0.019] |" in lines[4] and "e-17" not in text
    with pytest.raises(ValueError, match="lacks columns"):
        claims_report.claims_markdown(frame.drop(columns="verdict"))
