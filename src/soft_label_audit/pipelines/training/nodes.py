"""Nodes of the `training` pipeline: assemble one (source, condition)'s arrays, train its seeds
with :mod:`soft_label_audit.trainer`, and pack the tables of the contracts."""

from __future__ import annotations

import logging

import pandas as pd

from soft_label_audit import run_tables
from soft_label_audit.configs import TrainingConfig
from soft_label_audit.targets import builder_for
from soft_label_audit.trainer import train_runs

logger = logging.getLogger(__name__)


def train_condition(
    targets: pd.DataFrame,
    study_digits: pd.DataFrame,
    pool_digits: pd.DataFrame,
    training_params: dict,
    item_stats: pd.DataFrame | None = None,
    *,
    source: str,
    condition: str,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict, dict]:
    """Train every seed of ``training.seeds`` on the condition's targets (train split), with the
    val split for curves and the choice of each run's best epoch (lowest ``val_loss``), and
    predict the test split and the source's items of ``pool_digits`` (held-out unannotated
    items; none is fine) at the best and at the final epoch (items in item_id order).

    ``training.epochs`` may name the epochs per source (:func:`soft_label_audit.configs.epochs_for`); ``item_stats``
    gives the validation items' human mode for the ``*_human_mode`` curves.

    Returns ``test_predictions`` and ``pool_predictions`` at the best epoch (source, condition,
    seed, item_id, p_0..p_9), ``final_predictions`` at the final epoch (the same with a
    ``scope`` column, ``test`` or ``pool``), ``curves`` (source, condition, seed, epoch
    (1-based), the trainer's ``CURVE_NAMES``: val_loss and val_acc against the original label
    for every condition, val_loss_own_target against the condition's targets; plus the run's
    ``best_epoch``, ``val_loss_gain_last_fifth`` and ``val_loss_converged``, the convergence
    check of :mod:`soft_label_audit.metrics.convergence`, and ``temperature_best`` and
    ``temperature_final``, the post-hoc temperatures fitted on the validation items' logits at
    the best and the final epoch, on every row), ``dynamics`` (dict:
    item_ids (n,), seeds (S,), probs float32 (S, E, n, 10)) and ``weights`` (dict: model
    settings, seeds, one state dict of numpy arrays per seed: the final weights).
    """
    config = TrainingConfig.from_params(training_params, source)
    seeds = list(config.seeds)
    train, val, test = run_tables.condition_splits(targets, study_digits, source, condition)
    pool = run_tables.pool_items(pool_digits, source)
    result = train_runs(
        run_tables.train_data(
            train, val, test, run_tables.validation_modes(val, item_stats, source), pool
        ),
        run_tables.stacked_targets(train, len(seeds)),
        run_tables.stacked_targets(val, len(seeds)),
        seeds,
        config.model,
        config.train,
        record_dynamics=True,
        desc=f"{source}.{condition}",
    )
    run_tables.log_run(result, source, condition, len(train))
    dynamics = run_tables.dynamics_record(train, seeds, result.dynamics)
    weights = {"model": config.model.settings(), "seeds": seeds, "state_dicts": result.state_dicts}
    return (
        *run_tables.prediction_tables(result, test, pool, seeds, source, condition),
        run_tables.result_curve_table(result, val, seeds, source, condition),
        dynamics,
        weights,
    )


def scale_temperature(
    test_predictions: pd.DataFrame,
    pool_predictions: pd.DataFrame,
    final_predictions: pd.DataFrame,
    curves: pd.DataFrame,
    dynamics: dict,
    *,
    source: str,
    condition: str,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """A post-hoc condition trains nothing: its tables are its base condition's
    (``targets.BUILDERS[condition].post_hoc_of``) with each run's probabilities scaled by the
    temperature fitted on the validation items (``temperature_best`` for the best-epoch
    ``test_predictions`` and ``pool_predictions``, ``temperature_final`` for
    ``final_predictions``), the condition renamed, ``curves`` and ``dynamics`` copied
    (:func:`soft_label_audit.run_tables.temperature_scaled_tables`)."""
    base = builder_for(condition).post_hoc_of
    out = run_tables.temperature_scaled_tables(
        test_predictions,
        pool_predictions,
        final_predictions,
        curves,
        dynamics,
        base=f"{source}.{base}",
        condition=condition,
    )
    per_run = curves.groupby("seed")[["temperature_best", "temperature_final"]].first()
    logger.info(
        "%s.%s: %s's predictions scaled by the temperatures fitted on the validation items: "
        "best epoch %s, final epoch %s",
        source,
        condition,
        base,
        per_run["temperature_best"].round(3).tolist(),
        per_run["temperature_final"].round(3).tolist(),
    )
    return out


def attach_temperatures(
    weights: dict, curves: pd.DataFrame, *, source: str, condition: str
) -> dict:
    """The post-hoc condition's ``weights``: its base's final weights with each seed's
    ``temperature_best`` and ``temperature_final`` from its ``curves``
    (:func:`soft_label_audit.run_tables.weights_with_temperatures`)."""
    return run_tables.weights_with_temperatures(weights, curves, f"{source}.{condition}.curves")
