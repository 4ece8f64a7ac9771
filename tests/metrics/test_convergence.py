"""The convergence check of the validation loss: converged when the best epoch lies before the
last fifth of the epochs; on real training, a check that fails early and passes once trained."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from soft_label_audit.metrics.convergence import convergence, last_fifth_gain, last_part_epochs


def test_gain_of_the_last_fifth():
    curve = np.array([2.0, 1.5, 1.2, 1.0, 0.9, 0.8, 0.75, 0.7, 0.66, 0.65])
    assert last_part_epochs(len(curve)) == 2
    assert last_fifth_gain(curve) == pytest.approx(0.70 - 0.65)
    assert last_fifth_gain(np.array([1.0, 0.8])) == pytest.approx(0.2)  # f is at least one
    assert last_fifth_gain(np.array([1.0, 0.8, 0.9])) == pytest.approx(-0.1)  # rising again


def test_a_run_still_improving_at_its_end_has_not_converged():
    falling = 2.3 * np.exp(-np.arange(1, 16) / 6)
    gain, ok = convergence(np.stack([falling, falling + 0.01]))
    assert (gain > 0).all() and not ok.any()
    # however little: a cosine schedule's annealing tail still counts as improving
    tail = np.r_[falling, falling[-1] - 1e-4 * np.arange(1, 6)]
    assert not convergence(tail[None])[1][0]
    flat = np.r_[falling, np.full(15, falling[-1])]  # a tie keeps the earliest epoch
    assert convergence(flat[None])[1].all()


def test_an_overfitting_run_has_converged():
    rising = np.array([[2.0, 1.0, 0.8, 0.9, 1.0], [2.0, 1.1, 0.85, 0.95, 1.1]])
    gain, ok = convergence(rising)
    assert (gain < 0).all() and ok.all()


def test_too_short_or_broken_runs_never_count_as_converged():
    assert np.isnan(last_fifth_gain(np.array([1.0])))
    assert not convergence(np.array([[1.0]]))[1].any()
    assert not convergence(np.array([[1.0, np.nan, 0.5, 0.6, 0.7]]))[1][0]
    with pytest.raises(ValueError):
        last_fifth_gain(np.ones((2, 3)))
    with pytest.raises(ValueError):
        convergence(np.ones(3))


def _train(mnist_arrays, epochs: int):
    from soft_label_audit.parameter_tree import base_block
    from soft_label_audit.trainer import ModelConfig, TrainConfig, TrainData, train_runs

    x, y = mnist_arrays["train_images"], mnist_arrays["train_labels"].astype(np.int64)
    data = TrainData(x[:300], y[:300], x[300:500], y[300:500], x[:0])
    eye = np.eye(10, dtype=np.float32)
    base = TrainConfig.from_params({**base_block("training"), "epochs": epochs})
    config = replace(base, batch_size=32, num_threads=1, vectorise="never", progress=False)
    seeds = [0, 1]
    result = train_runs(
        data,
        np.stack([eye[data.train_labels]] * len(seeds)),
        np.stack([eye[data.val_labels]] * len(seeds)),
        seeds,
        ModelConfig(channels=(4, 8), hidden=16),
        config,
        record_dynamics=False,
    )
    gain, ok = convergence(result.curves["val_loss"])
    return gain, ok, result.best_epochs


def test_on_real_training_the_check_fails_early_and_passes_once_trained(mnist_arrays):
    """A tiny CNN on 300 hard-labelled MNIST items (CPU, cosine schedule): after 2 epochs the
    validation loss is still falling; after 30 it bottomed out before the last fifth."""
    gain, ok, best = _train(mnist_arrays, 2)
    assert not ok.any() and (best == 2).all(), (gain, best)
    gain, ok, best = _train(mnist_arrays, 30)
    assert ok.all() and (best <= 24).all(), (gain, best)
