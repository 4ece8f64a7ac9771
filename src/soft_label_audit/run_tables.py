"""One condition's training, as tables: the trainer's arrays from the study tables, and the
trainer's result packed as the ``test_predictions`` and ``pool_predictions`` (best epoch),
``final_predictions`` (final epoch, test and pool), ``curves``, ``dynamics`` and ``weights`` of
the contracts (docs/architecture.md), each run's post-hoc temperatures (fitted on its
validation items, :mod:`soft_label_audit.metrics.temperature`) on its ``curves`` rows, and the
tables of a post-hoc condition made from its base condition's (:func:`temperature_scaled_tables`).
Plain pandas and numpy; no Kedro."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from soft_label_audit.columns import P_COLS, RUN_CURVE_COLUMNS, T_COLS
from soft_label_audit.data_sources.tables import images_from_column
from soft_label_audit.metrics.convergence import convergence
from soft_label_audit.metrics.temperature import fit_temperature, scale_probabilities
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


def run_temperatures(val_logits: np.ndarray, val_labels: np.ndarray) -> np.ndarray:
    """(K,) the post-hoc temperature of each run, fitted on its (K, m, 10) validation logits
    against the original labels (:func:`~soft_label_audit.metrics.temperature.fit_temperature`);
    NaN without validation items."""
    logits = np.asarray(val_logits, np.float64)
    if logits.ndim != 3 or logits.shape[1] == 0:
        return np.full(len(logits), np.nan)
    return np.array([fit_temperature(z, val_labels) for z in logits])


def result_temperatures(result, val: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(best, final): each run's temperature fitted on the validation items' logits at its best
    epoch and at the final epoch (a :class:`~soft_label_audit.trainer.TrainResult`)."""
    labels = val["original_label"].to_numpy(np.int64)
    return (
        run_temperatures(result.val_logits_best, labels),
        run_temperatures(result.val_logits, labels),
    )


def curve_table(
    curves_by_name: dict[str, np.ndarray],
    seeds: list[int],
    source: str,
    condition: str,
    best_epochs: np.ndarray,
    temperatures: tuple[np.ndarray, np.ndarray],
) -> pd.DataFrame:
    """``curves``: source, condition, seed, epoch (1-based), the trainer's ``CURVE_NAMES``, and
    on every row the run's ``best_epoch`` (1-based, lowest ``val_loss``: the epoch of its
    ``test_predictions``), convergence check (``val_loss_gain_last_fifth``,
    ``val_loss_converged``, :mod:`soft_label_audit.metrics.convergence`) and post-hoc
    temperatures ``temperature_best`` and ``temperature_final`` (``temperatures``, (K,) each:
    :func:`result_temperatures`)."""
    epochs = curves_by_name["train_loss"].shape[1]
    curves = _keys(source, condition, seeds, epochs)
    curves["epoch"] = np.tile(np.arange(1, epochs + 1), len(seeds))
    for name in CURVE_NAMES:
        curves[name] = curves_by_name[name].reshape(-1)
    best_epochs = np.asarray(best_epochs, np.int64)
    gain, converged = convergence(curves_by_name["val_loss"])
    t_best, t_final = (np.asarray(t, np.float64) for t in temperatures)
    per_runs = (best_epochs, gain, converged, t_best, t_final)
    for column, per_run in zip(RUN_CURVE_COLUMNS, per_runs, strict=True):
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


def result_curve_table(
    result, val: pd.DataFrame, seeds: list[int], source: str, condition: str
) -> pd.DataFrame:
    """:func:`curve_table` of a :class:`~soft_label_audit.trainer.TrainResult`, its post-hoc
    temperatures fitted on the validation items ``val`` (:func:`result_temperatures`)."""
    temperatures = result_temperatures(result, val)
    return curve_table(result.curves, seeds, source, condition, result.best_epochs, temperatures)


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
        "test, %d pool and %d validation items at two epochs); final val_acc %s",
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
        result.val_logits.shape[1],
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


def _scaled(table: pd.DataFrame, temperatures: dict[int, float], condition: str) -> pd.DataFrame:
    """A prediction table with each seed's probabilities scaled by its temperature and the
    ``condition`` column set to ``condition``."""
    out = table.copy()
    out["condition"] = condition
    probs = out[list(P_COLS)].to_numpy(np.float64)
    scaled = np.empty_like(probs)
    seeds = out["seed"].to_numpy(np.int64)
    for seed in np.unique(seeds):
        rows = seeds == seed
        scaled[rows] = scale_probabilities(probs[rows], temperatures[int(seed)])
    out[list(P_COLS)] = scaled
    return out


def _per_seed(curves: pd.DataFrame, column: str, name: str) -> dict[int, float]:
    """{seed: value} of a per-run column of ``curves``, which must be set on every row."""
    values = curves.groupby("seed")[column].unique()
    odd = [int(s) for s, v in values.items() if len(v) != 1 or not np.isfinite(v[0]) or v[0] <= 0]
    if odd:
        raise ValueError(
            f"{name}: seeds {odd[:5]} have no single positive {column} (a run without "
            "validation items has no temperature to scale by)"
        )
    return {int(s): float(v[0]) for s, v in values.items()}


def temperature_scaled_tables(
    test_predictions: pd.DataFrame,
    pool_predictions: pd.DataFrame,
    final_predictions: pd.DataFrame,
    curves: pd.DataFrame,
    dynamics: dict,
    base: str,
    condition: str,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """The prediction tables, curves and dynamics of the post-hoc condition ``condition`` from
    those of its base condition (``base``: its namespace, for messages): each run's best-epoch
    predictions (test and pool) scaled by its ``temperature_best``, its final-epoch predictions
    by its ``temperature_final``
    (:func:`~soft_label_audit.metrics.temperature.scale_probabilities`), the ``condition``
    column renamed; ``curves`` (renamed) and ``dynamics`` are the base's (the training is the
    same run)."""
    name = f"{base}.curves"
    best, final = (_per_seed(curves, f"temperature_{e}", name) for e in ("best", "final"))
    tables = []
    for table, what, temperatures in (
        (test_predictions, "test_predictions", best),
        (pool_predictions, "pool_predictions", best),
        (final_predictions, "final_predictions", final),
    ):
        missing = sorted(set(table["seed"].astype(int)) - set(temperatures))
        if missing:
            raise ValueError(f"{base}.{what}: seeds {missing[:5]} have no curves")
        tables.append(_scaled(table, temperatures, condition))
    copied = curves.copy()
    copied["condition"] = condition
    return (*tables, copied, dict(dynamics))


def weights_with_temperatures(weights: dict, curves: pd.DataFrame, name: str) -> dict:
    """A post-hoc condition's ``weights``: its base's final weights with each seed's
    temperatures from ``curves`` (``temperature_best``, ``temperature_final``: lists in the
    order of ``seeds``); a model of the condition is the base model whose logits are divided by
    ``temperature_final`` (its final-epoch predictions)."""
    best, final = (_per_seed(curves, f"temperature_{e}", name) for e in ("best", "final"))
    seeds = [int(s) for s in weights["seeds"]]
    missing = [s for s in seeds if s not in best]
    if missing:
        raise ValueError(f"{name}: the weights' seeds {missing[:5]} have no curves")
    return {
        **weights,
        "temperature_best": [best[s] for s in seeds],
        "temperature_final": [final[s] for s in seeds],
    }
