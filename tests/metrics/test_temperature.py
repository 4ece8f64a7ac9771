"""Post-hoc temperature scaling: the fit finds the temperature of a tempered model, ignores a
constant added to a row's logits, and its scaling of probabilities is softmax(z / T)."""

from __future__ import annotations

import numpy as np
import pytest

from soft_label_audit.metrics.temperature import (
    T_BOUNDS,
    fit_temperature,
    scale_probabilities,
    temperature_nll,
)


def _tempered(t_true: float, n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits z and labels drawn from softmax(z / t_true): the model is overconfident by a
    factor t_true, so the NLL-optimal temperature is t_true (up to sampling error)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (n, 10))
    p = np.exp(z / t_true - (z / t_true).max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = (p.cumsum(1) > rng.uniform(size=(n, 1))).argmax(1)
    return z, labels


@pytest.mark.parametrize("t_true", [0.5, 1.0, 2.5])
def test_the_fit_recovers_the_temperature_of_a_tempered_model(t_true):
    z, labels = _tempered(t_true)
    t = fit_temperature(z, labels)
    assert t == pytest.approx(t_true, rel=0.05)
    # a minimum: neighbours on either side have a higher NLL
    nll = temperature_nll(z, labels, t)
    assert nll < temperature_nll(z, labels, 0.95 * t) and nll < temperature_nll(z, labels, 1.05 * t)


def test_the_fit_is_invariant_to_a_constant_added_to_each_row():
    z, labels = _tempered(2.0, n=2_000, seed=1)
    shift = np.random.default_rng(2).normal(0, 50, (len(z), 1))
    assert fit_temperature(z + shift, labels) == pytest.approx(fit_temperature(z, labels), rel=1e-9)
    # and deterministic
    assert fit_temperature(z, labels) == fit_temperature(z, labels)


def test_an_optimum_outside_the_bounds_is_clipped_to_the_nearer_bound():
    z = np.array([[5.0, 0.0], [0.0, 5.0]])
    assert fit_temperature(z, np.array([0, 1])) == T_BOUNDS[0]  # separable: T -> 0
    assert fit_temperature(z, np.array([1, 0])) == T_BOUNDS[1]  # always wrong: T -> infinity
    with pytest.raises(ValueError, match="n >= 1"):
        fit_temperature(np.zeros((0, 10)), np.zeros(0, int))


def test_scaling_probabilities_is_the_softmax_of_the_tempered_logits():
    z, _ = _tempered(1.0, n=50, seed=3)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = np.exp(z / 2.0 - (z / 2.0).max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(scale_probabilities(p, 2.0), expected, atol=1e-10)
    np.testing.assert_allclose(scale_probabilities(p, 1.0), p, atol=1e-12)
    with pytest.raises(ValueError, match="positive"):
        scale_probabilities(p, float("nan"))
