import numpy as np
import pytest

from soft_label_audit.metrics import cartography
from tests.metrics.conftest import random_probs


def test_coordinates_against_per_item_loops():
    rng = np.random.default_rng(2)
    s, e, n = 2, 5, 30
    probs = random_probs(rng, s * e * n).reshape(s, e, n, 10).astype(np.float32)
    y = rng.integers(0, 10, n)
    coords = cartography.coordinates(probs, y)
    for si in range(s):
        for i in range(n):
            traj = [float(probs[si, ep, i, y[i]]) for ep in range(e)]
            mean = sum(traj) / e
            assert coords.confidence[si, i] == pytest.approx(mean, abs=1e-7)
            assert coords.variability[si, i] == pytest.approx(
                (sum((t - mean) ** 2 for t in traj) / e) ** 0.5, abs=1e-7
            )
            hits = sum(int(np.argmax(probs[si, ep, i]) == y[i]) for ep in range(e))
            assert coords.correctness[si, i] == pytest.approx(hits / e)


def test_variability_is_the_population_std():
    probs = np.zeros((1, 2, 1, 10))
    probs[0, 0, 0, 0], probs[0, 0, 0, 1] = 1.0, 0.0
    probs[0, 1, 0, 0], probs[0, 1, 0, 1] = 0.0, 1.0
    coords = cartography.coordinates(probs, np.array([0]))
    assert coords.confidence[0, 0] == 0.5
    assert coords.variability[0, 0] == 0.5  # ddof=0; the sample std would be 0.707
    assert coords.correctness[0, 0] == 0.5


def test_regions_and_shares():
    conf = np.array([0.9, 0.9, 0.2, 0.2])
    var = np.array([0.05, 0.3, 0.05, 0.25])
    region = cartography.regions(conf, var, easy_min_confidence=0.5, ambiguous_min_variability=0.2)
    assert region.tolist() == ["easy", "ambiguous", "hard", "ambiguous"]
    assert cartography.region_shares(region) == {"easy": 0.25, "ambiguous": 0.5, "hard": 0.25}


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="seeds, epochs, items, classes"):
        cartography.coordinates(np.zeros((2, 3, 10)), np.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        cartography.coordinates(np.full((1, 1, 2, 10), 0.1), np.array([0, 10]))


@pytest.mark.parametrize(
    ("epochs", "fraction", "expected"),
    [(12, 0.2, 2), (10, 0.2, 2), (2, 0.2, 0), (1, 0.9, 0), (5, 0.0, 0)],
)
def test_burn_in_keeps_at_least_one_epoch(epochs, fraction, expected):
    assert cartography.burn_in_epochs(epochs, fraction) == expected


def test_burn_in_fraction_must_leave_epochs():
    with pytest.raises(ValueError, match="burn_in_fraction"):
        cartography.burn_in_epochs(10, 1.0)
