"""`evaluation` then `reporting`, in memory, on a synthetic study; metrics_by_run.csv checked
against an independent recomputation from the test predictions."""

import numpy as np
import pytest
from kedro_datasets.pandas import CSVDataset
from matplotlib.figure import Figure
from sklearn.metrics import brier_score_loss, log_loss

from soft_label_audit.columns import P_COLS
from soft_label_audit.pipelines import reporting
from soft_label_audit.reporting.config import REPORTING_EXAMPLE
from tests.helpers import run_in_memory
from tests.pipelines.evaluation.synthetic_study import GRID


@pytest.fixture(scope="module")
def study(synthetic_study):
    return synthetic_study


@pytest.fixture(scope="module")
def outputs(study, synthetic_evaluation):
    """The evaluation pipeline's outputs (run once per session) and the reporting pipeline's."""
    pipe = reporting.create_pipeline(GRID)
    # the whole reporting block, as the start-up validation leaves it (the study's three
    # settings over the example's complete block)
    params = {**REPORTING_EXAMPLE, **study["params:reporting"]}
    inputs = {**study, **synthetic_evaluation, "params:reporting": params}
    return {**inputs, **run_in_memory(pipe, {k: inputs[k] for k in pipe.inputs()})}


@pytest.fixture(scope="module")
def metrics_csv(outputs, tmp_path_factory):
    """metrics_by_run written and read back the way the catalog does."""
    dataset = CSVDataset(filepath=str(tmp_path_factory.mktemp("reporting") / "metrics_by_run.csv"))
    dataset.save(outputs["metrics_by_run"])
    return dataset.load()


def _ece_by_loops(p: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE written from the definition: bins [j/B, (j+1)/B), the last one closed."""
    conf = [max(row) for row in p.tolist()]
    right = [int(np.argmax(row) == label) for row, label in zip(p, y)]
    total = 0.0
    for j in range(n_bins):
        lo, hi = j / n_bins, (j + 1) / n_bins
        members = [i for i, c in enumerate(conf) if lo <= c < hi or (j == n_bins - 1 and c == 1.0)]
        if members:
            acc = sum(right[i] for i in members) / len(members)
            mean_conf = sum(conf[i] for i in members) / len(members)
            total += len(members) / len(conf) * abs(acc - mean_conf)
    return total


def test_metrics_by_run_reproduces_an_independent_recomputation(study, metrics_csv):
    labels = study["item_stats"].set_index("item_id")["original_label"]
    checked = 0
    for source, condition in GRID.namespaces():
        preds = study[f"{source}.{condition}.test_predictions"]
        for seed, run in preds.groupby("seed"):
            p = run[list(P_COLS)].to_numpy()
            y = labels.loc[run["item_id"]].to_numpy()
            row = metrics_csv[
                (metrics_csv.source == source)
                & (metrics_csv.condition == condition)
                & (metrics_csv.seed == seed)
            ]
            assert len(row) == 1
            assert row["nll"].iloc[0] == pytest.approx(
                log_loss(y, p, labels=list(range(10))), abs=1e-6
            )
            assert row["brier"].iloc[0] == pytest.approx(
                brier_score_loss(y, p, labels=list(range(10)), scale_by_half=False), abs=1e-6
            )
            assert row["ece_15"].iloc[0] == pytest.approx(_ece_by_loops(p, y), abs=1e-6)
            final = study[f"{source}.{condition}.final_predictions"]
            final = final[(final["scope"] == "test") & (final["seed"] == seed)]
            assert row["final__ece_15"].iloc[0] == pytest.approx(
                _ece_by_loops(final[list(P_COLS)].to_numpy(), y), abs=1e-6
            )
            checked += 1
    assert checked == len(metrics_csv) == 2 * 3 * 3


def test_study_summary_is_mean_and_std_over_seeds(outputs):
    runs, summary = outputs["metrics_by_run"], outputs["study_summary"]
    assert summary[["source", "condition"]].values.tolist() == [
        list(ns) for ns in GRID.namespaces()
    ]
    assert (summary["n_seeds"] == 3).all()
    sel = runs[(runs.source == "synthetic") & (runs.condition == "human_soft")]
    row = summary[(summary.source == "synthetic") & (summary.condition == "human_soft")].iloc[0]
    for metric in ("ece_15", "kl_human", "ece_15__band_high", "convergence_epoch"):
        assert row[f"{metric}__mean"] == pytest.approx(sel[metric].mean())
        assert row[f"{metric}__std"] == pytest.approx(sel[metric].std(ddof=1))
    # the other scopes and the best epoch travel through the collector to the summary
    mnist = runs[(runs.source == "mnist") & (runs.condition == "human_soft")]
    first = summary[(summary.source == "mnist") & (summary.condition == "human_soft")].iloc[0]
    for metric in ("pool__nll", "final__ece_15", "final__pool__accuracy", "best_epoch"):
        assert row.index.str.startswith(metric).any(), metric
        assert first[f"{metric}__mean"] == pytest.approx(mnist[metric].mean())
    assert (runs.loc[runs.source == "synthetic", "pool__n_items"] == 0).all()  # no pool there


def test_paired_differences_cover_every_condition_and_baseline(outputs):
    paired = outputs["paired_differences"]
    pairs = set(zip(paired["source"], paired["baseline"], paired["condition"]))
    expected = {
        (s, b, c)
        for s in GRID.sources
        for b in ("original_hard", "human_soft")
        for c in GRID.conditions
        if c != b
    }
    assert pairs == expected
    row = paired[
        (paired.source == "mnist")
        & (paired.baseline == "original_hard")
        & (paired.condition == "machine_soft")
        & (paired.metric == "nll")
    ].iloc[0]
    runs = outputs["metrics_by_run"].set_index(["source", "condition", "seed"])["nll"].sort_index()
    d = runs.loc[("mnist", "machine_soft")] - runs.loc[("mnist", "original_hard")]
    assert row["mean_diff"] == pytest.approx(d.mean())
    assert row["ci_low"] < row["mean_diff"] < row["ci_high"]


def test_stability_tables(outputs):
    table, by_epoch = outputs["stability_by_condition"], outputs["validation_curves_by_epoch"]
    assert table[["source", "condition"]].values.tolist() == [list(ns) for ns in GRID.namespaces()]
    assert {
        "disagreement",
        "pairwise_tv",
        "val_acc_std_mean_over_epochs",
        "convergence_epoch__mean",
        "ece_15__std",
    } <= set(table.columns)
    assert len(by_epoch) == len(GRID.namespaces()) * 4 and (by_epoch["n_seeds"] == 3).all()


def test_figures_are_built(outputs):
    for name in (
        "reliability_diagrams_figure",
        "ece_by_band_figure",
        "cartography_maps_figure",
        "validation_curves_figure",
    ):
        assert isinstance(outputs[name], Figure), name
    # one panel per (source, condition), plus the colour bar
    assert len(outputs["cartography_maps_figure"].axes) == len(GRID.namespaces()) + 1
    assert len(outputs["reliability_diagrams_figure"].axes) == len(GRID.namespaces())


def test_catalog_entries_match_the_pipelines():
    """Every output the reporting catalog names is produced by the reporting pipeline."""
    import yaml

    from tests.conftest import PROJECT_ROOT

    catalog = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "catalog_reporting.yml").read_text())
    assert {name for name in catalog if "{" not in name} <= reporting.create_pipeline(
        GRID
    ).all_outputs()
    assert catalog["study_summary"]["type"] == "kedro_mlflow.io.artifacts.MlflowArtifactDataset"
