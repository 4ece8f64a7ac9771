"""The pool scope: unannotated held-out items scored against their original label only, built
from in-memory pool_predictions and pool_digits frames, bootstrapped and tested like the
test items."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.columns import P_COLS
from soft_label_audit.metrics import calibration
from soft_label_audit.reporting import bootstrap
from soft_label_audit.reporting.claims import evaluate_claims
from soft_label_audit.reporting.config import REPORTING_EXAMPLE, ReportingConfig
from soft_label_audit.reporting.statistics import build_pool_bootstraps, pool_source_runs
from tests.metrics.conftest import random_probs

CONDITIONS = ["original_hard", "human_soft"]
SEEDS = [0, 1, 2, 3]
N_POOL = 300


def _frames(rng, n=N_POOL, sources=("mnist",), shuffle=True):
    rows, digits = [], []
    for source in sources:
        ids = np.arange(n) + (0 if source == "mnist" else 100_000)
        labels = rng.integers(0, 10, n)
        digits.append(
            pd.DataFrame(
                {"item_id": ids, "source": source, "original_label": labels, "image": None}
            )
        )
        for c, condition in enumerate(CONDITIONS):
            for seed in SEEDS:
                p = random_probs(rng, n, 10, sharpness=3)
                # human_soft is better: more mass on the original label
                p[np.arange(n), labels] += 0.4 * c + 0.2
                p /= p.sum(axis=1, keepdims=True)
                frame = pd.DataFrame(p, columns=list(P_COLS))
                frame.insert(0, "item_id", ids)
                frame.insert(0, "seed", seed)
                frame.insert(0, "condition", condition)
                frame.insert(0, "source", source)
                rows.append(frame.sample(frac=1, random_state=seed) if shuffle else frame)
    return pd.concat(rows, ignore_index=True), pd.concat(digits, ignore_index=True)


def _metrics_by_run(sources=("mnist",)):
    """Only its (source, condition) order is read for the pool scope."""
    return pd.DataFrame(
        [(s, c, seed) for s in sources for c in CONDITIONS for seed in SEEDS],
        columns=["source", "condition", "seed"],
    )


@pytest.fixture(scope="module")
def pool():
    preds, digits = _frames(np.random.default_rng(0))
    return preds, digits, build_pool_bootstraps(preds, digits, _metrics_by_run(), 15, 400, 0)


def test_pool_runs_align_predictions_with_their_original_labels(pool):
    preds, digits, boots = pool
    runs = boots["mnist"].runs
    assert runs.scope == "pool" and runs.band is None and runs.conditions == tuple(CONDITIONS)
    assert runs.probs.shape == (2, len(SEEDS), N_POOL, 10)
    one = preds[(preds.condition == "human_soft") & (preds.seed == 2)].set_index("item_id")
    np.testing.assert_array_equal(runs.probs[1, 2], one.loc[runs.item_ids, list(P_COLS)])
    labels = digits.set_index("item_id").loc[runs.item_ids, "original_label"]
    np.testing.assert_array_equal(runs.original, labels)


def test_pool_per_seed_values_are_the_label_free_metrics_of_each_run(pool):
    preds, digits, boots = pool
    boot, runs = boots["mnist"], boots["mnist"].runs
    acc = boot.per_seed.get("accuracy")
    expected = (runs.probs.argmax(axis=-1) == runs.original).mean(axis=-1)
    np.testing.assert_allclose(acc, expected)
    ece = boot.per_seed.get("ece_15", ["human_soft"])
    assert ece[0, 1] == pytest.approx(
        calibration.top_label_ece(runs.probs[1, 1], runs.original, 15, "width")
    )
    assert "mce_15" in boot.per_seed and "kl_human" not in boot.per_seed
    assert "accuracy_human_mode" not in boot.item_resampled
    with pytest.raises(ValueError, match="human labels"):
        boot.resampled("spearman_entropy")
    with pytest.raises(ValueError, match="no difficulty bands"):
        bootstrap.resample_metric(runs, "nll__band_high", boot.draws, 15)


def test_a_pool_claim_is_tested_on_the_pool_items(pool, caplog):
    preds, digits, boots = pool
    claim = {
        "id": "a_pool",
        "kind": "difference",
        "statement": "human soft labels improve accuracy on held-out items",
        "metric": "accuracy",
        "condition": "human_soft",
        "baseline": "original_hard",
        "direction": "increase",
        "scope": "pool",
        "target": 0.01,
    }
    config = ReportingConfig.from_params({**REPORTING_EXAMPLE, "claims": [claim]})
    table, power = evaluate_claims({}, None, config, boots)
    (row,) = table.itertuples()
    acc = boots["mnist"].per_seed.get("accuracy")
    assert row.scope == "pool" and row.n_items == N_POOL
    assert row.effect == pytest.approx((acc[1] - acc[0]).mean())
    assert row.ci_low <= row.effect <= row.ci_high and row.verdict == "supported"
    assert row.test.startswith("t (Satterthwaite") and row.p_mc_se == 0.0
    assert set(power["scope"]) == {"pool"} and set(power["n_items"]) == {N_POOL}
    # without pool predictions the claim is skipped with a note
    with caplog.at_level(logging.WARNING):
        empty, _ = evaluate_claims({"mnist": boots["mnist"]}, None, config, {})
    assert len(empty) == 0 and "claim a_pool skipped" in caplog.text


def test_a_pool_item_without_its_label_and_a_ragged_run_are_refused():
    preds, digits = _frames(np.random.default_rng(1), n=20)
    with pytest.raises(ValueError, match="no pool_digits row"):
        pool_source_runs(preds, digits.iloc[1:], "mnist", CONDITIONS)
    with pytest.raises(ValueError, match=r"human_soft\.pool_predictions seed 3: predicts 19"):
        pool_source_runs(preds.drop(index=preds.index[-1]), digits, "mnist", CONDITIONS)
    assert build_pool_bootstraps(None, None, _metrics_by_run(), 15, 10, 0) == {}


def test_one_seed_gives_no_test_and_no_design():
    preds, digits = _frames(np.random.default_rng(2), n=50)
    preds = preds[preds["seed"] == 0]
    metrics = _metrics_by_run()
    boots = build_pool_bootstraps(preds, digits, metrics[metrics.seed == 0], 15, 50, 0)
    claim = {
        "id": "one",
        "kind": "difference",
        "statement": "one seed",
        "metric": "ece_15",
        "condition": "human_soft",
        "baseline": "original_hard",
        "direction": "increase",
        "scope": "pool",
        "target": 0.01,
    }
    config = ReportingConfig.from_params({**REPORTING_EXAMPLE, "claims": [claim]})
    table, power = evaluate_claims({}, None, config, boots)
    assert table["verdict"].tolist() == ["inconclusive"] and table["p_value"].isna().all()
    assert power["design_items"].isna().all() and set(power["components"]) == {"not estimable"}
