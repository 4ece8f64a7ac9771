import numpy as np
import pandas as pd
import pytest

from soft_label_audit.metrics import stability


def test_convergence_epoch_of_a_decreasing_loss():
    # improvement from epoch 1: 0, 5, 8, 9.5, 10 -> 95% of 10 first reached at epoch 4
    loss = np.array([10.0, 5.0, 2.0, 0.5, 0.0])
    assert stability.convergence_epoch(np.arange(1, 6), loss, 0.95) == 4
    assert stability.convergence_epoch(np.arange(1, 6), loss, 0.5) == 2
    assert stability.convergence_epoch(np.arange(1, 6), loss, 1.0) == 5


def test_convergence_epoch_handles_order_accuracy_and_flat_curves():
    assert (
        stability.convergence_epoch(
            np.array([3, 1, 2]), np.array([0.9, 0.1, 0.7]), 0.95, higher_is_better=True
        )
        == 3
    )
    assert stability.convergence_epoch(np.arange(1, 4), np.array([1.0, 1.0, 1.0])) == 1
    # overfitting after the best epoch does not move the convergence epoch
    assert stability.convergence_epoch(np.arange(1, 6), np.array([1.0, 0.5, 0.4, 0.6, 0.9])) == 3


def test_pairwise_disagreement_by_hand():
    pred = np.array([[0, 1, 2, 3], [0, 1, 2, 0], [1, 1, 2, 0]])
    # pairs: (0,1) 1/4, (0,2) 2/4, (1,2) 1/4
    assert stability.pairwise_disagreement(pred) == pytest.approx((0.25 + 0.5 + 0.25) / 3)
    assert np.isnan(stability.pairwise_disagreement(pred[:1]))


def test_pairwise_total_variation_by_hand():
    a = np.array([[1.0, 0.0], [0.5, 0.5]])
    b = np.array([[0.0, 1.0], [0.5, 0.5]])
    assert stability.pairwise_total_variation(np.stack([a, b])) == pytest.approx(0.5)


def test_metric_spread_uses_sample_std_and_keeps_group_order():
    table = pd.DataFrame({"condition": ["b", "b", "b", "a", "a"], "m": [1.0, 2.0, 3.0, 5.0, 5.0]})
    out = stability.metric_spread(table, ["condition"], ["m"])
    assert out["condition"].tolist() == ["b", "a"]
    assert out["n_seeds"].tolist() == [3, 2]
    assert out["m__mean"].tolist() == [2.0, 5.0]
    assert out["m__std"].tolist() == [1.0, 0.0]
    assert list(out.columns) == ["condition", "n_seeds", "m__mean", "m__std", "m__min", "m__max"]
    assert np.isnan(
        stability.metric_spread(table.iloc[:1], ["condition"], ["m"], ("std",))["m__std"].iloc[0]
    )


def test_curve_spread_per_epoch():
    curves = pd.DataFrame(
        {"epoch": [1, 2, 1, 2], "seed": [0, 0, 1, 1], "val_acc": [0.5, 0.7, 0.7, 0.7]}
    )
    out = stability.curve_spread(curves, [], ["val_acc"])
    assert out["epoch"].tolist() == [1, 2]
    assert out["val_acc__mean"].tolist() == pytest.approx([0.6, 0.7])
    assert out["val_acc__std"].tolist() == pytest.approx([np.sqrt(0.02), 0.0])


def test_metric_spread_of_a_wide_table_raises_no_performance_warning():
    """metrics_by_run (read from CSV, ~150 metrics) made reset_index warn on a fragmented frame."""
    import io
    import warnings

    rng = np.random.default_rng(0)
    keys = pd.DataFrame(
        [(s, c, seed) for s in ("mnist", "synthetic") for c in "abcdefg" for seed in (0, 1)],
        columns=["source", "condition", "seed"],
    )
    metrics = [f"m{i}" for i in range(60)]
    wide = pd.concat(
        [keys, pd.DataFrame(rng.random((len(keys), len(metrics))), columns=metrics)], axis=1
    )
    wide = pd.read_csv(io.StringIO(wide.to_csv(index=False)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.PerformanceWarning)
        spread = stability.metric_spread(
            wide, ["source", "condition"], metrics, stats=("mean", "std")
        )
    assert spread.shape == (14, 2 + 1 + len(metrics) * 2)
