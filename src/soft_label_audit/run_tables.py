"""One condition's training, as tables: the trainer's arrays from the study tables, and the
trainer's result packed as the ``test_predictions`` and ``pool_predictions`` (best epoch),
``final_predictions`` (final epoch, test and pool), ``curves``, ``dynamics`` and ``weights`` of
the contracts (docs/architecture.md). Plain pandas and numpy; no Kedro."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from soft_label_audit.columns import P_COLS, RUN_CURVE_COLUMNS, T_COLS
from soft_label_audit.data_sources.tables import images_from_column
from soft_label_audit.metrics.convergence import convergence
from soft_label_audit.trainer import CURVE_NAMES, TrainData

logger = logging.getLogger(__name__)


def _split(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    return frame[frame["split"] == split].sort_values("item_id").reset_index(drop=True)


def condition_splits(
    targets: pd.DataFrame, study_digits: pd.DataFrame, source: str, condition: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The targets joined with the study items' label and image, split into train, val and
    test (each in item_id order); every target item must be a study item of ``source``."""
    items = study_digits.loc[
        study_digits["source"] == source, ["item_id", "original_label", "image"]
    ]
    frame = targets.merge(items, on="item_id", how="left", validate="one_to_one")
    missing = frame.loc[frame["image"].isna(), "item_id"]
    if len(missing):
        raise ValueError(
            f"{source}.{condition}.targets names items missing from study_digits: "
            f"{missing.head(5).tolist()}"
        )
    train, val, test = (_split(frame, s) for s in ("train", "val", "test"))
    return train, val, test


def pool_items(pool_digits: pd.DataFrame, source: str) -> pd.DataFrame:
    """The pool items of ``source`` (item_id, original_label, image) in item_id order; none when
    the pool holds no item of the source."""
    pool = pool_digits.loc[pool_digits["source"] == source, ["item_id", "original_label", "image"]]
    return pool.sort_values("item_id").reset_index(drop=True)


def validation_modes(val: pd.DataFrame, item_stats: pd.DataFrame | None, source: str):
    """The validation items' human mode (for the ``*_human_mode`` curves), or None."""
    if item_stats is None:
        return None
    modes = val[["item_id"]].merge(item_stats[["item_id", "human_mode"]], on="item_id", how="left")
    if modes["human_mode"].isna().any():
        missing = val.loc[modes["human_mode"].isna(), "item_id"].head(5).tolist()
        raise ValueError(f"item_stats lacks validation items of {source}: {missing}")
    return modes["human_mode"].to_numpy(np.int64)


def _images(frame: pd.DataFrame) -> np.ndarray:
    if len(frame) == 0:
        return np.zeros((0, 28, 28), np.uint8)
    return images_from_column(frame["image"])


def train_data(
    train: pd.DataFrame,
    val: pd.DataFrame,
    test: pd.DataFrame,
    val_modes: np.ndarray | None,
    pool: pd.DataFrame | None = None,
) -> TrainData:
    return TrainData(
        train_images=images_from_column(train["image"]),
        train_labels=train["original_label"].to_numpy(np.int64),
        val_images=images_from_column(val["image"]),
        val_labels=val["original_label"].to_numpy(np.int64),
        test_images=images_from_column(test["image"]),
        val_modes=val_modes,
        pool_images=None if pool is None else _images(pool),
    )


def stacked_targets(split: pd.DataFrame, n_seeds: int) -> np.ndarray:
    """The split's targets repeated per seed: (seeds, items, 10) float32."""
    return np.repeat(split[list(T_COLS)].to_numpy(np.float32)[None], n_seeds, axis=0)


def _keys(source: str, condition: str, seeds: list[int], n: int) -> pd.DataFrame:
    return pd.DataFrame({"source": source, "condition": condition, "seed": np.repeat(seeds, n)})


def prediction_table(
    probs: np.ndarray, items: pd.DataFrame, seeds: list[int], source: str, condition: str
) -> pd.DataFrame:
    """``test_predictions`` or ``pool_predictions`` (``probs`` (S, n, 10) of ``items`` in row
    order): source, condition, seed, item_id, p_0..p_9."""
    preds = _keys(source, condition, seeds, len(items))
    preds["item_id"] = np.tile(items["item_id"].to_numpy(np.int64), len(seeds))
    values = np.asarray(probs, np.float64).reshape(-1, len(P_COLS))
    for j, column in enumerate(P_COLS):
        preds[column] = values[:, j]
    return preds


def final_prediction_table(
    test_probs: np.ndarray,
    test: pd.DataFrame,
    pool_probs: np.ndarray,
    pool: pd.DataFrame,
    seeds: list[int],
    source: str,
    condition: str,
) -> pd.DataFrame:
    """``final_predictions``: the final epoch's predictions of the test items and the pool,
    source, condition, seed, scope (``test`` or ``pool``), item_id, p_0..p_9."""
    parts = [
        prediction_table(probs, items, seeds, source, condition).assign(scope=scope)
        for scope, probs, items in (("test", test_probs, test), ("pool", pool_probs, pool))
    ]
    table = pd.concat(parts, ignore_index=True)
    return table[["source", "condition", "seed", "scope", "item_id", *P_COLS]]


def prediction_tables(
    result, test: pd.DataFrame, pool: pd.DataFrame, seeds: list[int], source: str, condition: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``test_predictions`` and ``pool_predictions`` at the best epoch and ``final_predictions``
    of a :class:`~soft_label_audit.trainer.TrainResult`."""
    return (
        prediction_table(result.test_probs_best, test, seeds, source, condition),
        prediction_table(result.pool_probs_best, pool, seeds, source, condition),
        final_prediction_table(
            result.test_probs, test, result.pool_probs, pool, seeds, source, condition
        ),
    )


def curve_table(
    curves_by_name: dict[str, np.ndarray],
    seeds: list[int],
    source: str,
    condition: str,
    best_epochs: np.ndarray,
) -> pd.DataFrame:
    """``curves``: source, condition, seed, epoch (1-based), the trainer's ``CURVE_NAMES``, and
    on every row the run's ``best_epoch`` (1-based, lowest ``val_loss``: the epoch of its
    ``test_predictions``) and convergence check (``val_loss_gain_last_fifth``,
    ``val_loss_converged``, :mod:`soft_label_audit.metrics.convergence`)."""
    epochs = curves_by_name["train_loss"].shape[1]
    curves = _keys(source, condition, seeds, epochs)
    curves["epoch"] = np.tile(np.arange(1, epochs + 1), len(seeds))
    for name in CURVE_NAMES:
        curves[name] = curves_by_name[name].reshape(-1)
    best_epochs = np.asarray(best_epochs, np.int64)
    gain, converged = convergence(curves_by_name["val_loss"])
    for column, per_run in zip(RUN_CURVE_COLUMNS, (best_epochs, gain, converged), strict=True):
        curves[column] = np.repeat(per_run, epochs)
    logger.info(
        "%s.%s: best validation epochs %s of %d; validation loss gain over the last fifth: "
        "max %.4f nats over seeds (%s)",
        source,
        condition,
        best_epochs.tolist(),
        epochs,
        float(np.nanmax(gain)) if np.isfinite(gain).any() else float("nan"),
        "converged: best epoch before the last fifth"
        if converged.all()
        else f"NOT converged in {int((~converged).sum())} seeds: best epoch in the last fifth",
    )
    return curves


def dynamics_record(train: pd.DataFrame, seeds: list[int], probs: np.ndarray) -> dict:
    """``dynamics``: item_ids (n,), seeds (S,), probs float32 (S, E, n, 10)."""
    return {
        "item_ids": train["item_id"].to_numpy(np.int64),
        "seeds": np.asarray(seeds, np.int64),
        "probs": probs,
    }


def log_run(result, source: str, condition: str, n_train: int) -> None:
    """One line per condition: seeds, epochs, items, time (and that of the predictions after
    training), device, final validation accuracy."""
    logger.info(
        "%s.%s: %d seeds x %d epochs on %d items, %.1f s on %s%s (%.2f s of it predicting %d "
        "test and %d pool items at two epochs); final val_acc %s",
        source,
        condition,
        result.curves["train_loss"].shape[0],
        result.curves["train_loss"].shape[1],
        n_train,
        result.seconds,
        result.device,
        " (vectorised)" if result.vectorised else "",
        result.predict_seconds,
        result.test_logits.shape[1],
        result.pool_logits.shape[1],
        np.round(result.curves["val_acc"][:, -1], 3).tolist(),
    )


def read_dynamics(dynamics: dict, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """item_ids (n,), seeds (S,) and probs (S, E, n, K) of a ``dynamics`` record, checked."""
    missing = {"item_ids", "seeds", "probs"} - set(dynamics)
    if missing:
        raise ValueError(f"{name} lacks keys {sorted(missing)}")
    item_ids = np.asarray(dynamics["item_ids"], dtype=np.int64)
    seeds = np.asarray(dynamics["seeds"], dtype=np.int64)
    probs = np.asarray(dynamics["probs"])
    if probs.ndim != 4 or probs.shape[0] != len(seeds) or probs.shape[2] != len(item_ids):
        raise ValueError(
            f"{name}: probs {probs.shape} must be (seeds={len(seeds)}, epochs, "
            f"items={len(item_ids)}, classes)"
        )
    return item_ids, seeds, probs
