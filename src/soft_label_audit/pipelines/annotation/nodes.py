"""Nodes of the `annotation` pipeline: thin adapters over ``soft_label_audit.crowd``.

Validation happens in :func:`collect_annotations`, the only node that sees the input file,
so a bad file stops the run before any output of this pipeline is saved.
"""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from soft_label_audit import configs
from soft_label_audit.columns import H_COLS
from soft_label_audit.configs import AnnotationConfig, AnnotationReport
from soft_label_audit.crowd import aggregation, figures, sources, statistics, validity
from soft_label_audit.crowd.sources import AnnotationInput
from soft_label_audit.crowd.statistics import ModeSupport

logger = logging.getLogger(__name__)


def collect_annotations(
    annotation_input: AnnotationInput,
    digits: pd.DataFrame,
    study_items: pd.DataFrame,
    annotation: dict[str, Any],
    simulated_crowd: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Votes (or released soft labels) of the chosen source, validated: the source's
    :meth:`~soft_label_audit.crowd.sources.AnnotationSource.collect`, found in the registry
    :data:`soft_label_audit.crowd.sources.SOURCES`.

    Returns raw_annotations, validated_annotations, study_digits, released_soft_labels (long,
    empty for a source of votes) and annotator_traits (simulated crowd only, else empty).
    """
    config = AnnotationConfig.from_params(annotation)
    sources.check_source(annotation_input, config)
    source = sources.get(annotation_input.source)
    collected = source.collect(annotation_input, digits, study_items, config, simulated_crowd)
    return collected.outputs(source.name)


def aggregate_soft_labels(
    validated_annotations: pd.DataFrame,
    released_soft_labels: pd.DataFrame,
    study_digits: pd.DataFrame,
    annotation: dict[str, Any],
) -> pd.DataFrame:
    """``human_soft_labels_by_rule``: every rule (long: one row per item and rule), or the
    soft labels of a source without votes (the source's ``soft_labels_by_rule``).

    A source of votes whose ``annotation.aggregation`` rule's assumptions fail on its votes
    (:func:`~soft_label_audit.crowd.aggregation.require_assumptions`) stops here, before
    anything is aggregated; the other rules whose assumptions fail are computed and warned of.
    """
    config = AnnotationConfig.from_params(annotation)
    source = _source(study_digits) or config.source
    if sources.get(source).carries_votes:
        aggregation.require_assumptions(
            validated_annotations, config.aggregation, config.dawid_skene
        )
    table = sources.get(source).soft_labels_by_rule(
        validated_annotations, released_soft_labels, config
    )
    table["item_id"] = table["item_id"].astype("int64")
    table["aggregation"] = table["aggregation"].astype(str)
    return table.assign(annotation_source=source)[
        ["item_id", *H_COLS, "aggregation", "annotation_source"]
    ]


def select_soft_labels(
    human_soft_labels_by_rule: pd.DataFrame, annotation: dict[str, Any]
) -> pd.DataFrame:
    """``human_soft_labels``: the rows of the rule chosen by ``annotation.aggregation``."""
    rule = AnnotationConfig.from_params(annotation).chosen_rule
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
        none_slot=configs.none_slot(none_slot),
        mode_support=ModeSupport.from_params(mode_support),
    )
    _log_item_stats(stats)
    source = _source(human_soft_labels)
    return stats.assign(annotation_source=source)


def _log_item_stats(stats: pd.DataFrame) -> None:
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
        AnnotationReport.from_params(annotation_report).suspect_agreement_below,
    )
    if len(annotator_traits.columns) > 1:
        stats = stats.merge(
            annotator_traits.add_prefix("sim_").rename(
                columns={"sim_annotator_id": "annotator_id"}
            ),
            on="annotator_id",
            how="left",
        )
    source = _source(human_soft_labels)
    return stats.assign(annotation_source=source)


def compute_agreement(
    validated_annotations: pd.DataFrame, item_stats: pd.DataFrame
) -> pd.DataFrame:
    table = statistics.agreement_summary(validated_annotations, item_stats)
    source = _source(item_stats)
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
        AnnotationReport.from_params(annotation_report).n_disputed,
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
    simulated_crowd: dict[str, Any],
) -> tuple[pd.DataFrame, plt.Figure]:
    """``crowd_validity`` table and figure (see :mod:`soft_label_audit.crowd.validity`); the
    independent classifier learns from :func:`~soft_label_audit.crowd.validity.classifier_pool`.
    When the votes are the simulated crowd's, the table ends with that crowd measured against
    people (:func:`~soft_label_audit.crowd.validity.people_reference_table`).
    """
    targets = validity.ValidityTargets.from_params(crowd_validity)
    pool = validity.classifier_pool(digits, study_digits)
    table = validity.crowd_validity(
        item_stats, human_soft_labels, validated_annotations, study_digits, pool, targets, none_slot
    )
    source = _source(item_stats)
    if source and isinstance(sources.get(source), sources.SimulatedCrowd):
        people = validity.people_reference_table(digits, simulated_crowd, targets.people)
        table = pd.concat([table, people], ignore_index=True) if len(people) else table
    validity.log_table(table, source, logger)
    synthetic = validity.validity_frame_for_plot(
        item_stats, human_soft_labels, validated_annotations, study_digits, none_slot
    )
    figure = validity.plot_validity(table, synthetic, f"Crowd validity ({source} annotations)")
    return table.assign(annotation_source=source), figure


def _source(table: pd.DataFrame) -> str:
    """The table's ``annotation_source`` (one per table, its contract); "" when empty."""
    return str(table["annotation_source"].iloc[0]) if len(table) else ""
