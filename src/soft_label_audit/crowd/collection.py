"""The annotations of one study, from whichever source the configuration names.

One function per source (``simulated``, ``raw_file``, ``released``), each returning a
:class:`Collected`; the annotation pipeline's ``collect_annotations`` node only dispatches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from soft_label_audit.columns import H_COLS, MNIST_TEST_IDS
from soft_label_audit.configs import AnnotationConfig
from soft_label_audit.crowd import perception, released, simulated
from soft_label_audit.crowd.inputs import AnnotationInput
from soft_label_audit.crowd.validation import AnnotationValidationError, validate_votes
from soft_label_audit.data_sources.tables import images_from_column

logger = logging.getLogger(__name__)

STUDY_DIGIT_COLUMNS = [
    "item_id",
    "source",
    "split",
    "original_label",
    "image",
    "machine_soft_label",
]


@dataclass(frozen=True)
class Collected:
    """What every source yields: ``raw_annotations`` and ``validated_annotations`` (votes;
    empty for released soft labels), the annotated study items (``study_digits`` without
    ``annotation_source``), ``released_soft_labels`` (long; empty unless ``released``) and
    ``annotator_traits`` (simulated crowd only; else an empty table)."""

    raw: pd.DataFrame
    validated: pd.DataFrame
    study: pd.DataFrame
    released_soft: pd.DataFrame
    traits: pd.DataFrame

    def outputs(self, source: str):
        study_digits = (
            self.study[STUDY_DIGIT_COLUMNS].reset_index(drop=True).assign(annotation_source=source)
        )
        return self.raw, self.validated, study_digits, self.released_soft, self.traits


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


def _no_traits() -> pd.DataFrame:
    return pd.DataFrame({"annotator_id": pd.Series(dtype="str")})


def _no_released_soft() -> pd.DataFrame:
    return pd.DataFrame(columns=["item_id", *H_COLS, "aggregation", "pct_unsure"])


def check_source(annotation_input: AnnotationInput, config: AnnotationConfig) -> None:
    """The catalog and the parameters must name the same source (and file)."""
    wanted = config.source
    if annotation_input.source != wanted:
        raise ValueError(
            f"parameter annotation.source={wanted!r} but the catalog entry annotation_input reads "
            f"{annotation_input.source!r}; choose the source on the command line "
            f'(--params "annotation.source={wanted}"), which sets both'
        )
    key = {"raw_file": "raw_path", "released": "released_path"}.get(wanted)
    if key and getattr(config, key) != annotation_input.path:
        raise ValueError(
            f"parameter annotation.{key}={getattr(config, key)!r} but the catalog reads "
            f"{annotation_input.path!r}; pass the file on the command line "
            f'(--params "annotation.{key}=PATH"), which sets both'
        )


def collect_released(
    annotation_input: AnnotationInput, digits: pd.DataFrame, annotation: AnnotationConfig
) -> Collected:
    """A released file of soft labels: validated, matched to ``digits``; no votes."""
    config = annotation.released
    released.validate_released(annotation_input.frame, annotation_input.path, config)
    study, released_soft = released.released_to_study(
        annotation_input.frame, digits, annotation_input.path, config
    )
    logger.info(
        "Released annotations: %d items from %s (soft labels from %s)",
        len(study),
        annotation_input.path,
        config.soft_label_column,
    )
    return Collected(_empty_votes(), _empty_votes(), study, released_soft, _no_traits())


def study_with_images(study_items: pd.DataFrame, digits: pd.DataFrame) -> pd.DataFrame:
    """The study items with their image and machine soft label; every one must be in digits."""
    study = study_items[["item_id", "source", "split", "original_label"]].merge(
        digits[["item_id", "image", "machine_soft_label"]],
        on="item_id",
        how="left",
        validate="one_to_one",
    )
    if study["image"].isna().any():
        missing = study.loc[study["image"].isna(), "item_id"].head(5).tolist()
        raise ValueError(f"study items {missing} are missing from `digits`")
    return study


def collect_votes(
    frame: pd.DataFrame,
    file: str,
    study: pd.DataFrame,
    study_items: pd.DataFrame,
    annotation: AnnotationConfig,
    source: str,
    traits: pd.DataFrame | None = None,
) -> Collected:
    """Votes (from a file or the simulated crowd), validated against the study items."""
    require_all = annotation.require_votes_for_all_study_items
    try:
        raw = validate_votes(frame, study_items, file, require_all_items=require_all)
    except AnnotationValidationError as exc:
        # one message naming file, rows and rule; no traceback of pandera internals
        raise AnnotationValidationError(str(exc)) from None
    logger.info(
        "%s: %d votes on %d items by %d annotators",
        file,
        len(raw),
        raw["item_id"].nunique(),
        raw["annotator_id"].nunique(),
    )
    return Collected(
        raw,
        raw.assign(annotation_source=source),
        study[study["item_id"].isin(raw["item_id"])],
        _no_released_soft(),
        _no_traits() if traits is None else traits,
    )


def collect_raw_file(
    annotation_input: AnnotationInput,
    digits: pd.DataFrame,
    study_items: pd.DataFrame,
    annotation: AnnotationConfig,
) -> Collected:
    """A file of raw votes (the annotation tool's export or another crowd's)."""
    study = study_with_images(study_items, digits)
    return collect_votes(
        annotation_input.frame, annotation_input.path, study, study_items, annotation, "raw_file"
    )


def collect_simulated(
    digits: pd.DataFrame,
    study_items: pd.DataFrame,
    annotation: AnnotationConfig,
    simulated_crowd: dict[str, Any],
) -> Collected:
    """Votes of the simulated crowd (:mod:`soft_label_audit.crowd.simulated`)."""
    study = study_with_images(study_items, digits)
    votes, traits = simulate(digits, study, simulated_crowd)
    return collect_votes(
        votes, "the simulated crowd", study, study_items, annotation, "simulated", traits
    )


def simulate(
    digits: pd.DataFrame, study: pd.DataFrame, crowd: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The simulated crowd's votes on the study items and its annotators' traits; the crowd
    remembers MNIST test images, which therefore may not be study items."""
    config = simulated.CrowdConfig.from_params(crowd)
    seen = config.perception
    memory = digits[digits["item_id"].isin(MNIST_TEST_IDS) & (digits["source"] == "mnist")]
    if len(memory) > seen.memory_size:
        memory = memory.sample(n=seen.memory_size, random_state=config.seed).sort_values("item_id")
    overlap = np.intersect1d(memory["item_id"], study["item_id"])
    if len(overlap):
        raise ValueError(
            f"study items {overlap[:5].tolist()} are MNIST test images, which the simulated crowd "
            "remembers; study MNIST items must be training images (digits.study.pool_item_ids)"
        )
    if memory.empty:
        raise ValueError(
            f"`digits` holds no MNIST test images (ids {MNIST_TEST_IDS.start}.."
            f"{MNIST_TEST_IDS.stop - 1}) for the simulated crowd's memory"
        )
    observers = perception.observers_from_config(
        images_from_column(memory["image"]), memory["original_label"].to_numpy(), seen, config.seed
    )
    crowd_model = simulated.SimulatedCrowd(config, observers)
    votes = crowd_model.annotate(study["item_id"].to_numpy(), images_from_column(study["image"]))
    return votes, crowd_model.annotators_
