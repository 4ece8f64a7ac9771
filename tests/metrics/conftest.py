"""Random predicted distributions and labels for the metric tests."""

import numpy as np
import pytest


def random_probs(
    rng: np.random.Generator, n: int, k: int = 10, sharpness: float = 3.0
) -> np.ndarray:
    """Softmax of scaled Gaussian logits: a spread of confidences from near 1/k to near 1."""
    logits = rng.normal(size=(n, k)) * rng.uniform(0.2, sharpness, size=(n, 1))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


@pytest.fixture(params=[0, 1, 2])
def predictions(request):
    """(probs, labels) with labels that agree with the argmax more often than chance."""
    rng = np.random.default_rng(request.param)
    n = [500, 333, 1000][request.param]
    p = random_probs(rng, n)
    labels = np.where(rng.random(n) < 0.6, p.argmax(axis=1), rng.integers(0, 10, n))
    return p, labels
