"""All metrics of one run: overall values equal the single metrics, bands partition the items."""

import numpy as np
import pytest

from soft_label_audit.metrics import alignment, calibration, scoring
from soft_label_audit.metrics.bands import difficulty_band
from soft_label_audit.metrics.per_run import metric_names, score_test_set
from tests.metrics.conftest import random_probs


@pytest.fixture
def run():
    rng = np.random.default_rng(4)
    n = 120
    p = random_probs(rng, n)
    original = rng.integers(0, 10, n)
    mode = np.where(rng.random(n) < 0.8, original, rng.integers(0, 10, n))
    h = random_probs(rng, n, sharpness=6)
    h[:30] = np.eye(10)[original[:30]]
    ent = alignment.entropy(h)
    return p, original, mode, h, ent, difficulty_band(ent, 1e-9, 0.5)


def test_overall_metrics_equal_the_single_metrics(run):
    p, original, mode, h, ent, band = run
    out = score_test_set(p, original, mode, h, ent, band, 15)
    assert out["n_items"] == 120
    assert out["accuracy"] == scoring.accuracy(p, original)
    assert out["accuracy_human_mode"] == scoring.accuracy(p, mode)
    assert out["nll"] == scoring.nll(p, original)
    assert out["brier"] == scoring.brier(p, original)
    assert out["ce_human"] == alignment.cross_entropy(h, p).mean()
    assert out["kl_human"] == alignment.kl_divergence(h, p).mean()
    assert out["tv_human"] == alignment.total_variation(h, p).mean()
    assert out["entropy_gap"] == alignment.entropy_gap(h, p).mean()
    assert out["abs_entropy_gap"] == np.abs(alignment.entropy_gap(h, p)).mean()
    assert out["spearman_entropy"] == alignment.spearman(alignment.entropy(p), ent)
    assert out["ece_15"] == calibration.top_label_ece(p, original, 15)
    assert out["ece_mass_15"] == calibration.top_label_ece(p, original, 15, "mass")
    assert out["classwise_ece_15"] == calibration.classwise_ece(p, original, 15)
    assert out["mce_15"] == calibration.max_calibration_error(p, original, 15)
    # the run's columns: the registry's names in order, then the same per band
    names = metric_names(15)
    assert list(out) == names + [
        f"{m}__band_{b}" for b in ("unanimous", "low", "high") for m in names
    ]


@pytest.mark.parametrize("order", ["C", "F"])
def test_item_means_are_exactly_the_single_metrics_whatever_the_memory_layout(order):
    """A run's probabilities read from a table are column-major, and a sum over classes then
    adds in another order than over a row-major copy: the scores still equal the single
    metrics bit for bit (float32 predictions, many small runs)."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        p = np.asarray(random_probs(rng, 30).astype(np.float32), dtype=np.float64, order=order)
        h = np.asarray(random_probs(rng, 30, sharpness=6), order=order)
        y = rng.integers(0, 10, 30)
        out = score_test_set(p, y, y, h, alignment.entropy(h), np.full(30, "high"), 15)
        assert out["brier"] == scoring.brier(p, y)
        assert out["nll"] == scoring.nll(p, y)
        assert out["kl_human"] == alignment.kl_divergence(h, p).mean()
        assert out["entropy_gap"] == alignment.entropy_gap(h, p).mean()


def test_inputs_are_checked_before_scoring(run):
    p, original, mode, h, ent, band = run
    with pytest.raises(ValueError, match="human_mode must lie in 0..9"):
        score_test_set(p, original, np.where(mode == 0, 10, mode), h, ent, band)
    with pytest.raises(ValueError, match="human_digits .* differ in shape"):
        score_test_set(p, original, mode, np.c_[h, np.zeros(len(h))], ent, band)
    with pytest.raises(ValueError, match="human_entropy must have shape"):
        score_test_set(p, original, mode, h, ent[1:], band)
    with pytest.raises(ValueError, match="probs rows must sum to 1"):
        score_test_set(p * 0.9, original, mode, h, ent, band)


def test_band_metrics_are_the_metrics_of_the_band(run):
    p, original, mode, h, ent, band = run
    out = score_test_set(p, original, mode, h, ent, band, 15)
    counts = {b: out[f"n_items__band_{b}"] for b in ("unanimous", "low", "high")}
    assert sum(counts.values()) == 120 and counts["unanimous"] == 30
    high = band == "high"
    assert out["ece_15__band_high"] == calibration.top_label_ece(p[high], original[high], 15)
    assert out["brier__band_high"] == scoring.brier(p[high], original[high])
    # human entropy is constant (zero) on unanimous items: no rank correlation there
    assert np.isnan(out["spearman_entropy__band_unanimous"])


def test_an_empty_band_gives_nan_not_an_error(run):
    p, original, mode, h, ent, band = run
    band = np.where(band == "unanimous", "low", band)
    out = score_test_set(p, original, mode, h, ent, band, 15)
    assert out["n_items__band_unanimous"] == 0 and np.isnan(out["ece_15__band_unanimous"])


def test_noise_floor_debiased_and_human_calibration_columns(run):
    p, original, mode, h, ent, band = run
    out = score_test_set(
        p, original, mode, h, ent, band, 15, floor_draws=50, floor_quantile=0.9, floor_seed=7
    )
    floors = calibration.ece_noise_floor(p, 15, 50, 7)
    for kind, prefix in (("width", "ece"), ("mass", "ece_mass"), ("classwise", "classwise_ece")):
        assert out[f"{prefix}_15_floor_mean"] == pytest.approx(floors[kind].mean())
        assert out[f"{prefix}_15_floor_q90"] == pytest.approx(np.quantile(floors[kind], 0.9))
        assert out[f"{prefix}_15_floor_q90"] >= out[f"{prefix}_15_floor_mean"]
    assert out["ce_l2_debiased_15"] == calibration.debiased_l2_calibration_error(p, original, 15)
    assert out["ece_human_15"] == calibration.human_ece(p, h, 15)
    assert out["overconfidence_human"] == pytest.approx(
        np.mean(p.max(1) - h[np.arange(120), p.argmax(1)])
    )
    high = band == "high"
    assert out["ece_15_floor_mean__band_high"] == pytest.approx(
        calibration.ece_noise_floor(p[high], 15, 50, 7)["width"].mean()
    )
    # fewer items, higher floor
    assert out["ece_15_floor_mean__band_high"] > out["ece_15_floor_mean"]
    assert set(metric_names(15, 0.9)) <= set(out)


def test_label_free_scores_need_no_human_label_and_equal_the_test_set_scores(run):
    from soft_label_audit.metrics.per_run import scope_columns, score_label_free

    p, original, mode, h, ent, band = run
    full = score_test_set(p, original, mode, h, ent, band, 15, floor_draws=30)
    free = score_label_free(p, original, 15, 30, 0.95, 0)
    assert "kl_human" not in free and "accuracy_human_mode" not in free
    assert free == {name: full[name] for name in free}
    empty = score_label_free(np.zeros((0, 10)), np.zeros(0, np.int64), 15, 30, 0.95, 0)
    assert empty["n_items"] == 0 and np.isnan(empty["nll"]) and list(empty) == list(free)
    columns = scope_columns(15)
    assert len(columns) == 3 * len(free)
    assert columns[0] == "pool__n_items" and "final__pool__ece_15" in columns
    assert "final__ece_mass_15" in columns and "pool__kl_human" not in columns


def test_shifted_items_are_scored_against_both_the_original_label_and_the_human_mode(run):
    """``{name}__shifted``: every metric on the mode-shifted items alone; a model that follows
    the human mode scores 1 against the mode and 0 against the original label there."""
    p, original, _, h, ent, band = run
    mode = original.copy()
    mode[:12] = (original[:12] + 1) % 10  # twelve shifted items
    shifted = mode != original
    follows_mode = np.eye(10)[mode] * 0.9 + 0.01
    out = score_test_set(follows_mode, original, mode, h, ent, band, 15, mode_shift=shifted)
    assert out["n_items__shifted"] == 12
    assert out["accuracy__shifted"] == 0.0 and out["accuracy_human_mode__shifted"] == 1.0
    assert out["accuracy"] == pytest.approx(1 - 12 / len(p))
    out = score_test_set(p, original, mode, h, ent, band, 15, mode_shift=shifted)
    assert out["accuracy__shifted"] == scoring.accuracy(p[shifted], original[shifted])
    assert out["accuracy_human_mode__shifted"] == scoring.accuracy(p[shifted], mode[shifted])
    assert out["nll__shifted"] == scoring.nll(p[shifted], original[shifted])
    names = metric_names(15)
    assert [k for k in out if k.endswith("__shifted")] == [f"{m}__shifted" for m in names]
    none = score_test_set(p, original, mode, h, ent, band, 15, mode_shift=np.zeros(len(p), bool))
    assert none["n_items__shifted"] == 0 and np.isnan(none["accuracy__shifted"])
    with pytest.raises(ValueError, match="mode_shift must be a bool array"):
        score_test_set(p, original, mode, h, ent, band, 15, mode_shift=shifted.astype(int))
