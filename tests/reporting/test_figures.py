"""Figure builders draw one panel per (source, condition) and save without pyplot."""

import io

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.reporting import figures
from soft_label_audit.reporting.figures import pooled_reliability


def test_pooled_reliability_weights_by_count():
    rel = pd.DataFrame(
        {
            "seed": [0, 0, 1, 1],
            "bin": [0, 1, 0, 1],
            "bin_lower": [0, 0.5, 0, 0.5],
            "bin_upper": [0.5, 1, 0.5, 1],
            "count": [1, 0, 3, 2],
            "mean_confidence": [0.4, np.nan, 0.2, 0.9],
            "accuracy": [1.0, np.nan, 0.0, 0.5],
        }
    )
    pooled = pooled_reliability(rel)
    assert pooled["count"].tolist() == [4, 2]
    assert pooled["accuracy"].tolist() == pytest.approx([0.25, 0.5])
    assert pooled["mean_confidence"].tolist() == pytest.approx([(0.4 + 0.6) / 4, 0.9])


def test_figures_do_not_accumulate_in_pyplot():
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    curves = pd.DataFrame(
        {
            "source": "mnist",
            "condition": "a",
            "seed": [0, 0],
            "epoch": [1, 2],
            "val_loss": [1.0, 0.5],
            "val_acc": [0.5, 0.8],
        }
    )
    fig = figures.validation_curves(curves, ["mnist"], ["a"])
    assert len(plt.get_fignums()) == before
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_validation_curves_mark_each_runs_best_and_final_epoch():
    curves = pd.DataFrame(
        {
            "source": "mnist",
            "condition": "a",
            "seed": [0, 0, 0, 1, 1, 1],
            "epoch": [1, 2, 3, 1, 2, 3],
            "val_loss": [1.0, 0.5, 0.7, 1.2, 0.9, 0.6],
            "val_acc": [0.5, 0.8, 0.7, 0.4, 0.6, 0.7],
            "best_epoch": [2, 2, 2, 3, 3, 3],
        }
    )
    fig = figures.validation_curves(curves, ["mnist"], ["a"], ("val_loss",))
    ax = fig.axes[0]
    rings = [ln for ln in ax.lines if ln.get_marker() == "o"]
    squares = [ln for ln in ax.lines if ln.get_marker() == "s"]
    assert [(ln.get_xdata()[0], ln.get_ydata()[0]) for ln in rings] == [(2, 0.5), (3, 0.6)]
    assert [(ln.get_xdata()[0], ln.get_ydata()[0]) for ln in squares] == [(3, 0.7), (3, 0.6)]
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert labels == ["seed 0", "seed 1", "best epoch (lowest val_loss)", "final epoch"]
    # without the column, the best epoch is the lowest val_loss (the trainer's rule)
    fig = figures.validation_curves(curves.drop(columns="best_epoch"), ["mnist"], ["a"])
    rings = [ln for ln in fig.axes[0].lines if ln.get_marker() == "o"]
    assert [ln.get_xdata()[0] for ln in rings] == [2, 3]
