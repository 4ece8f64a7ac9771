"""The metric registry: every entry's forms agree, whatever the leading axes of the predictions."""

import dataclasses

import numpy as np
import pytest

from soft_label_audit.human_labels import entropy
from soft_label_audit.metrics import calibration, registry
from tests.metrics.conftest import random_probs

ITEM = [m for m in registry.METRICS if isinstance(m, registry.ItemMetric)]
BINNED = [m for m in registry.METRICS if isinstance(m, registry.BinnedMetric)]


def _study(rng, C=2, S=3, n=90, K=10):
    p = np.stack([np.stack([random_probs(rng, n, K) for _ in range(S)]) for _ in range(C)])
    p[:, :, :8] = np.eye(K)[rng.integers(0, K, 8)]  # saturated: confidence 1.0, last bin
    original = rng.integers(0, K, n)
    human = random_probs(rng, n, K, sharpness=5)
    human[:20] = np.eye(K)[original[:20]]
    items = registry.Items(original, human.argmax(axis=1), human, entropy(human))
    return p, items


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("metric", ITEM, ids=lambda m: m.name)
def test_per_item_values_of_a_study_are_those_of_each_run(metric, order):
    """The bootstrap prepares (C, S, n) values in one call; per run they are bit for bit the
    values the run's score averages, whatever the memory layout of the human labels (column
    major when read from a table)."""
    p, items = _study(np.random.default_rng(1))
    items = dataclasses.replace(items, human=np.asarray(items.human, order=order))
    batched = metric.per_item(p, items)
    assert batched.shape == p.shape[:-1] and batched.dtype == np.float64
    for c in range(p.shape[0]):
        for s in range(p.shape[1]):
            np.testing.assert_array_equal(batched[c, s], metric.per_item(p[c, s], items))


@pytest.mark.parametrize("metric", BINNED, ids=lambda m: m.prefix)
@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_binned_deviations_sum_to_the_per_run_estimator(metric, n_bins):
    p, items = _study(np.random.default_rng(2))
    deviations = metric.deviations(p, items, n_bins)
    assert deviations.shape[:-1] == p.shape[:-1]
    from_deviations = np.abs(deviations.sum(axis=2)).sum(axis=-1) / p.shape[2]
    for c in range(p.shape[0]):
        for s in range(p.shape[1]):
            np.testing.assert_array_equal(
                deviations[c, s], metric.deviations(p[c, s], items, n_bins)
            )
            value = metric.value(p[c, s], items, n_bins)
            assert from_deviations[c, s] == pytest.approx(value, rel=1e-12, abs=1e-15)


def test_the_binned_entries_are_the_calibration_estimators():
    p, items = _study(np.random.default_rng(3))
    run = p[0, 0]
    by_prefix = {m.prefix: m.value(run, items, 15) for m in BINNED}
    assert by_prefix == {
        "ece": calibration.top_label_ece(run, items.original, 15),
        "classwise_ece": calibration.classwise_ece(run, items.original, 15),
        "ece_human": calibration.human_ece(run, items.human, 15),
    }


def test_metric_names_are_unique_and_follow_the_settings():
    settings = registry.Settings(n_bins=7, floor_quantile=0.9)
    names = registry.metric_names(settings)
    assert len(names) == len(set(names))
    assert names[0] == "n_items" and "ece_7" in names and "ece_mass_7_floor_q90" in names
    assert list(registry.item_resampled(7)) == [m.name for m in ITEM] + [
        f"{m.prefix}_7" for m in BINNED
    ]


def test_a_run_metric_must_fill_the_columns_it_names():
    wrong = registry.RunMetric(lambda s: ("a", "b"), lambda p, items, s: {"a": 1.0}, True)
    p, items = _study(np.random.default_rng(4))
    with pytest.raises(RuntimeError, match="expected"):
        wrong.score(p[0, 0], items, registry.Settings())


def test_the_label_free_flag_marks_the_metrics_that_need_no_human_label():
    """A label-free entry scores unannotated items as it scores the same items with their
    human labels; every other entry does not (its value needs the human label)."""
    p, items = _study(np.random.default_rng(5))
    run = p[0, 0]
    bare = registry.Items.unannotated(items.original, run.shape[1])
    settings = registry.Settings(n_bins=15, floor_draws=20)
    for metric in registry.METRICS:
        with_human = metric.score(run, items, settings)
        try:
            without = metric.score(run, bare, settings)
        except ValueError:  # refuses NaN human labels
            without = {k: np.nan for k in with_human}
        same = all(np.isclose(with_human[k], without[k], equal_nan=True) for k in with_human)
        assert same == metric.label_free, list(with_human)
    assert registry.label_free_names(settings) == [
        "n_items",
        "accuracy",
        "nll",
        "brier",
        "ece_15",
        "ece_mass_15",
        "classwise_ece_15",
        "mce_15",
        "ece_15_floor_mean",
        "ece_15_floor_q95",
        "ece_mass_15_floor_mean",
        "ece_mass_15_floor_q95",
        "classwise_ece_15_floor_mean",
        "classwise_ece_15_floor_q95",
        "ce_l2_debiased_15",
    ]
