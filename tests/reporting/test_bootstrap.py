"""The vectorised seed-and-item bootstrap against a brute-force loop, on a tiny study."""

import numpy as np
import pytest

from soft_label_audit.metrics import alignment, calibration, scoring
from soft_label_audit.reporting import bootstrap
from tests.metrics.conftest import random_probs


def _tiny_runs(rng, C=2, S=3, n=7, K=10):
    probs = np.stack([np.stack([random_probs(rng, n, K) for _ in range(S)]) for _ in range(C)])
    original = rng.integers(0, K, n)
    human = random_probs(rng, n, K, sharpness=5)
    band = np.array(["unanimous", "low", "high", "high", "low", "high", "unanimous"])[:n]
    return bootstrap.SourceRuns(
        conditions=tuple(f"c{c}" for c in range(C)),
        seeds=np.arange(S),
        item_ids=np.arange(n),
        probs=probs,
        original=original,
        mode=human.argmax(axis=1),
        human=human,
        band=band,
    )


def _brute(runs, metric, seed_idx, item_idx, n_bins):
    """The metric of the resample written as a loop: for every drawn seed, score the drawn items
    (repeats included) with the single-run metric functions; average over drawn seeds."""
    name, band = (metric.split("__band_") + [None])[:2]
    out = []
    for c in range(len(runs.conditions)):
        per_seed = []
        for s in seed_idx:
            items = [i for i in item_idx if band is None or runs.band[i] == band]
            p, y, h = runs.probs[c, s][items], runs.original[items], runs.human[items]
            value = (
                {
                    "accuracy": lambda: scoring.accuracy(p, y),
                    "accuracy_human_mode": lambda: scoring.accuracy(p, runs.mode[items]),
                    "nll": lambda: scoring.nll(p, y),
                    "brier": lambda: scoring.brier(p, y),
                    "kl_human": lambda: float(alignment.kl_divergence(h, p).mean()),
                    "ce_human": lambda: float(alignment.cross_entropy(h, p).mean()),
                    "tv_human": lambda: float(alignment.total_variation(h, p).mean()),
                    "abs_entropy_gap": lambda: float(np.abs(alignment.entropy_gap(h, p)).mean()),
                    "overconfidence_human": lambda: float(
                        np.mean(p.max(1) - h[np.arange(len(p)), p.argmax(1)])
                    ),
                    f"ece_{n_bins}": lambda: calibration.top_label_ece(p, y, n_bins),
                    f"classwise_ece_{n_bins}": lambda: calibration.classwise_ece(p, y, n_bins),
                    f"ece_human_{n_bins}": lambda: calibration.human_ece(p, h, n_bins),
                }[name]()
                if items
                else np.nan
            )
            per_seed.append(value)
        out.append(np.mean(per_seed))
    return np.array(out)


METRICS = [
    "accuracy",
    "accuracy_human_mode",
    "nll",
    "brier",
    "kl_human",
    "ce_human",
    "tv_human",
    "abs_entropy_gap",
    "overconfidence_human",
    "ece_5",
    "classwise_ece_5",
    "ece_human_5",
    "accuracy__band_high",
    "ece_5__band_high",
    "nll__band_low",
    "classwise_ece_5__band_unanimous",
]


@pytest.mark.parametrize("metric", METRICS)
def test_resampled_metric_equals_a_brute_force_loop(metric):
    rng = np.random.default_rng(11)
    runs = _tiny_runs(rng)
    S, n, B = 3, 7, 12
    seed_idx = rng.integers(0, S, (B, S))
    item_idx = rng.integers(0, n, (B, n))
    draws = bootstrap.Draws(
        seeds=np.stack([np.bincount(r, minlength=S) for r in seed_idx]).astype(float),
        items=np.stack([np.bincount(r, minlength=n) for r in item_idx]).astype(float),
    )
    fast = bootstrap.resample_metric(runs, metric, draws, n_bins=5, chunk=5)
    slow = np.stack([_brute(runs, metric, seed_idx[b], item_idx[b], 5) for b in range(B)])
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-12)


def test_identity_draw_gives_the_mean_over_seeds_of_each_run_metric():
    rng = np.random.default_rng(3)
    runs = _tiny_runs(rng, C=3, S=4, n=7)
    value = bootstrap.resample_metric(runs, "ece_15", bootstrap.identity_draws(4, 7), 15)
    expected = [
        np.mean([calibration.top_label_ece(runs.probs[c, s], runs.original) for s in range(4)])
        for c in range(3)
    ]
    np.testing.assert_allclose(value[0], expected)


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
