"""Nodes of the `labels` pipeline: unpack the study tables, call :mod:`soft_label_audit.targets`
(and the teachers of :mod:`soft_label_audit.trainer`), pack the target tables and summarise
how strong each condition's targets are."""

from __future__ import annotations

import logging
import zlib

import numpy as np
import pandas as pd

from soft_label_audit import configs
from soft_label_audit import targets as tg
from soft_label_audit.columns import H_COLS, MNIST_TRAIN_IDS, N_CLASSES, SPLITS, T_COLS
from soft_label_audit.crowd import aggregation, statistics
from soft_label_audit.data_sources.pool import held_out_ids
from soft_label_audit.data_sources.study import StudyItemsError
from soft_label_audit.data_sources.tables import images_from_column, soft_labels_from_column
from soft_label_audit.parameter_tree import read_teacher
from soft_label_audit.trainer import cross_fit_teacher, train_teacher

logger = logging.getLogger(__name__)

#: teacher logits table: item_id, z_0..z_9
Z_COLS = tuple(f"z_{k}" for k in range(N_CLASSES))
#: Builder.needs -> the catalog dataset that feeds it
NEED_DATASETS = {
    "human": "human_soft_labels",
    "mode": "item_stats",
    "teacher": "teacher_logits",
    "large_teacher": "large_teacher_logits",
}
SUMMARY_COLUMNS = [
    "source",
    "condition",
    "split",
    "n_items",
    "mean_entropy",
    "mean_off_label_mass",
    "share_argmax_not_original",
    "n_argmax_not_original",
]


def teacher_seed(seed: int, source: str) -> int:
    """The cross-fitted teacher's seed for one source (its fold draw, and ``+ f`` for fold f):
    ``labels.teacher.seed`` for mnist, as when the teacher labelled MNIST items alone, and
    ``seed + crc32(source)`` for every other source (the stream id the targets use), so no two
    sources share a fold draw or a fold's seed and each source's teacher depends only on its
    own items."""
    return int(seed) if source == "mnist" else int(seed) + zlib.crc32(source.encode())


def _by_source(study_digits: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The study items of each source, sources in order of first appearance."""
    sources = dict.fromkeys(study_digits["source"].astype(str))
    return [(s, study_digits[study_digits["source"].astype(str) == s]) for s in sources]


def _logits_table(item_ids: np.ndarray, logits: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame(np.asarray(logits, np.float64), columns=list(Z_COLS))
    table.insert(0, "item_id", np.asarray(item_ids, np.int64))
    return table


def fit_teacher(
    study_digits: pd.DataFrame, teacher_params: dict, training_params: dict
) -> tuple[dict, pd.DataFrame]:
    """The ``machine_soft`` teacher, one per source: that source's labelled budget (the hard
    original labels of its training items, all its students train on), cross-fitted in
    ``k_folds`` folds with the source's seed (:func:`teacher_seed`). A training item's logits
    come from the fold model that did not see it; validation and test items get the mean logits
    of the k fold models (no model trained on all training items: that would need one more
    training and would see every training item). Returns the record (per source: fold models,
    fold per item, accuracies) and the logits of every study item."""
    config = read_teacher(teacher_params, training_params, "teacher")
    k_folds = config.k_folds
    records, tables = {}, [_logits_table(np.zeros(0), np.zeros((0, N_CLASSES)))]
    for source, items in _by_source(study_digits):
        seed = teacher_seed(config.seed, source)
        teacher = cross_fit_teacher(
            images_from_column(items["image"]),
            items["original_label"].to_numpy(np.int64),
            items["split"].astype(str).to_numpy() == "train",
            config.model,
            config.train,
            k_folds=k_folds,
            seed=seed,
        )
        records[source] = _cross_fit_record(teacher, items, source, seed, k_folds)
        tables.append(_logits_table(items["item_id"].to_numpy(), teacher.logits))
    model = {"model": config.model.settings(), "k_folds": k_folds, "sources": records}
    return model, pd.concat(tables, ignore_index=True)


def fit_large_teacher(
    digits: pd.DataFrame,
    study_digits: pd.DataFrame,
    pool_digits: pd.DataFrame,
    large_teacher_params: dict,
    training_params: dict,
) -> tuple[dict, pd.DataFrame]:
    """The ``machine_soft_large_teacher`` teacher: trained on MNIST training images outside the
    study and outside the held-out scoring pool (extra labelled data); logits for every study
    item, the synthetic blends included."""
    config = read_teacher(large_teacher_params, training_params, "large_teacher")
    extra = large_teacher_images(digits, study_digits, pool_digits)
    teacher = train_teacher(
        images_from_column(extra["image"]),
        extra["original_label"].to_numpy(),
        config.model,
        config.train,
        n_train=config.n_train,
        n_val=config.n_val,
        seed=config.seed,
    )
    logits = teacher.logits(images_from_column(study_digits["image"]), device=config.device)
    source = study_digits["source"].astype(str).to_numpy()
    shifts = {s: _train_shifts(logits[source == s], items) for s, items in _by_source(study_digits)}
    model = _large_teacher_record(teacher, shifts, config.model)
    return model, _logits_table(study_digits["item_id"].to_numpy(), logits)


def large_teacher_images(
    digits: pd.DataFrame, study_digits: pd.DataFrame, pool_digits: pd.DataFrame
) -> pd.DataFrame:
    """The rows of ``digits`` the large teacher draws its training and validation images from:
    MNIST training images that are neither study items nor held out for scoring (the pool's
    MNIST items and its blends' parents, :func:`soft_label_audit.data_sources.pool.held_out_ids`;
    study items that are MNIST test images are never in it). Logs how many it leaves out."""
    train = digits[(digits["source"] == "mnist") & digits["item_id"].isin(MNIST_TRAIN_IDS)]
    in_study = train["item_id"].isin(study_digits["item_id"])
    held_out = train["item_id"].isin(held_out_ids(pool_digits))
    logger.info(
        "large teacher pool: %d MNIST training images; %d study items and %d held-out "
        "scoring-pool images excluded",
        int((~in_study & ~held_out).sum()),
        int(in_study.sum()),
        int((held_out & ~in_study).sum()),
    )
    return train[~in_study & ~held_out]


def _large_teacher_record(teacher, shifts: dict[str, int], model_config) -> dict:
    """The saved ``large_teacher_model`` (``train_argmax_not_original`` per source); logged."""
    logger.info(
        "large teacher: %d extra images, held-out accuracy %.4f, %.1f s; argmax != original "
        "on the training items of %s",
        teacher.n_train,
        teacher.val_acc,
        teacher.seconds,
        ", ".join(f"{source} {n}" for source, n in shifts.items()),
    )
    return {
        "state_dict": teacher.state_dict,
        "model": model_config.settings(),
        "n_train": teacher.n_train,
        "val_acc": teacher.val_acc,
        "train_argmax_not_original": shifts,
    }


def _cross_fit_record(teacher, items: pd.DataFrame, source: str, seed: int, k_folds: int) -> dict:
    """One source's part of the saved ``teacher_model`` (fold models, seed, fold per item,
    accuracies); logged."""
    shifts = _train_shifts(teacher.logits, items)
    is_train = items["split"].astype(str).to_numpy() == "train"
    # the labels a fold model learns from: the training items outside its fold (the fewest)
    per_fold = int(is_train.sum() - np.bincount(teacher.fold[is_train], minlength=k_folds).max())
    logger.info(
        "teacher for %s (cross-fitted, %d folds on %d training items, at least %d labels per "
        "fold model, seed %d): out-of-fold accuracy %.4f, fold-average accuracy on %d val/test "
        "items %.4f, argmax != original on %d training items, %.1f s",
        *(source, k_folds, int(is_train.sum()), per_fold, seed, teacher.oof_acc),
        *(int((~is_train).sum()), teacher.heldout_acc, shifts, teacher.seconds),
    )
    item_ids = items["item_id"].astype(int).tolist()
    return {
        "state_dicts": teacher.state_dicts,
        "seed": seed,
        "n_train": int(is_train.sum()),
        "fold": dict(zip(item_ids, teacher.fold.tolist(), strict=True)),
        "oof_acc": teacher.oof_acc,
        "heldout_acc": teacher.heldout_acc,
        "train_argmax_not_original": shifts,
    }


def _train_shifts(logits: np.ndarray, items: pd.DataFrame) -> int:
    """Training items whose teacher argmax is not their original label."""
    train = items["split"].astype(str).to_numpy() == "train"
    return int((logits.argmax(1) != items["original_label"].to_numpy())[train].sum())


def _join(
    frame: pd.DataFrame, table: pd.DataFrame, name: str, cols: list[str], source: str
) -> pd.DataFrame:
    merged = frame.merge(table[["item_id", *cols]], on="item_id", how="left", validate="one_to_one")
    missing = merged.loc[merged[cols].isna().any(axis=1), "item_id"]
    if len(missing):
        raise ValueError(
            f"{name} lacks {len(missing)} study items of source {source!r}, "
            f"e.g. item_id {missing.head(5).tolist()}"
        )
    return merged


def build_condition_targets(
    study_digits: pd.DataFrame,
    options: dict | None,
    none_slot: str,
    human_soft_labels: pd.DataFrame | None = None,
    item_stats: pd.DataFrame | None = None,
    teacher_logits: pd.DataFrame | None = None,
    *,
    source: str,
    condition: str,
) -> pd.DataFrame:
    """The ``{source}.{condition}.targets`` table: item_id, split, t_0..t_9 for every study item
    of the source. ``options`` are ``labels.conditions.<condition>``; the builder declares which
    of the human labels (``human_soft_labels``), the human mode (``item_stats``) and teacher
    logits it reads (:data:`soft_label_audit.targets.BUILDERS`), and only those are wired."""
    options = _condition_options(options, condition)
    frame = _source_items(study_digits, source)
    inputs = _target_inputs(
        frame,
        tg.builder_for(condition).needs,
        none_slot,
        source,
        human_soft_labels,
        item_stats,
        teacher_logits,
    )
    t = tg.build_targets(condition, inputs, options)
    logger.info(
        "%s.%s: %d targets, mean entropy on training items %.4f nats, off-label mass %.4f",
        *(source, condition, len(t)),
        *(tg.entropy(t[inputs.train]).mean(), tg.off_label_mass(t[inputs.train]).mean()),
    )
    out = pd.DataFrame(t, columns=list(T_COLS))
    out.insert(0, "split", frame["split"].astype(str).to_numpy())
    out.insert(0, "item_id", frame["item_id"].to_numpy(np.int64))
    return out


def _condition_options(options: dict | None, condition: str) -> dict:
    if options is None:
        raise KeyError(
            f"labels.conditions has no entry for condition {condition!r} "
            "(conf/base/parameters_labels.yml)"
        )
    return options


def _source_items(study_digits: pd.DataFrame, source: str) -> pd.DataFrame:
    """The source's study items (item_id, split, original_label, machine_soft_label); every
    split must have some, else the run stops here, before any training."""
    items = study_digits[study_digits["source"] == source]
    counts = items["split"].value_counts()
    empty = [split for split in SPLITS if counts.get(split, 0) == 0]
    if empty:
        raise StudyItemsError(
            f"study_digits has no {'/'.join(empty)} items of source {source!r} "
            f"(counts by split: {counts.to_dict()}); every source in study.sources needs train, "
            "val and test items: choose a larger study or drop the source from study.sources"
        )
    columns = ["item_id", "split", "original_label", "machine_soft_label"]
    return items[columns].reset_index(drop=True)


def _target_inputs(
    frame: pd.DataFrame,
    needs,
    none_slot: str,
    source: str,
    human_soft_labels: pd.DataFrame | None,
    item_stats: pd.DataFrame | None,
    teacher_logits: pd.DataFrame | None,
) -> tg.TargetInputs:
    """The builder's inputs for the items of ``frame``, in its order (only what it needs)."""
    human = mode = teacher = None
    if "human" in needs:
        frame = _join(frame, human_soft_labels, "human_soft_labels", list(H_COLS), source)
        human = frame[list(H_COLS)].to_numpy(np.float64)
    if "mode" in needs:
        frame = _join(frame, item_stats, "item_stats", ["human_mode"], source)
        mode = frame["human_mode"].to_numpy(np.int64)
    if teacher_logits is not None:
        teacher = (
            frame[["item_id"]]
            .merge(teacher_logits, on="item_id", how="left")[list(Z_COLS)]
            .to_numpy(np.float64)
        )
    return tg.TargetInputs(
        original=frame["original_label"].to_numpy(np.int64),
        human=human,
        mode=mode,
        machine=soft_labels_from_column(frame["machine_soft_label"]),
        teacher_logits=teacher,
        none_slot=configs.none_slot(none_slot),
        train=frame["split"].astype(str).to_numpy() == "train",
        stream=zlib.crc32(source.encode()),
    )


def summarise_targets(
    study_digits: pd.DataFrame, *targets: pd.DataFrame, keys: list[tuple[str, str]]
) -> pd.DataFrame:
    """``targets_summary``: per (source, condition, split) the mean target entropy (nats), the mean
    mass off the target's own top label (1 - max t, :func:`targets.off_label_mass`) and the
    number and share of items whose target puts more mass on another label than on the original
    one (the condition's shifts); ``keys`` name the (source, condition) of each targets table.
    The conditions that carry the human mode must shift the same items (refused otherwise)."""
    if len(targets) != len(keys):
        raise ValueError(
            f"summarise_targets got {len(targets)} tables for {len(keys)} (source, condition) keys"
        )
    original = study_digits.set_index("item_id")["original_label"]
    rows, shifted = [], {}
    for (source, condition), table in zip(keys, targets, strict=True):
        o = original.reindex(table["item_id"]).to_numpy()
        if np.isnan(o.astype(float)).any():
            raise ValueError(f"{source}.{condition}.targets names items missing from study_digits")
        t = table[list(T_COLS)].to_numpy(np.float64)
        split = table["split"].astype(str).to_numpy()
        for name in ("all", *SPLITS):
            m = np.ones(len(t), bool) if name == "all" else split == name
            strength = tg.strength(t, o.astype(np.int64), m)
            rows.append({"source": source, "condition": condition, "split": name, **strength})
        moved = tg.argmax_not_original(t, o.astype(np.int64))
        shifted[source, condition] = frozenset(table["item_id"].to_numpy()[moved].tolist())
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    _log_summary(out)
    _check_one_shift_set(shifted)
    return out


def _check_one_shift_set(shifted: dict[tuple[str, str], frozenset]) -> None:
    """The conditions that carry the human mode (``Builder.carries_mode``) must shift the same
    items of a source (``item_stats.mode_shift``); logged per source, refused otherwise."""
    for source in dict.fromkeys(s for s, _ in shifted):
        carriers = {
            c: items
            for (s, c), items in shifted.items()
            if s == source and tg.builder_for(c).carries_mode
        }
        logger.info(
            "mode shifts per condition (%s, all splits): %s",
            source,
            ", ".join(f"{c} {len(items)}" for (s, c), items in shifted.items() if s == source),
        )
        if len(set(carriers.values())) > 1:
            raise ValueError(
                f"the conditions that carry the human mode shift different items of source "
                f"{source!r}: "
                + "; ".join(
                    f"{c}: {sorted(items)[:5]} ({len(items)})" for c, items in carriers.items()
                )
                + "; every one must shift exactly the items of item_stats.mode_shift"
            )


def _log_summary(out: pd.DataFrame) -> None:
    for row in out[out["split"] == "train"].itertuples():
        logger.info(
            "targets_summary %s.%s (train): entropy %.3f, off-label mass %.3f, "
            "argmax != original %.3f (%d items)",
            row.source,
            row.condition,
            row.mean_entropy,
            row.mean_off_label_mass,
            row.share_argmax_not_original,
            row.n_argmax_not_original,
        )


def count_mode_shifts_by_rule(
    human_soft_labels_by_rule: pd.DataFrame,
    study_digits: pd.DataFrame,
    validated_annotations: pd.DataFrame,
    none_slot: str,
    mode_support: dict,
    dawid_skene: dict,
) -> pd.DataFrame:
    """``mode_shifts_by_rule``: per aggregation rule and source, how many items the human argmax
    moves off the original label, how many of those moves the votes support (mode shifts) and
    how many items have an unsupported mode; ``assumptions_ok`` and ``assumption_note`` say
    whether the rule's assumptions hold on the votes it was fitted on
    (:func:`~soft_label_audit.crowd.aggregation.check_assumptions`, ``annotation.dawid_skene``
    for Dawid-Skene); a row whose assumptions fail is logged as a warning."""
    rows, support = [], statistics.ModeSupport.from_params(mode_support)
    model = aggregation.DawidSkeneSoft.from_params(dawid_skene)
    for rule, labels in human_soft_labels_by_rule.groupby("aggregation", sort=True):
        # on every vote, as the rule was fitted (Dawid-Skene's annotators span the sources)
        checked = aggregation.check_assumptions(validated_annotations, str(rule), model)
        stats = statistics.item_statistics(
            labels,
            study_digits,
            validated_annotations,
            none_slot=configs.none_slot(none_slot),
            mode_support=support,
        )
        for source, g in stats.groupby("source", sort=True):
            rows.append(
                {
                    "aggregation": str(rule),
                    "source": str(source),
                    **_shift_counts(g),
                    "assumptions_ok": checked.ok,
                    "assumption_note": checked.note,
                }
            )
    out = pd.DataFrame(rows)
    _log_mode_shifts(out)
    return out


def _log_mode_shifts(out: pd.DataFrame) -> None:
    for row in out.itertuples():
        line = (
            "mode shifts (%s, %s): argmax != original %d, supported %d, unsupported modes %d",
            row.aggregation,
            row.source,
            row.argmax_not_original,
            row.mode_shift,
            row.mode_unsupported,
        )
        if row.assumptions_ok:
            logger.info(*line)
        else:
            logger.warning(
                line[0] + "; the rule's assumptions fail here (%s): do not read these counts "
                "as the crowd's",
                *line[1:],
                row.assumption_note,
            )


def _shift_counts(g: pd.DataFrame) -> dict:
    """Counts of one (rule, source) group of item statistics."""
    moved = g["human_argmax"] != g["original_label"]
    return {
        "n_items": int(len(g)),
        "argmax_not_original": int(moved.sum()),
        "mode_shift": int(g["mode_shift"].sum()),
        "argmax_not_original_unsupported": int((moved & g["mode_unsupported"]).sum()),
        "mode_unsupported": int(g["mode_unsupported"].sum()),
        "mean_human_entropy": float(g["human_entropy"].mean()),
    }
