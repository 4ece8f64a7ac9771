"""The vectorised seed-and-item bootstrap against the per-run scores it resamples.

Every item and binned metric of the registry is checked: the brute-force loop and the
identity draw score the resampled items with ``score_test_set``, so a metric enters these
tests by its registry entry alone.
"""

import numpy as np
import pytest

from soft_label_audit.human_labels import entropy
from soft_label_audit.metrics import registry
from soft_label_audit.metrics.bands import BANDS, difficulty_band
from soft_label_audit.metrics.per_run import BAND_SEPARATOR, metric_names, score_test_set
from soft_label_audit.reporting import bootstrap
from tests.metrics.conftest import random_probs

N_BINS = 5


def _runs(rng, C=2, S=3, n=7, K=10, saturate=0):
    probs = np.stack([np.stack([random_probs(rng, n, K) for _ in range(S)]) for _ in range(C)])
    probs[:, :, :saturate] = np.eye(K)[rng.integers(0, K, saturate)]  # confidences of exactly 1
    original = rng.integers(0, K, n)
    human = random_probs(rng, n, K, sharpness=5)
    human[: n // 4] = np.eye(K)[original[: n // 4]]
    if n == 7:  # every band, two repeats of each draw's band
        band = np.array(["unanimous", "low", "high", "high", "low", "high", "unanimous"])
    else:
        band = difficulty_band(entropy(human), 1e-9, 1.0)
    return bootstrap.SourceRuns(
        conditions=tuple(f"c{c}" for c in range(C)),
        seeds=np.arange(S),
        item_ids=np.arange(n),
        probs=probs,
        original=original,
        mode=human.argmax(axis=1),
        human=human,
        band=band,
        human_entropy=entropy(human),
    )


def _scores(runs, c, s, items):
    """The per-run metrics of condition c, seed s on ``items`` (indices, repeats allowed)."""
    return score_test_set(
        runs.probs[c, s][items],
        runs.original[items],
        runs.mode[items],
        runs.human[items],
        runs.human_entropy[items],
        runs.band[items],
        N_BINS,
        floor_draws=1,
    )


#: every metric the bootstrap resamples over items, overall and per band, from the registry
RESAMPLED = [
    f"{name}{suffix}"
    for name in registry.item_resampled(N_BINS)
    for suffix in ("", *(f"{BAND_SEPARATOR}{b}" for b in BANDS))
]
B = 12


@pytest.fixture(scope="module")
def resampled_study():
    """A tiny study, B draws as index lists and counts, and the per-run metrics of every
    (draw, condition, seed) on the drawn items: the bootstrap written as a loop."""
    rng = np.random.default_rng(11)
    runs = _runs(rng)
    C, S, n = runs.probs.shape[:3]
    seed_idx = rng.integers(0, S, (B, S))
    item_idx = rng.integers(0, n, (B, n))
    draws = bootstrap.Draws(
        seeds=np.stack([np.bincount(r, minlength=S) for r in seed_idx]).astype(float),
        items=np.stack([np.bincount(r, minlength=n) for r in item_idx]).astype(float),
    )
    scores = [
        [[_scores(runs, c, s, item_idx[b]) for s in range(S)] for c in range(C)] for b in range(B)
    ]
    return runs, seed_idx, draws, scores


@pytest.mark.parametrize("metric", RESAMPLED)
def test_resampled_metric_equals_the_per_run_metric_of_the_drawn_items(metric, resampled_study):
    runs, seed_idx, draws, scores = resampled_study
    fast = bootstrap.resample_metric(runs, metric, draws, n_bins=N_BINS, chunk=5)
    slow = np.array(
        [
            [np.mean([scores[b][c][s][metric] for s in seed_idx[b]]) for c in range(2)]
            for b in range(B)
        ]
    )
    assert np.isfinite(slow).any()
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def observed_study():
    """A study with every band and saturated confidences, and the per-run metrics of each
    (condition, seed) on all its items."""
    runs = _runs(np.random.default_rng(3), C=3, S=4, n=120, saturate=10)
    assert set(runs.band) == set(BANDS)
    scores = [[_scores(runs, c, s, np.arange(120)) for s in range(4)] for c in range(3)]
    return runs, scores


@pytest.mark.parametrize("metric", RESAMPLED)
def test_identity_draw_gives_the_mean_over_seeds_of_the_per_run_metric(metric, observed_study):
    """The observed sample, resampled once without change, is the table's value."""
    runs, scores = observed_study
    expected = [np.mean([scores[c][s][metric] for s in range(4)]) for c in range(3)]
    value = bootstrap.resample_metric(runs, metric, bootstrap.identity_draws(4, 120), N_BINS)
    np.testing.assert_allclose(value[0], expected, rtol=1e-12, atol=1e-15)


def test_every_registered_metric_is_either_item_resampled_or_a_column_resampled_over_seeds():
    runs = _runs(np.random.default_rng(0))
    resampled = bootstrap.item_resampled_metrics(runs, N_BINS)
    assert len(resampled) == len(set(resampled)) == 4 * len(registry.item_resampled(N_BINS))
    columns = metric_names(N_BINS)
    for metric in registry.METRICS:
        names = metric.names(registry.Settings(n_bins=N_BINS))
        assert set(names) <= set(columns)
        item = isinstance(metric, registry.ItemMetric | registry.BinnedMetric)
        for name in names:
            for band in ("", *(f"{BAND_SEPARATOR}{b}" for b in BANDS)):
                assert (f"{name}{band}" in resampled) == item, f"{name}{band}"
    with pytest.raises(ValueError, match="not resampled over items"):
        bootstrap.resample_metric(
            runs, f"ece_mass_{N_BINS}", bootstrap.identity_draws(3, 7), N_BINS
        )


def test_a_new_registry_entry_is_scored_and_resampled(monkeypatch):
    """Adding a metric is one entry: it reaches the run's columns (overall and per band) and the
    bootstrap without another change."""
    squared = registry.ItemMetric("top_squared", lambda p, items: p.max(axis=-1) ** 2, True)
    monkeypatch.setattr(registry, "METRICS", (*registry.METRICS, squared))
    runs = _runs(np.random.default_rng(5), n=40)
    out = _scores(runs, 0, 1, np.arange(40))
    assert list(out)[: len(metric_names(N_BINS))] == metric_names(N_BINS)
    assert metric_names(N_BINS)[-1] == "top_squared"
    assert out["top_squared"] == pytest.approx(np.mean(runs.probs[0, 1].max(axis=1) ** 2))
    high = runs.band == "high"
    assert out["top_squared__band_high"] == pytest.approx(
        np.mean(runs.probs[0, 1][high].max(axis=1) ** 2)
    )
    assert "top_squared__band_high" in bootstrap.item_resampled_metrics(runs, N_BINS)
    value = bootstrap.resample_metric(runs, "top_squared", bootstrap.identity_draws(3, 40), N_BINS)
    assert value[0, 0] == pytest.approx(np.mean(runs.probs[0].max(axis=-1) ** 2))


def test_draws_are_multinomial_counts_and_seeded():
    a = bootstrap.draw(50, 6, 40, np.random.default_rng(1))
    b = bootstrap.draw(50, 6, 40, np.random.default_rng(1))
    np.testing.assert_array_equal(a.items, b.items)
    assert (a.seeds.sum(axis=1) == 6).all() and (a.items.sum(axis=1) == 40).all()


def test_percentile_interval_and_p_value():
    x = np.arange(1, 100, dtype=float)  # 1..99, all above 0
    assert bootstrap.percentile_interval(x, 0.9) == pytest.approx(
        tuple(np.quantile(x, [0.05, 0.95]))
    )
    assert bootstrap.bootstrap_p_value(x) == pytest.approx(2 * 1 / 100)
    sym = np.concatenate([-x, x])
    assert bootstrap.bootstrap_p_value(sym) == 1.0
    # 10 of 99 below 0: p = 2 * (1 + 10) / 100
    y = np.concatenate([-np.arange(1, 11.0), np.arange(1, 90.0)])
    assert bootstrap.bootstrap_p_value(y) == pytest.approx(0.22)


def test_resampled_ranks_equal_scipy_ranks_of_the_repeated_items():
    from scipy.stats import rankdata

    rng = np.random.default_rng(2)
    values = np.round(rng.random(15), 1)  # ties in the data as well as from repeats
    idx = rng.integers(0, 15, (5, 15))
    counts = np.stack([np.bincount(r, minlength=15) for r in idx]).astype(float)
    ranks = bootstrap.resampled_ranks(values, counts)
    for b in range(5):
        np.testing.assert_allclose(ranks[b, idx[b]], rankdata(values[idx[b]]))


def test_resampled_correlation_equals_a_loop():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(4)
    values = np.round(rng.random((2, 3, 9)), 1)
    reference = np.round(rng.random(9), 1)
    seed_idx = rng.integers(0, 3, (6, 3))
    item_idx = rng.integers(0, 9, (6, 9))
    draws = bootstrap.Draws(
        seeds=np.stack([np.bincount(r, minlength=3) for r in seed_idx]).astype(float),
        items=np.stack([np.bincount(r, minlength=9) for r in item_idx]).astype(float),
    )
    fast = bootstrap.resample_correlation(values, reference, draws, chunk=4)
    slow = [
        [
            np.mean(
                [
                    spearmanr(values[c, s][item_idx[k]], reference[item_idx[k]])[0]
                    for s in seed_idx[k]
                ]
            )
            for c in range(2)
        ]
        for k in range(6)
    ]
    np.testing.assert_allclose(fast, np.array(slow), atol=1e-12)
