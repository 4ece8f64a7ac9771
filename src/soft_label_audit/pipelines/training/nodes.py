"""Nodes of the `training` pipeline: assemble one (source, condition)'s arrays, train its seeds
with :mod:`soft_label_audit.trainer`, and pack the tables of the contracts."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from soft_label_audit.columns import P_COLS, T_COLS
from soft_label_audit.data_sources.tables import images_from_column
from soft_label_audit.metrics.levelling import has_levelled, last_fifth_change
from soft_label_audit.trainer import CURVE_NAMES, ModelConfig, TrainConfig, TrainData, train_runs

logger = logging.getLogger(__name__)


def _split(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    return frame[frame["split"] == split].sort_values("item_id").reset_index(drop=True)


def epochs_for(training_params: dict, source: str) -> int:
    """``training.epochs``: one number for every source, or a mapping source -> epochs."""
    epochs = training_params["epochs"]
    if isinstance(epochs, dict):
        if source not in epochs:
            raise KeyError(
                f"training.epochs names no epoch count for source {source!r} "
                f"(it has {sorted(epochs)})"
            )
        epochs = epochs[source]
    epochs = int(epochs)
    if epochs < 1:
        raise ValueError(f"training.epochs for {source!r} must be at least 1, got {epochs}")
    return epochs


def train_condition(
    targets: pd.DataFrame,
    study_digits: pd.DataFrame,
    training_params: dict,
    item_stats: pd.DataFrame | None = None,
    *,
    source: str,
    condition: str,
) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """Train every seed of ``training.seeds`` on the condition's targets (train split), with the
    val split for curves and the test split for predictions (items in item_id order).

    ``training.epochs`` may name the epochs per source (:func:`epochs_for`); ``item_stats``
    gives the validation items' human mode for the ``*_human_mode`` curves.

    Returns ``test_predictions`` (source, condition, seed, item_id, p_0..p_9), ``curves``
    (source, condition, seed, epoch (1-based), the trainer's ``CURVE_NAMES``: val_loss and
    val_acc against the original label for every condition, val_loss_own_target against the
    condition's targets; plus ``train_loss_change_last_fifth`` and ``train_loss_levelled``,
    the run's levelling check of :mod:`soft_label_audit.metrics.levelling`, on every row),
    ``dynamics`` (dict: item_ids (n,), seeds (S,), probs float32 (S, E, n, 10)) and ``weights``
    (dict: model settings, seeds, one state dict of numpy arrays per seed).
    """
    seeds = [int(s) for s in training_params["seeds"]]
    items = study_digits.loc[
        study_digits["source"] == source, ["item_id", "original_label", "image"]
    ]
    frame = targets.merge(items, on="item_id", how="left", validate="one_to_one")
    missing = frame.loc[frame["image"].isna(), "item_id"]
    if len(missing):
        raise ValueError(
            f"{source}.{condition}.targets names items missing from study_digits: {missing.head(5).tolist()}"
        )
    train, val, test = (_split(frame, s) for s in ("train", "val", "test"))
    val_modes = None
    if item_stats is not None:
        modes = val[["item_id"]].merge(
            item_stats[["item_id", "human_mode"]], on="item_id", how="left"
        )["human_mode"]
        if modes.isna().any():
            missing = val.loc[modes.isna(), "item_id"].head(5).tolist()
            raise ValueError(f"item_stats lacks validation items of {source}: {missing}")
        val_modes = modes.to_numpy(np.int64)
    data = TrainData(
        train_images=images_from_column(train["image"]),
        train_labels=train["original_label"].to_numpy(np.int64),
        val_images=images_from_column(val["image"]),
        val_labels=val["original_label"].to_numpy(np.int64),
        test_images=images_from_column(test["image"]),
        val_modes=val_modes,
    )
    k = len(seeds)
    model_config = ModelConfig.from_params(training_params["model"])
    result = train_runs(
        data,
        np.repeat(train[list(T_COLS)].to_numpy(np.float32)[None], k, axis=0),
        np.repeat(val[list(T_COLS)].to_numpy(np.float32)[None], k, axis=0),
        seeds,
        model_config,
        TrainConfig.from_params({**training_params, "epochs": epochs_for(training_params, source)}),
        record_dynamics=True,
        desc=f"{source}.{condition}",
    )
    logger.info(
        "%s.%s: %d seeds x %d epochs on %d items, %.1f s on %s%s; final val_acc %s",
        source,
        condition,
        k,
        result.curves["train_loss"].shape[1],
        len(train),
        result.seconds,
        result.device,
        " (vectorised)" if result.vectorised else "",
        np.round(result.curves["val_acc"][:, -1], 3).tolist(),
    )

    key = lambda n: {"source": source, "condition": condition, "seed": np.repeat(seeds, n)}  # noqa: E731
    preds = pd.DataFrame(key(len(test)))
    preds["item_id"] = np.tile(test["item_id"].to_numpy(np.int64), k)
    preds[list(P_COLS)] = result.test_probs.reshape(-1, len(P_COLS)).astype(np.float64)

    epochs = result.curves["train_loss"].shape[1]
    curves = pd.DataFrame(key(epochs))
    curves["epoch"] = np.tile(np.arange(1, epochs + 1), k)
    for name in CURVE_NAMES:
        curves[name] = result.curves[name].reshape(-1)
    change = np.array([last_fifth_change(loss) for loss in result.curves["train_loss"]])
    curves["train_loss_change_last_fifth"] = np.repeat(change, epochs)
    levelled = np.array([has_levelled(loss) for loss in result.curves["train_loss"]])
    curves["train_loss_levelled"] = np.repeat(levelled, epochs)
    logger.info(
        "%s.%s: training loss change over the last fifth of %d epochs: max %.3f over seeds (%s)",
        source,
        condition,
        epochs,
        float(np.nanmax(change)),
        "levelled off" if levelled.all() else f"NOT levelled off in {int((~levelled).sum())} seeds",
    )

    dynamics = {
        "item_ids": train["item_id"].to_numpy(np.int64),
        "seeds": np.asarray(seeds, np.int64),
        "probs": result.dynamics,
    }
    weights = {
        "model": {"channels": list(model_config.channels), "hidden": model_config.hidden},
        "seeds": seeds,
        "state_dicts": result.state_dicts,
    }
    return preds, curves, dynamics, weights
