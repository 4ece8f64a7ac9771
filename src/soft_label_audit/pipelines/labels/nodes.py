"""Nodes of the `labels` pipeline: unpack the study tables, call :mod:`soft_label_audit.targets`
(and the teacher of :mod:`soft_label_audit.trainer`), pack the target tables."""

from __future__ import annotations

import logging
import zlib

import numpy as np
import pandas as pd

from soft_label_audit import targets as tg
from soft_label_audit.columns import H_COLS, N_CLASSES, SPLITS, T_COLS
from soft_label_audit.data_sources.tables import images_from_column, soft_labels_from_column
from soft_label_audit.trainer import ModelConfig, TrainConfig, train_teacher

logger = logging.getLogger(__name__)

#: teacher logits table: item_id, z_0..z_9
Z_COLS = tuple(f"z_{k}" for k in range(N_CLASSES))
MNIST_TRAIN_IDS = (0, 60_000)  # item ids of the MNIST training images (70k ordering)


def _check_unique(frame: pd.DataFrame, name: str) -> None:
    dup = frame["item_id"][frame["item_id"].duplicated()]
    if len(dup):
        raise ValueError(f"{name}: item_id repeats, e.g. {dup.head(5).tolist()}")


def fit_teacher(digits: pd.DataFrame, study_digits: pd.DataFrame, labels_params: dict) -> tuple[dict, pd.DataFrame]:
    """Train the teacher on MNIST training images outside the study; logits for every study item
    without a generator label. Returns the teacher (weights, settings, accuracy) and its logits."""
    p = labels_params["teacher"]
    study_ids = set(study_digits["item_id"].tolist())
    lo, hi = MNIST_TRAIN_IDS
    pool = digits[(digits["source"] == "mnist") & digits["item_id"].between(lo, hi - 1) & ~digits["item_id"].isin(study_ids)]
    model_config = ModelConfig.from_params(p["model"])
    teacher = train_teacher(
        images_from_column(pool["image"]),
        pool["original_label"].to_numpy(),
        model_config,
        TrainConfig.from_params(p),
        n_train=int(p["n_train"]),
        n_val=int(p["n_val"]),
        seed=int(p["seed"]),
    )
    logger.info("teacher: %d images, held-out accuracy %.4f, %.1f s", teacher.n_train, teacher.val_acc, teacher.seconds)
    need = study_digits[np.isnan(soft_labels_from_column(study_digits["machine_soft_label"])).any(1)]
    logits = teacher.logits(images_from_column(need["image"]), device=str(p.get("device", "auto")))
    table = pd.DataFrame(logits.astype(np.float64), columns=list(Z_COLS))
    table.insert(0, "item_id", need["item_id"].to_numpy(np.int64))
    model = {
        "state_dict": teacher.state_dict,
        "model": {"channels": list(model_config.channels), "hidden": model_config.hidden},
        "n_train": teacher.n_train,
        "val_acc": teacher.val_acc,
    }
    return model, table


def build_condition_targets(
    study_digits: pd.DataFrame,
    human_soft_labels: pd.DataFrame,
    item_stats: pd.DataFrame,
    labels_params: dict,
    teacher_logits: pd.DataFrame | None = None,
    *,
    source: str,
    condition: str,
) -> pd.DataFrame:
    """The ``{source}.{condition}.targets`` table: item_id, split, t_0..t_9 for every study item of the source."""
    conditions = labels_params.get("conditions") or {}
    if condition not in conditions:
        raise KeyError(f"labels.conditions has no entry for condition {condition!r} (conf/base/parameters_labels.yml)")
    items = study_digits[study_digits["source"] == source]
    _check_unique(items, "study_digits")
    counts = items["split"].value_counts()
    empty = [split for split in SPLITS if counts.get(split, 0) == 0]
    if empty:
        # fail here, before any training, rather than at evaluation
        raise ValueError(
            f"study_digits has no {'/'.join(empty)} items of source {source!r} "
            f"(counts by split: {counts.to_dict()}); every source in study.sources needs train, "
            "val and test items: choose a larger study or drop the source from study.sources"
        )
    frame = items[["item_id", "split", "original_label", "machine_soft_label"]].reset_index(drop=True)
    for name, table, cols in (("human_soft_labels", human_soft_labels, list(H_COLS)), ("item_stats", item_stats, ["human_mode"])):
        _check_unique(table, name)
        merged = frame.merge(table[["item_id", *cols]], on="item_id", how="left", validate="one_to_one")
        missing = merged.loc[merged[cols].isna().any(axis=1), "item_id"]
        if len(missing):
            raise ValueError(f"{name} lacks {len(missing)} study items of source {source!r}, e.g. item_id {missing.head(5).tolist()}")
        frame = merged
    teacher = None
    if teacher_logits is not None:
        teacher = frame[["item_id"]].merge(teacher_logits, on="item_id", how="left")[list(Z_COLS)].to_numpy(np.float64)
    inputs = tg.TargetInputs(
        original=frame["original_label"].to_numpy(np.int64),
        human=frame[list(H_COLS)].to_numpy(np.float64),
        mode=frame["human_mode"].to_numpy(np.int64),
        machine=soft_labels_from_column(frame["machine_soft_label"]),
        teacher_logits=teacher,
        none_slot=str(labels_params["none_slot"]),
        stream=zlib.crc32(source.encode()),
    )
    t = tg.build_targets(condition, inputs, conditions[condition])
    logger.info("%s.%s: %d targets, mean entropy %.4f nats (human %.4f)", source, condition, len(t),
                tg.entropy(t).mean(), tg.entropy(inputs.h).mean())
    out = pd.DataFrame(t, columns=list(T_COLS))
    out.insert(0, "split", frame["split"].astype(str).to_numpy())
    out.insert(0, "item_id", frame["item_id"].to_numpy(np.int64))
    return out
