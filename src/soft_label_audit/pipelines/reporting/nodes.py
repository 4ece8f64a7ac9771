"""Nodes of the `reporting` pipeline: collect every namespace, compare, draw.

Sources and conditions keep the study's order: the order in which the namespaces' tables
arrive (the pipeline passes them in grid order).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from soft_label_audit.metrics.stability import curve_spread, metric_spread
from soft_label_audit.reporting import figures
from soft_label_audit.reporting.paired import paired_differences

RUN_KEYS = ["source", "condition", "seed"]
GROUP_KEYS = ["source", "condition"]


def _order(table: pd.DataFrame, column: str) -> list[str]:
    return list(dict.fromkeys(table[column].astype(str)))


def metric_columns(metrics_by_run: pd.DataFrame) -> list[str]:
    """Every numeric column but the run keys."""
    return [c for c in metrics_by_run.columns
            if c not in RUN_KEYS and pd.api.types.is_numeric_dtype(metrics_by_run[c])]


def collect(*tables: pd.DataFrame) -> pd.DataFrame:
    """Stack the namespaces' tables (same columns) in the order given."""
    if not tables:
        raise ValueError("nothing to collect: the study grid is empty")
    return pd.concat(tables, ignore_index=True)


def collect_runs(*metrics: pd.DataFrame) -> pd.DataFrame:
    """``metrics_by_run``: one row per (source, condition, seed); fails on a repeated run."""
    table = collect(*metrics)
    dup = table[table.duplicated(RUN_KEYS, keep=False)]
    if len(dup):
        raise ValueError(f"metrics hold repeated runs: {dup[RUN_KEYS].drop_duplicates().to_dict('records')[:5]}")
    return table


def summarize_study(metrics_by_run: pd.DataFrame) -> pd.DataFrame:
    """``study_summary``: one row per (source, condition), ``{metric}__mean`` and ``{metric}__std`` over seeds."""
    return metric_spread(metrics_by_run, GROUP_KEYS, metric_columns(metrics_by_run), stats=("mean", "std"))


def compare_conditions(metrics_by_run: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Paired differences over seeds of every condition against each baseline, with t-intervals."""
    return paired_differences(metrics_by_run, metric_columns(metrics_by_run), list(params["baselines"]),
                              float(params["confidence"]))


def stability_tables(metrics_by_run: pd.DataFrame, stability: pd.DataFrame, curves: pd.DataFrame, eval_params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (source, condition): prediction disagreement, curve spread, convergence epochs and
    the std over seeds of the headline metrics; and the validation curves' mean/std per epoch."""
    n_bins = int(eval_params["n_bins"])
    headline = [m for m in ("accuracy", "nll", "brier", f"ece_{n_bins}", "kl_human", "convergence_epoch")
                if m in metrics_by_run]
    spread = metric_spread(metrics_by_run, GROUP_KEYS, headline, stats=("mean", "std", "min", "max"))
    spread = spread.drop(columns="n_seeds")
    table = stability.merge(spread, on=GROUP_KEYS, how="left", validate="one_to_one")
    columns = [c for c in eval_params["stability_curves"] if c in curves]
    by_epoch = curve_spread(curves, GROUP_KEYS, columns)
    # keep the study order, not the alphabetical one groupby would give
    order = {k: i for i, k in enumerate(zip(table["source"], table["condition"]))}
    by_epoch = by_epoch.assign(_o=[order.get(k, len(order)) for k in zip(by_epoch["source"], by_epoch["condition"])])
    by_epoch = by_epoch.sort_values(["_o", "epoch"], kind="stable").drop(columns="_o").reset_index(drop=True)
    return table, by_epoch


def reliability_figure(reliability: pd.DataFrame, metrics_by_run: pd.DataFrame, eval_params: dict[str, Any]) -> Figure:
    return figures.reliability_diagrams(reliability, metrics_by_run, _order(metrics_by_run, "source"),
                                        _order(metrics_by_run, "condition"), int(eval_params["n_bins"]))


def ece_by_band_figure(metrics_by_run: pd.DataFrame, eval_params: dict[str, Any]) -> Figure:
    return figures.ece_by_band(metrics_by_run, _order(metrics_by_run, "source"), _order(metrics_by_run, "condition"),
                               int(eval_params["n_bins"]))


def cartography_figure(cartography: pd.DataFrame, params: dict[str, Any], eval_params: dict[str, Any]) -> Figure:
    return figures.cartography_maps(cartography, _order(cartography, "source"), _order(cartography, "condition"),
                                    params["cartography_reference"], eval_params["cartography"])


def validation_curves_figure(curves: pd.DataFrame, eval_params: dict[str, Any]) -> Figure:
    columns = tuple(c for c in eval_params["stability_curves"] if c in curves)
    return figures.validation_curves(curves, _order(curves, "source"), _order(curves, "condition"), columns)


