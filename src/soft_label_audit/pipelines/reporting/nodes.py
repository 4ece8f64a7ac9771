"""Nodes of the `reporting` pipeline: collect every namespace, compare, draw.

Sources and conditions keep the study's order: the order in which the namespaces' tables
arrive (the pipeline passes them in grid order).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from soft_label_audit.configs import EvaluationConfig
from soft_label_audit.metrics.stability import curve_spread, metric_spread
from soft_label_audit.reporting import figures
from soft_label_audit.reporting.claims import evaluate_claims
from soft_label_audit.reporting.claims_report import claims_figure
from soft_label_audit.reporting.config import ReportingConfig
from soft_label_audit.reporting.multiple import benjamini_hochberg
from soft_label_audit.reporting.paired import paired_differences
from soft_label_audit.reporting.stability import stability_ratios
from soft_label_audit.reporting.statistics import (
    bootstrap_paired,
    build_bootstraps,
    build_pool_bootstraps,
)

RUN_KEYS = ["source", "condition", "seed"]
GROUP_KEYS = ["source", "condition"]


def _order(table: pd.DataFrame, column: str) -> list[str]:
    return list(dict.fromkeys(table[column].astype(str)))


def metric_columns(metrics_by_run: pd.DataFrame) -> list[str]:
    """Every numeric column but the run keys."""
    return [
        c
        for c in metrics_by_run.columns
        if c not in RUN_KEYS and pd.api.types.is_numeric_dtype(metrics_by_run[c])
    ]


def collect(*tables: pd.DataFrame) -> pd.DataFrame:
    """Stack the namespaces' tables (same columns) in the order given.

    For ``metrics_by_run`` no run repeats: each namespace's ``metrics`` table has one row per
    seed and its source and condition bound to the namespace (its contract)."""
    if not tables:
        raise ValueError("nothing to collect: the study grid is empty")
    return pd.concat(tables, ignore_index=True)


def collect_by_kind(*bundles: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Per kind, the bundles' tables (``{kind}: table``, the same kinds in each) stacked in the
    order given (:func:`collect`).

    >>> out = collect_by_kind({"m": pd.DataFrame({"x": [1]})}, {"m": pd.DataFrame({"x": [2]})})
    >>> out["m"]["x"].tolist()
    [1, 2]
    """
    if not bundles:
        raise ValueError("nothing to collect: the study grid is empty")
    kinds = list(bundles[0])
    if any(list(bundle) != kinds for bundle in bundles):
        raise ValueError(f"bundles of different kinds: {[list(b) for b in bundles]}")
    return {kind: collect(*(bundle[kind] for bundle in bundles)) for kind in kinds}


def summarize_study(metrics_by_run: pd.DataFrame) -> pd.DataFrame:
    """``study_summary``: one row per (source, condition), ``{metric}__mean`` and ``{metric}__std`` over seeds."""
    return metric_spread(
        metrics_by_run, GROUP_KEYS, metric_columns(metrics_by_run), stats=("mean", "std")
    )


def compare_conditions(
    metrics_by_run: pd.DataFrame,
    test_predictions: pd.DataFrame,
    cartography: pd.DataFrame,
    human_soft_labels: pd.DataFrame,
    item_stats: pd.DataFrame,
    params: dict[str, Any],
    eval_params: dict[str, Any],
    none_slot: str,
    pool_predictions: pd.DataFrame | None = None,
    pool_digits: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Paired differences (t-interval over seeds, bootstrap over seeds and items, Holm p-values
    for the claims, BH q-values for the rest), the claims table, the power table and the ratios
    of seed spreads. One set of bootstrap draws per source and scope serves every table; the
    pool scope (``pool_predictions`` with the labels of ``pool_digits``) serves the claims of
    ``scope: pool`` only."""
    config = ReportingConfig.from_params(params)
    draws = (config.bootstrap.n_resamples, config.bootstrap.seed)
    test = (test_predictions, human_soft_labels, item_stats, none_slot)
    boots, pool_boots = _bootstraps(
        metrics_by_run, test, (pool_predictions, pool_digits), eval_params, draws
    )
    metrics = metric_columns(metrics_by_run)
    paired = paired_differences(metrics_by_run, metrics, list(config.baselines), config.confidence)
    paired = bootstrap_paired(paired, boots, config.confidence)
    claims, power = evaluate_claims(boots, cartography, config, pool_boots)
    paired = _corrected(paired, claims)
    ratios = stability_ratios(
        boots,
        list(config.stability.metrics),
        *(config.stability.baseline, *draws),
        config.confidence,
    )
    return paired, claims, power, ratios


def _bootstraps(metrics_by_run, test, pool, eval_params, draws) -> tuple[dict, dict]:
    """The bootstraps of the test scope (``test``: predictions, human soft labels, item stats,
    none slot) and of the pool scope (``pool``: pool predictions and pool digits, or Nones)."""
    evaluation = EvaluationConfig.from_params(eval_params)
    boots = build_bootstraps(metrics_by_run, *test, evaluation, *draws)
    pool_boots = build_pool_bootstraps(*pool, metrics_by_run, evaluation.n_bins, *draws)
    return boots, pool_boots


def _corrected(paired: pd.DataFrame, claims: pd.DataFrame) -> pd.DataFrame:
    """``p_holm``: the Holm-adjusted p-value of the rows that are claims (difference claims on
    the test items against a baseline of the table; the table is of the test scope);
    ``q_bh``: Benjamini-Hochberg q-values of all other rows."""
    keys = ["source", "baseline", "condition", "metric"]
    family = claims[(claims["kind"] == "difference") & (claims["scope"] == "test")]
    family = family[keys + ["p_adjusted"]].drop_duplicates(keys)
    family = family.rename(columns={"p_adjusted": "p_holm"})
    out = paired.merge(family, on=keys, how="left", validate="many_to_one")
    rest = out["p_holm"].isna()
    out["q_bh"] = float("nan")
    out.loc[rest, "q_bh"] = benjamini_hochberg(out.loc[rest, "p_value"].to_numpy(dtype=float))
    return out


def draw_claims(claims: pd.DataFrame) -> Figure:
    return claims_figure(claims)


def stability_tables(
    metrics_by_run: pd.DataFrame,
    stability: pd.DataFrame,
    curves: pd.DataFrame,
    spread_ratios: pd.DataFrame,
    eval_params: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (source, condition): prediction disagreement, curve spread, convergence epochs,
    the std over seeds of the headline metrics and their ratio to the baseline's with a
    bootstrap interval (``{metric}__std_ratio*``, ``std_relative_error``); and the validation
    curves' mean/std per epoch."""
    evaluation = EvaluationConfig.from_params(eval_params)
    n_bins = evaluation.n_bins
    headline = [
        m
        for m in ("accuracy", "nll", "brier", f"ece_{n_bins}", "kl_human", "convergence_epoch")
        if m in metrics_by_run
    ]
    spread = metric_spread(
        metrics_by_run, GROUP_KEYS, headline, stats=("mean", "std", "min", "max")
    )
    spread = spread.drop(columns="n_seeds")
    table = stability.merge(spread, on=GROUP_KEYS, how="left", validate="one_to_one")
    if len(spread_ratios):
        table = table.merge(spread_ratios, on=GROUP_KEYS, how="left", validate="one_to_one")
    columns = [c for c in evaluation.stability_curves if c in curves]
    return table, _in_study_order(curve_spread(curves, GROUP_KEYS, columns), table)


def _in_study_order(by_epoch: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """``by_epoch`` in the (source, condition) order of ``table`` (the study's), not the
    alphabetical one groupby gives, then by epoch."""
    order = {k: i for i, k in enumerate(zip(table["source"], table["condition"]))}
    by_epoch = by_epoch.assign(
        _o=[order.get(k, len(order)) for k in zip(by_epoch["source"], by_epoch["condition"])]
    )
    return (
        by_epoch.sort_values(["_o", "epoch"], kind="stable")
        .drop(columns="_o")
        .reset_index(drop=True)
    )


def reliability_figure(
    reliability: pd.DataFrame, metrics_by_run: pd.DataFrame, eval_params: dict[str, Any]
) -> Figure:
    return figures.reliability_diagrams(
        reliability,
        metrics_by_run,
        _order(metrics_by_run, "source"),
        _order(metrics_by_run, "condition"),
        EvaluationConfig.from_params(eval_params).n_bins,
    )


def ece_by_band_figure(metrics_by_run: pd.DataFrame, eval_params: dict[str, Any]) -> Figure:
    return figures.ece_by_band(
        metrics_by_run,
        _order(metrics_by_run, "source"),
        _order(metrics_by_run, "condition"),
        EvaluationConfig.from_params(eval_params).n_bins,
    )


def cartography_figure(
    cartography: pd.DataFrame, params: dict[str, Any], eval_params: dict[str, Any]
) -> Figure:
    return figures.cartography_maps(
        cartography,
        _order(cartography, "source"),
        _order(cartography, "condition"),
        ReportingConfig.from_params(params).cartography_reference,
        asdict(EvaluationConfig.from_params(eval_params).cartography),
    )


def validation_curves_figure(curves: pd.DataFrame, eval_params: dict[str, Any]) -> Figure:
    curve_names = EvaluationConfig.from_params(eval_params).stability_curves
    columns = tuple(c for c in curve_names if c in curves)
    return figures.validation_curves(
        curves, _order(curves, "source"), _order(curves, "condition"), columns
    )
