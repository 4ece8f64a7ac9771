"""Annotation sources behind one contract, and the registry that names them.

An annotation source says where the study's human annotations come from: the simulated crowd
(no file), the original study's released soft labels (parquet) or a file of raw votes (long:
``item_id, annotator_id, choice, unsure[, response_time]``). Each is an
:class:`AnnotationSource`: its ``name`` (the value of ``annotation.source``), the
``annotation.*`` setting that holds its file (``path_setting``, None when it reads none), how
that file is read (:meth:`~AnnotationSource.read_file`), how its votes or soft labels are
collected for the study items (:meth:`~AnnotationSource.collect`) and how they become soft
labels (:meth:`~AnnotationSource.soft_labels_by_rule`).

:data:`SOURCES` is the one list of source names. The configuration
(:class:`soft_label_audit.configs.AnnotationConfig`), the catalog's dataset
(:class:`soft_label_audit.datasets.annotation_files.AnnotationInputDataset`), the annotation
pipeline's nodes, the table contracts, the figures and the fingerprints read it; none of them
names a source. Adding a source is one entry here (docs/architecture.md, "Adding an
annotation source")::

    class JsonVotes(AnnotationSource):
        name = "json_votes"
        path_setting = "raw_path"           # or a new setting, e.g. "json_path"
        def read_file(self, path): return pd.read_json(path, lines=True)
        def collect(self, annotation_input, digits, study_items, config, simulated_crowd):
            return collection.collect_votes(...)

    SOURCES = _registry(SimulatedCrowd(), ReleasedSoftLabels(), RawVoteFile(), JsonVotes())
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from soft_label_audit.crowd import aggregation, collection, released
from soft_label_audit.crowd.collection import Collected
from soft_label_audit.crowd.inputs import read_released_file, read_votes_file

if TYPE_CHECKING:
    from soft_label_audit.configs import AnnotationConfig

logger = logging.getLogger(__name__)


class AnnotationSource(ABC):
    """One annotation source: what a registry entry of :data:`SOURCES` must say."""

    #: the value of ``annotation.source`` (and of every table's ``annotation_source``)
    name: ClassVar[str]
    #: the ``annotation.*`` setting (and catalog argument) that holds its file; None: no file
    path_setting: ClassVar[str | None] = None
    #: whether it collects votes (aggregated by ``annotation.rules``) rather than soft labels
    carries_votes: ClassVar[bool] = True
    #: whether its path may name a Hugging Face dataset repository (``hf://datasets/...``)
    reads_hub: ClassVar[bool] = False
    #: said after the source's name in the annotation figures' titles ("" for nothing)
    title_note: ClassVar[str] = ""
    #: whether its file's item ids may define the study (``digits.study.items_from: votes``)
    defines_study: ClassVar[bool] = False
    #: whether its tables are those of fingerprints.json (made from the parameters alone)
    fingerprinted: ClassVar[bool] = False

    def read_file(self, path: str | Path) -> pd.DataFrame:
        """The table of the file at ``path`` (an fsspec URL reaches pandas as given)."""
        raise TypeError(f"annotation source {self.name!r} reads no file")

    @abstractmethod
    def collect(
        self,
        annotation_input: AnnotationInput,
        digits: pd.DataFrame,
        study_items: pd.DataFrame,
        config: AnnotationConfig,
        simulated_crowd: dict[str, Any],
    ) -> Collected:
        """The source's votes (or soft labels), validated, for the study items."""

    def soft_labels_by_rule(
        self, votes: pd.DataFrame, soft_labels: pd.DataFrame, config: AnnotationConfig
    ) -> pd.DataFrame:
        """``human_soft_labels_by_rule`` without ``annotation_source``: every rule of
        ``annotation.rules`` over the votes, or the collected soft labels as they are."""
        if not self.carries_votes:
            return soft_labels.drop(columns=["pct_unsure"])
        return pd.concat(
            [aggregation.aggregate(votes, rule, config.dawid_skene) for rule in config.rules],
            ignore_index=True,
        )

    def chosen_rule(self, config: AnnotationConfig) -> str:
        """The ``aggregation`` value of ``human_soft_labels``: ``annotation.aggregation``."""
        return config.aggregation


class SimulatedCrowd(AnnotationSource):
    """Votes of the simulated crowd (:mod:`soft_label_audit.crowd.simulated`); reads no file."""

    name = "simulated"
    title_note = "simulated crowd"
    fingerprinted = True

    def collect(self, annotation_input, digits, study_items, config, simulated_crowd) -> Collected:
        study = collection.study_with_images(study_items, digits)
        votes, traits = collection.simulate(digits, study, simulated_crowd)
        return collection.collect_votes(
            votes, "the simulated crowd", study, study_items, config, self.name, traits, digits
        )


class ReleasedSoftLabels(AnnotationSource):
    """The original study's released soft labels (parquet; :mod:`.released`): no votes."""

    name = "released"
    path_setting = "released_path"
    carries_votes = False
    reads_hub = True

    def read_file(self, path: str | Path) -> pd.DataFrame:
        return read_released_file(path)

    def collect(self, annotation_input, digits, study_items, config, simulated_crowd) -> Collected:
        """The released soft labels, validated and matched to ``digits``; the released file
        chooses the study items."""
        settings = config.released
        released.validate_released(annotation_input.frame, annotation_input.path, settings)
        study, released_soft = released.released_to_study(
            annotation_input.frame, digits, annotation_input.path, settings
        )
        logger.info(
            "Released annotations: %d items from %s (soft labels from %s)",
            len(study),
            annotation_input.path,
            settings.soft_label_column,
        )
        votes = collection.empty_votes
        return Collected(votes(), votes(), study, released_soft, collection.no_traits())

    def chosen_rule(self, config: AnnotationConfig) -> str:
        """The released column the soft labels come from, as ``released:<column>``."""
        return f"released:{config.released.soft_label_column}"


class RawVoteFile(AnnotationSource):
    """A file of raw votes, CSV or parquet (the annotation tool's export or another crowd's)."""

    name = "raw_file"
    path_setting = "raw_path"
    defines_study = True

    def read_file(self, path: str | Path) -> pd.DataFrame:
        return read_votes_file(path)

    def collect(self, annotation_input, digits, study_items, config, simulated_crowd) -> Collected:
        study = collection.study_with_images(study_items, digits)
        return collection.collect_votes(
            annotation_input.frame,
            annotation_input.path,
            study,
            study_items,
            config,
            self.name,
            digits=digits,
        )


def _registry(*entries: AnnotationSource) -> dict[str, AnnotationSource]:
    return {entry.name: entry for entry in entries}


#: every annotation source by name, in the order the configuration's messages list them
SOURCES: dict[str, AnnotationSource] = _registry(
    SimulatedCrowd(), ReleasedSoftLabels(), RawVoteFile()
)


def names() -> tuple[str, ...]:
    """The registered source names (the values ``annotation.source`` may take)."""
    return tuple(SOURCES)


def get(name: str) -> AnnotationSource:
    """The registered source ``name``."""
    try:
        return SOURCES[name]
    except (KeyError, TypeError):
        raise ValueError(f"annotation.source must be one of {names()}, not {name!r}") from None


def path_settings() -> tuple[str, ...]:
    """The ``annotation.*`` settings that hold a source's file, once each, in registry order."""
    return tuple(
        dict.fromkeys(s.path_setting for s in SOURCES.values() if s.path_setting is not None)
    )


def title_note(name: str) -> str:
    """What the figures say after the source's name; "" for none or an unregistered name."""
    entry = SOURCES.get(name)
    return entry.title_note if entry is not None else ""


def study_defining_sources() -> tuple[str, ...]:
    """The sources whose file may define the study's items (``digits.study.items_from: votes``)."""
    return tuple(name for name, entry in SOURCES.items() if entry.defines_study)


def fingerprinted_source() -> str:
    """The one source whose tables fingerprints.json holds."""
    (name,) = (name for name, entry in SOURCES.items() if entry.fingerprinted)
    return name


@dataclass(frozen=True)
class AnnotationInput:
    """What the annotation input dataset hands to the pipeline: the chosen source and, for a
    source with a file, its path and table (``frame``)."""

    source: str
    path: str | None = None
    frame: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        get(self.source)


def check_source(annotation_input: AnnotationInput, config: AnnotationConfig) -> None:
    """The catalog and the parameters must name the same source (and file)."""
    wanted = config.source
    if annotation_input.source != wanted:
        raise ValueError(
            f"parameter annotation.source={wanted!r} but the catalog entry annotation_input reads "
            f"{annotation_input.source!r}; choose the source on the command line "
            f'(--params "annotation.source={wanted}"), which sets both'
        )
    key = get(wanted).path_setting
    if key and config.path != annotation_input.path:
        raise ValueError(
            f"parameter annotation.{key}={config.path!r} but the catalog reads "
            f"{annotation_input.path!r}; pass the file on the command line "
            f'(--params "annotation.{key}=PATH"), which sets both'
        )
