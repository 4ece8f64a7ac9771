import numpy as np
import pytest

from soft_label_audit.metrics.bands import difficulty_band


def test_bands_follow_the_thresholds_inclusively():
    e = np.array([0.0, 1e-12, 0.3, 0.5, 0.5000001, 2.0])
    assert difficulty_band(e, 1e-9, 0.5).tolist() == [
        "unanimous",
        "unanimous",
        "low",
        "low",
        "high",
        "high",
    ]


@pytest.mark.parametrize("thresholds", [(0.5, 0.5), (0.6, 0.5), (-0.1, 0.5)])
def test_inconsistent_thresholds_are_refused(thresholds):
    with pytest.raises(ValueError, match="thresholds"):
        difficulty_band(np.zeros(3), *thresholds)


def test_missing_entropy_is_refused():
    with pytest.raises(ValueError, match="finite"):
        difficulty_band(np.array([0.1, np.nan]), 1e-9, 0.5)
