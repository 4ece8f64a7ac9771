"""What collecting a study's annotations yields (:class:`Collected`), and the steps the
annotation sources share: votes validated against the study items, the study items with their
images, the simulated crowd's votes. Each source's own collection is its
:meth:`~soft_label_audit.crowd.sources.AnnotationSource.collect`
(:mod:`soft_label_audit.crowd.sources`); the annotation pipeline's ``collect_annotations``
node only dispatches through the registry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from soft_label_audit.columns import H_COLS, MNIST_TEST_IDS
from soft_label_audit.crowd import perception, simulated
from soft_label_audit.crowd.validation import AnnotationValidationError, validate_votes
from soft_label_audit.data_sources.study import check_every_split
from soft_label_audit.data_sources.tables import images_from_column

if TYPE_CHECKING:
    from soft_label_audit.configs import AnnotationConfig

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
    empty for a source of soft labels), the annotated study items (``study_digits`` without
    ``annotation_source``), ``released_soft_labels`` (long; empty for a source of votes) and
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


def empty_votes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": pd.Series(dtype="int64"),
            "annotator_id": pd.Series(dtype="str"),
            "choice": pd.Series(dtype="str"),
            "unsure": pd.Series(dtype="bool"),
            "response_time": pd.Series(dtype="float64"),
        }
    )


def no_traits() -> pd.DataFrame:
    return pd.DataFrame({"annotator_id": pd.Series(dtype="str")})


def _no_released_soft() -> pd.DataFrame:
    return pd.DataFrame(columns=["item_id", *H_COLS, "aggregation", "pct_unsure"])


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
    digits: pd.DataFrame | None = None,
) -> Collected:
    """Votes (from a file or the simulated crowd), validated against the study items (and,
    given ``digits``, against the items of every source); every source of the study must keep
    train, val and test items."""
    require_all = annotation.require_votes_for_all_study_items
    all_ids = None if digits is None else digits["item_id"]
    try:
        raw = validate_votes(
            frame, study_items, file, require_all_items=require_all, all_item_ids=all_ids
        )
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
    kept = study[study["item_id"].isin(raw["item_id"])]
    check_every_split(kept, study_items["source"].unique(), f"the votes of {file}")
    return Collected(
        raw,
        raw.assign(annotation_source=source),
        kept,
        _no_released_soft(),
        no_traits() if traits is None else traits,
    )


def simulate(
    digits: pd.DataFrame, study: pd.DataFrame, crowd: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The simulated crowd's votes on the study items and its annotators' traits; the crowd
    remembers MNIST test images, never a study item (:func:`crowd_memory`)."""
    config = simulated.CrowdConfig.from_params(crowd)
    memory = crowd_memory(digits, config, exclude_ids=study["item_id"])
    return annotate_with_memory(
        memory, study["item_id"].to_numpy(), images_from_column(study["image"]), config
    )


def crowd_memory(
    digits: pd.DataFrame,
    config: simulated.CrowdConfig,
    exclude_ids=(),
    excluded_what: str = "study items",
) -> pd.DataFrame:
    """The MNIST test images the crowd remembers: those of ``digits`` less ``exclude_ids``
    (the study's items: a study of one's own votes may hold test images, and the crowd must
    not have seen them; or the people reference's images), then at most
    ``perception.memory_size`` of them (a seeded sample, in item order). Logs how many of
    ``exclude_ids`` it leaves out."""
    tests = digits[digits["item_id"].isin(MNIST_TEST_IDS) & (digits["source"] == "mnist")]
    left_out = tests["item_id"].isin(np.asarray(exclude_ids, dtype=np.int64))
    memory = tests[~left_out]
    if memory.empty:
        raise ValueError(
            f"`digits` holds no MNIST test images (ids {MNIST_TEST_IDS.start}.."
            f"{MNIST_TEST_IDS.stop - 1}) outside the {excluded_what} for the simulated "
            "crowd's memory"
        )
    if len(memory) > config.perception.memory_size:
        memory = memory.sample(n=config.perception.memory_size, random_state=config.seed)
        memory = memory.sort_values("item_id")
    logger.info(
        "simulated crowd memory: %d MNIST test images; %d %s excluded",
        len(memory),
        int(left_out.sum()),
        excluded_what,
    )
    return memory


def annotate_with_memory(
    memory: pd.DataFrame, item_ids: np.ndarray, images: np.ndarray, config: simulated.CrowdConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Votes of the crowd of ``config`` whose observers remember ``memory`` (rows of
    ``digits``) on ``images``, and its annotators' traits."""
    observers = perception.observers_from_config(
        images_from_column(memory["image"]),
        memory["original_label"].to_numpy(),
        config.perception,
        config.seed,
    )
    crowd_model = simulated.SimulatedCrowd(config, observers)
    votes = crowd_model.annotate(np.asarray(item_ids), images)
    return votes, crowd_model.annotators_
