"""Human-alignment metrics against scipy and direct formulas."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import rel_entr
from scipy.stats import entropy as scipy_entropy

from soft_label_audit.metrics import alignment
from tests.metrics.conftest import random_probs


@pytest.fixture
def pair():
    rng = np.random.default_rng(11)
    h = random_probs(rng, 200)
    h[:20] = np.eye(10)[rng.integers(0, 10, 20)]  # unanimous items: zeros in h
    return h, random_probs(rng, 200)


def test_entropy_matches_scipy(pair):
    h, _ = pair
    assert np.allclose(alignment.entropy(h), scipy_entropy(h, axis=1), atol=1e-12)


def test_kl_matches_scipy_rel_entr(pair):
    h, p = pair
    assert np.allclose(alignment.kl_divergence(h, p), rel_entr(h, p).sum(axis=1), atol=1e-10)


def test_cross_entropy_is_entropy_plus_kl(pair):
    h, p = pair
    expected = scipy_entropy(h, axis=1) + scipy_entropy(h, p, axis=1)
    assert np.allclose(alignment.cross_entropy(h, p), expected, atol=1e-10)


def test_total_variation_and_entropy_gap(pair):
    h, p = pair
    tv = np.array([0.5 * sum(abs(a - b) for a, b in zip(hi, pi)) for hi, pi in zip(h, p)])
    assert np.allclose(alignment.total_variation(h, p), tv, atol=1e-12)
    assert np.allclose(
        alignment.entropy_gap(h, p), scipy_entropy(p, axis=1) - scipy_entropy(h, axis=1), atol=1e-12
    )


def test_spearman_matches_pandas_with_ties():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 5, 60).astype(float)  # many ties
    y = x + rng.normal(size=60)
    expected = pd.Series(x).corr(pd.Series(y), method="spearman")
    assert alignment.spearman(x, y) == pytest.approx(expected, abs=1e-12)


def test_spearman_of_a_constant_is_nan_without_warning():
    with np.errstate(all="raise"):
        assert np.isnan(alignment.spearman(np.zeros(10), np.arange(10)))
        assert np.isnan(alignment.spearman(np.arange(2), np.arange(2)))
