"""Nodes of the `annotation` pipeline: thin adapters over ``soft_label_audit.crowd``.

Validation happens in :func:`collect_annotations`, the only node that sees the input file,
so a bad file stops the run before any output of this pipeline is saved.
"""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from soft_label_audit.columns import H_COLS
from soft_label_audit.crowd import (
    aggregation,
    figures,
    perception,
    released,
    simulated,
    statistics,
    validity,
)
from soft_label_audit.crowd.inputs import AnnotationInput
from soft_label_audit.crowd.validation import AnnotationValidationError, validate_votes
from soft_label_audit.data_sources.tables import images_from_column

logger = logging.getLogger(__name__)

MNIST_TEST_IDS = (60_000, 70_000)
STUDY_DIGIT_COLUMNS = [
    "item_id",
    "source",
    "split",
    "original_label",
    "image",
    "machine_soft_label",
]


def _empty_votes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": pd.Series(dtype="int64"),
            "annotator_id": pd.Series(dtype="str"),
            "choice": pd.Series(dtype="str"),
            "unsure": pd.Series(dtype="bool"),
            "response_time": pd.Series(dtype="float64"),
        }
    )


def _check_source(annotation_input: AnnotationInput, params: dict[str, Any]) -> None:
    """The catalog and the parameters must name the same source (and file)."""
    wanted = str(params["source"])
    if annotation_input.source != wanted:
        raise ValueError(
            f"parameter annotation.source={wanted!r} but the catalog entry annotation_input reads "
            f"{annotation_input.source!r}; choose the source on the command line "
            f'(--params "annotation.source={wanted}"), which sets both'
        )
    key = {"raw_file": "raw_path", "released": "released_path"}.get(wanted)
    if key and str(params[key]) != annotation_input.path:
        raise ValueError(
            f"parameter annotation.{key}={params[key]!r} but the catalog reads {annotation_input.path!r}; "
            f'pass the file on the command line (--params "annotation.{key}=PATH"), which sets both'
        )


def _simulate(
    digits: pd.DataFrame, study: pd.DataFrame, crowd: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    memory = digits[
        (digits["item_id"] >= MNIST_TEST_IDS[0]) & (digits["item_id"] < MNIST_TEST_IDS[1])
    ]
    memory = memory[memory["source"] == "mnist"]
    size = int(crowd["perception"]["memory_size"])
    if len(memory) > size:
        memory = memory.sample(n=size, random_state=int(crowd["seed"])).sort_values("item_id")
    overlap = np.intersect1d(memory["item_id"], study["item_id"])
    if len(overlap):
        raise ValueError(
            f"study items {overlap[:5].tolist()} are MNIST test images, which the simulated crowd "
            "remembers; study MNIST items must be training images (digits.study.pool_item_ids)"
        )
    if memory.empty:
        raise ValueError(
            "`digits` holds no MNIST test images (ids 60000..69999) for the simulated crowd's memory"
        )
    p = crowd["perception"]
    observers = perception.observer_profiles(
        images_from_column(memory["image"]),
        memory["original_label"].to_numpy(),
        n_profiles=int(p.get("n_profiles", 1)),
        memory_share=float(p.get("memory_share", 1.0)),
        n_components=_int_range(p["n_components"], "n_components"),
        k_neighbours=_int_range(p["k_neighbours"], "k_neighbours"),
        bandwidth_scale=float(p["bandwidth_scale"]),
        typical_quantile=float(p["typical_quantile"]),
        class_neighbours=int(p.get("class_neighbours", 5)),
        seed=int(crowd["seed"]),
    )
    crowd_model = simulated.SimulatedCrowd(simulated.CrowdConfig.from_params(crowd), observers)
    votes = crowd_model.annotate(study["item_id"].to_numpy(), images_from_column(study["image"]))
    return votes, crowd_model.annotators_


def _int_range(value: Any, name: str) -> tuple[int, int]:
    """A [lo, hi] integer range of simulated_crowd.perception (a single number: lo = hi)."""
    lo, hi = (int(value), int(value)) if np.isscalar(value) else (int(v) for v in value)
    if hi < lo:
        raise ValueError(f"simulated_crowd.perception.{name} = [{lo}, {hi}] must be increasing")
    return lo, hi


def collect_annotations(
    annotation_input: AnnotationInput,
    digits: pd.DataFrame,
    study_items: pd.DataFrame,
    annotation: dict[str, Any],
    simulated_crowd: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Votes (or released soft labels) of the chosen source, validated.

    Returns raw_annotations, validated_annotations, study_digits, released_soft_labels (long,
    empty unless ``released``) and annotator_traits (simulated crowd only, else empty).
    """
    _check_source(annotation_input, annotation)
    source = annotation_input.source
    traits = pd.DataFrame({"annotator_id": pd.Series(dtype="str")})
    released_soft = pd.DataFrame(columns=["item_id", *H_COLS, "aggregation", "pct_unsure"])
    if source == "released":
        config = released.ReleasedConfig(
            soft_label_column=str(annotation["released"]["soft_label_column"]),
            sum_tolerance=float(annotation["soft_label_tolerance"]),
            image_tolerance=int(annotation["released"]["image_tolerance"]),
            non_mnist_id_offset=int(annotation["released"]["non_mnist_id_offset"]),
            source_map={
                str(k).lower(): str(v) for k, v in annotation["released"]["source_map"].items()
            },
        )
        released.validate_released(annotation_input.frame, annotation_input.path, config)
        study, released_soft = released.released_to_study(
            annotation_input.frame, digits, annotation_input.path, config
        )
        raw = _empty_votes()
        validated = _empty_votes()
        logger.info(
            "Released annotations: %d items from %s (soft labels from %s)",
            len(study),
            annotation_input.path,
            config.soft_label_column,
        )
    else:
        study = study_items[["item_id", "source", "split", "original_label"]].merge(
            digits[["item_id", "image", "machine_soft_label"]],
            on="item_id",
            how="left",
            validate="one_to_one",
        )
        if study["image"].isna().any():
            missing = study.loc[study["image"].isna(), "item_id"].head(5).tolist()
            raise ValueError(f"study items {missing} are missing from `digits`")
        if source == "simulated":
            frame, traits = _simulate(digits, study, simulated_crowd)
            file = "the simulated crowd"
        else:
            frame, file = annotation_input.frame, annotation_input.path
        require_all = bool(annotation["require_votes_for_all_study_items"])
        try:
            raw = validate_votes(frame, study_items, file, require_all_items=require_all)
        except AnnotationValidationError as exc:
            # one message naming file, rows and rule; no traceback of pandera internals
            raise AnnotationValidationError(str(exc)) from None
        study = study[study["item_id"].isin(raw["item_id"])]
        validated = raw.assign(annotation_source=source)
        logger.info(
            "%s: %d votes on %d items by %d annotators",
            file,
            len(raw),
            raw["item_id"].nunique(),
            raw["annotator_id"].nunique(),
        )
    study_digits = (
        study[STUDY_DIGIT_COLUMNS].reset_index(drop=True).assign(annotation_source=source)
    )
    return raw, validated, study_digits, released_soft, traits


def aggregate_soft_labels(
    validated_annotations: pd.DataFrame,
    released_soft_labels: pd.DataFrame,
    study_digits: pd.DataFrame,
    annotation: dict[str, Any],
) -> pd.DataFrame:
    """``human_soft_labels_by_rule``: every rule (long: one row per item and rule)."""
    source = (
        str(study_digits["annotation_source"].iloc[0])
        if len(study_digits)
        else str(annotation["source"])
    )
    if source == "released":
        table = released_soft_labels.drop(columns=["pct_unsure"])
    else:
        votes = validated_annotations
        table = pd.concat(
            [
                aggregation.aggregate(votes, rule, annotation.get("dawid_skene"))
                for rule in annotation["rules"]
            ],
            ignore_index=True,
        )
    aggregation.check_soft_labels(table)
    table["item_id"] = table["item_id"].astype("int64")
    table["aggregation"] = table["aggregation"].astype(str)
    return table.assign(annotation_source=source)[
        ["item_id", *H_COLS, "aggregation", "annotation_source"]
    ]


def choose_rule(annotation: dict[str, Any]) -> str:
    if annotation["source"] == "released":
        return f"released:{annotation['released']['soft_label_column']}"
    rule = str(annotation["aggregation"])
    if rule not in annotation["rules"]:
        raise ValueError(
            f"annotation.aggregation={rule!r} is not among annotation.rules {annotation['rules']}"
        )
    return rule


def select_soft_labels(
    human_soft_labels_by_rule: pd.DataFrame, annotation: dict[str, Any]
) -> pd.DataFrame:
    """``human_soft_labels``: the rows of the rule chosen by ``annotation.aggregation``."""
    rule = choose_rule(annotation)
    chosen = human_soft_labels_by_rule[human_soft_labels_by_rule["aggregation"] == rule]
    return chosen.reset_index(drop=True)


def compute_item_stats(
    human_soft_labels: pd.DataFrame,
    validated_annotations: pd.DataFrame,
    study_digits: pd.DataFrame,
    released_soft_labels: pd.DataFrame,
    none_slot: str,
    mode_support: dict[str, Any],
) -> pd.DataFrame:
    """``item_stats``; the entropy follows ``labels.none_slot`` (the ``human_soft`` target's
    entropy) and a mode shift needs ``annotation.mode_support``."""
    pct = None
    if len(released_soft_labels):
        pct = (
            released_soft_labels.drop_duplicates("item_id")
            .set_index("item_id")["pct_unsure"]
            .astype(float)
        )
    stats = statistics.item_statistics(
        human_soft_labels,
        study_digits,
        validated_annotations,
        pct,
        none_slot=str(none_slot),
        mode_support=mode_support,
    )
    for source, group in stats.groupby("source"):
        logger.info(
            "item_stats (%s): %d items, human argmax != original on %d, supported mode "
            "shifts %d, unsupported modes %d",
            source,
            len(group),
            int((group["human_argmax"] != group["original_label"]).sum()),
            int(group["mode_shift"].sum()),
            int(group["mode_unsupported"].sum()),
        )
    source = human_soft_labels["annotation_source"].iloc[0] if len(human_soft_labels) else ""
    return stats.assign(annotation_source=source)


def compute_annotator_stats(
    validated_annotations: pd.DataFrame,
    human_soft_labels: pd.DataFrame,
    annotator_traits: pd.DataFrame,
    annotation_report: dict[str, Any],
) -> pd.DataFrame:
    """Per annotator agreement with the aggregate; simulated traits appended as ``sim_*``."""
    stats = statistics.annotator_statistics(
        validated_annotations,
        human_soft_labels,
        float(annotation_report["suspect_agreement_below"]),
    )
    if len(annotator_traits.columns) > 1:
        stats = stats.merge(
            annotator_traits.add_prefix("sim_").rename(
                columns={"sim_annotator_id": "annotator_id"}
            ),
            on="annotator_id",
            how="left",
        )
    source = human_soft_labels["annotation_source"].iloc[0] if len(human_soft_labels) else ""
    return stats.assign(annotation_source=source)


def compute_agreement(
    validated_annotations: pd.DataFrame, item_stats: pd.DataFrame
) -> pd.DataFrame:
    table = statistics.agreement_summary(validated_annotations, item_stats)
    source = item_stats["annotation_source"].iloc[0] if len(item_stats) else ""
    table = table.assign(annotation_source=source)
    for row in table.itertuples():
        logger.info(
            "agreement [%s, %s]: %d items, unanimous %.3f, mean entropy %.3f nats, mode shift %.3f, alpha %.3f",
            source,
            row.scope,
            row.n_items,
            row.unanimous_share,
            row.mean_human_entropy,
            row.mode_shift_share,
            row.krippendorff_alpha,
        )
    return table


def plot_entropy_by_source(item_stats: pd.DataFrame) -> plt.Figure:
    return figures.entropy_by_source(item_stats, _source(item_stats))


def plot_mode_confusion(item_stats: pd.DataFrame) -> plt.Figure:
    return figures.mode_confusion(item_stats, _source(item_stats))


def plot_disputed_items(
    item_stats: pd.DataFrame,
    human_soft_labels: pd.DataFrame,
    study_digits: pd.DataFrame,
    annotation_report: dict[str, Any],
) -> plt.Figure:
    return figures.disputed_items(
        item_stats,
        human_soft_labels,
        study_digits,
        int(annotation_report["n_disputed"]),
        _source(item_stats),
    )


def check_crowd_validity(
    item_stats: pd.DataFrame,
    human_soft_labels: pd.DataFrame,
    validated_annotations: pd.DataFrame,
    study_digits: pd.DataFrame,
    digits: pd.DataFrame,
    crowd_validity: dict[str, Any],
    none_slot: str,
) -> tuple[pd.DataFrame, plt.Figure]:
    """``crowd_validity`` table and figure (see :mod:`soft_label_audit.crowd.validity`).

    The independent classifier learns from MNIST training images that are not study items
    (the simulated crowd remembers test images only, so the two never share an image).
    """
    targets = validity.ValidityTargets.from_params(crowd_validity)
    pool = digits[
        (digits["source"] == "mnist")
        & (digits["item_id"] < MNIST_TEST_IDS[0])
        & ~digits["item_id"].isin(study_digits["item_id"])
    ]
    table = validity.crowd_validity(
        item_stats,
        human_soft_labels,
        validated_annotations,
        study_digits,
        (images_from_column(pool["image"]), pool["original_label"].to_numpy()),
        targets,
        str(none_slot),
    )
    source = _source(item_stats)
    for row in table.itertuples():
        logger.info(
            "crowd validity [%s] %s (%s) = %.3f, target %s: %s",
            source,
            row.check,
            row.source,
            row.value,
            row.target,
            "holds" if row.holds else "FAILS",
        )
    synthetic = validity.validity_frame_for_plot(
        item_stats, human_soft_labels, validated_annotations, study_digits, str(none_slot)
    )
    figure = validity.plot_validity(table, synthetic, f"Crowd validity ({source} annotations)")
    return table.assign(annotation_source=source), figure


def _source(table: pd.DataFrame) -> str:
    return str(table["annotation_source"].iloc[0]) if len(table) else ""
