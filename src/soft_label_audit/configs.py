"""The ``training`` and ``evaluation`` parameter blocks, read by typed classes (the
``reporting`` block: :class:`soft_label_audit.reporting.config.ReportingConfig`).

Each ``from_params`` validates every value it reads through :mod:`soft_label_audit.params`,
so a bad value stops the run with one message naming the parameter path::

    >>> EvaluationConfig.from_params({**EVALUATION_EXAMPLE, "n_bins": 0})
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: evaluation.n_bins must be a positive integer, got 0
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from soft_label_audit import params as p
from soft_label_audit.crowd import sources
from soft_label_audit.crowd.aggregation import RULES, DawidSkeneSoft
from soft_label_audit.crowd.released import ReleasedConfig
from soft_label_audit.crowd.statistics import ModeSupport
from soft_label_audit.human_labels import NONE_SLOT_RULES
from soft_label_audit.trainer import ModelConfig, TrainConfig

#: a complete ``evaluation`` block (the defaults of conf/base), for examples and tests
EVALUATION_EXAMPLE: dict[str, Any] = {
    "n_bins": 15,
    "bands": {"unanimous_max": 1e-9, "low_max": 0.5, "mostly_none_min": 0.5},
    "calibration_floor": {"draws": 200, "quantile": 0.95, "seed": 0},
    "cartography": {
        "burn_in_fraction": 0.2,
        "easy_min_confidence": 0.5,
        "ambiguous_min_variability": 0.2,
    },
    "convergence": {"curve": "val_loss", "higher_is_better": False, "fraction": 0.95},
    "stability_curves": ["val_loss", "val_acc", "train_loss"],
}


@dataclass(frozen=True)
class Bands:
    """Human-difficulty bands on the human entropy (nats) and the "none" share."""

    unanimous_max: float
    low_max: float
    mostly_none_min: float

    @classmethod
    def from_params(cls, block: Any, path: str = "evaluation.bands") -> Bands:
        block = p.block(path, block)
        p.no_unknown(path, block, ("unanimous_max", "low_max", "mostly_none_min"))
        unanimous = p.number(f"{path}.unanimous_max", p.required(path, block, "unanimous_max"), 0)
        low = p.number(f"{path}.low_max", p.required(path, block, "low_max"), unanimous)
        none = p.probability(f"{path}.mostly_none_min", p.required(path, block, "mostly_none_min"))
        return cls(unanimous, low, none)


@dataclass(frozen=True)
class CalibrationFloor:
    """The ECE of a perfectly calibrated model: ``draws`` label draws from ``seed``."""

    draws: int
    quantile: float
    seed: int

    @classmethod
    def from_params(cls, block: Any, path: str = "evaluation.calibration_floor"):
        block = p.block(path, block)
        p.no_unknown(path, block, ("draws", "quantile", "seed"))
        return cls(
            draws=p.positive_int(f"{path}.draws", p.required(path, block, "draws")),
            quantile=p.number(
                f"{path}.quantile",
                p.required(path, block, "quantile"),
                0,
                1,
                low_open=True,
                high_open=True,
            ),
            seed=p.non_negative_int(f"{path}.seed", p.required(path, block, "seed")),
        )


@dataclass(frozen=True)
class CartographySettings:
    """Burn-in share of epochs left out and the region thresholds."""

    burn_in_fraction: float
    easy_min_confidence: float
    ambiguous_min_variability: float

    @classmethod
    def from_params(cls, block: Any, path: str = "evaluation.cartography"):
        block = p.block(path, block)
        p.no_unknown(
            path, block, ("burn_in_fraction", "easy_min_confidence", "ambiguous_min_variability")
        )
        return cls(
            burn_in_fraction=p.number(
                f"{path}.burn_in_fraction",
                p.required(path, block, "burn_in_fraction"),
                0,
                1,
                high_open=True,
            ),
            easy_min_confidence=p.probability(
                f"{path}.easy_min_confidence", p.required(path, block, "easy_min_confidence")
            ),
            ambiguous_min_variability=p.number(
                f"{path}.ambiguous_min_variability",
                p.required(path, block, "ambiguous_min_variability"),
                0,
            ),
        )


@dataclass(frozen=True)
class Convergence:
    """First epoch with ``fraction`` of the run's total improvement of ``curve``."""

    curve: str
    higher_is_better: bool
    fraction: float

    @classmethod
    def from_params(cls, block: Any, path: str = "evaluation.convergence"):
        block = p.block(path, block)
        p.no_unknown(path, block, ("curve", "higher_is_better", "fraction"))
        return cls(
            curve=p.text(f"{path}.curve", p.required(path, block, "curve")),
            higher_is_better=p.boolean(
                f"{path}.higher_is_better", p.required(path, block, "higher_is_better")
            ),
            fraction=p.probability(f"{path}.fraction", p.required(path, block, "fraction")),
        )


@dataclass(frozen=True)
class EvaluationConfig:
    """The ``evaluation`` block (conf/base/parameters_evaluation.yml)."""

    n_bins: int
    bands: Bands
    calibration_floor: CalibrationFloor
    cartography: CartographySettings
    convergence: Convergence
    stability_curves: tuple[str, ...]

    @classmethod
    def from_params(cls, block: Any, path: str = "evaluation") -> EvaluationConfig:
        """
        >>> EvaluationConfig.from_params(EVALUATION_EXAMPLE).cartography.burn_in_fraction
        0.2
        """
        block = p.block(path, block)
        p.no_unknown(path, block, (f.name for f in fields(cls)))
        curves = p.required(path, block, "stability_curves")
        if not isinstance(curves, (list, tuple)):
            raise p.fail(f"{path}.stability_curves", "a list of curve names", curves)
        return cls(
            n_bins=p.positive_int(f"{path}.n_bins", p.required(path, block, "n_bins")),
            bands=Bands.from_params(p.required(path, block, "bands"), f"{path}.bands"),
            calibration_floor=CalibrationFloor.from_params(
                p.required(path, block, "calibration_floor"), f"{path}.calibration_floor"
            ),
            cartography=CartographySettings.from_params(
                p.required(path, block, "cartography"), f"{path}.cartography"
            ),
            convergence=Convergence.from_params(
                p.required(path, block, "convergence"), f"{path}.convergence"
            ),
            stability_curves=tuple(
                p.text(f"{path}.stability_curves[{i}]", c) for i, c in enumerate(curves)
            ),
        )


def epochs_for(training: dict[str, Any], source: str, path: str = "training") -> int:
    """``training.epochs``: one number for every source, or a mapping source -> epochs.

    >>> epochs_for({"epochs": {"mnist": 20, "synthetic": 45}}, "synthetic")
    45
    >>> epochs_for({"epochs": {"mnist": 20}}, "synthetic")
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: training.epochs.synthetic is missing
    """
    epochs = p.required(path, training, "epochs")
    if isinstance(epochs, dict):
        return p.positive_int(
            f"{path}.epochs.{source}", p.required(f"{path}.epochs", epochs, source)
        )
    return p.positive_int(f"{path}.epochs", epochs)


@dataclass(frozen=True)
class TrainingConfig:
    """The ``training`` block for one source: the seeds, the model and the optimisation
    settings (:class:`soft_label_audit.trainer.TrainConfig`) with the source's epochs."""

    seeds: tuple[int, ...]
    model: ModelConfig
    train: TrainConfig

    @classmethod
    def from_params(cls, block: Any, source: str, path: str = "training") -> TrainingConfig:
        block = p.block(path, block)
        seeds = p.required(path, block, "seeds")
        if not isinstance(seeds, (list, tuple)) or not seeds:
            raise p.fail(f"{path}.seeds", "a non-empty list of seeds", seeds)
        return cls(
            seeds=tuple(p.non_negative_int(f"{path}.seeds[{i}]", s) for i, s in enumerate(seeds)),
            model=ModelConfig.from_params(p.required(path, block, "model"), f"{path}.model"),
            train=TrainConfig.from_params(
                {**block, "epochs": epochs_for(block, source, path)}, path
            ),
        )


def none_slot(value: Any, path: str = "labels.none_slot") -> str:
    """``labels.none_slot``: how the human label's "none" slot maps onto the digits.

    >>> none_slot("spread")
    'spread'
    >>> none_slot("drop")
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: labels.none_slot must be one of 'renormalise', 'spread', got 'drop'
    """
    return p.choice(path, value, NONE_SLOT_RULES)


@dataclass(frozen=True)
class AnnotationReport:
    """The ``annotation_report`` block: how many disputed items the figure shows and the
    agreement below which an annotator is flagged as suspect."""

    n_disputed: int
    suspect_agreement_below: float

    @classmethod
    def from_params(cls, block: Any, path: str = "annotation_report") -> AnnotationReport:
        block = p.block(path, block)
        p.no_unknown(path, block, ("n_disputed", "suspect_agreement_below"))
        return cls(
            n_disputed=p.positive_int(f"{path}.n_disputed", p.required(path, block, "n_disputed")),
            suspect_agreement_below=p.probability(
                f"{path}.suspect_agreement_below",
                p.required(path, block, "suspect_agreement_below"),
            ),
        )


@dataclass(frozen=True)
class AnnotationConfig:
    """The ``annotation`` block (conf/base/parameters_annotation.yml): the source and its files,
    the aggregation rules and the chosen one, what supports a human mode, and the released
    file's settings (:class:`soft_label_audit.crowd.released.ReleasedConfig`).

    ``source`` is a name of the registry :data:`soft_label_audit.crowd.sources.SOURCES`;
    ``paths`` holds every registered source's file setting (``annotation.raw_path``, ...) by
    its name, so a source's setting is read here once the registry names it."""

    source: str
    paths: dict[str, str]
    aggregation: str
    rules: tuple[str, ...]
    mode_support: ModeSupport
    dawid_skene: DawidSkeneSoft
    require_votes_for_all_study_items: bool
    released: ReleasedConfig

    @classmethod
    def from_params(cls, block: Any, path: str = "annotation") -> AnnotationConfig:
        """
        >>> AnnotationConfig.from_params({"rules": []})
        Traceback (most recent call last):
        ...
        soft_label_audit.params.ParameterError: annotation.rules must be a non-empty list of aggregation rules, got []
        """
        block = p.block(path, block)
        settings = sources.path_settings()
        p.no_unknown(
            path,
            block,
            (
                *(f.name for f in fields(cls) if f.name != "paths"),
                *settings,
                "soft_label_tolerance",
            ),
        )
        rules = p.required(path, block, "rules")
        if not isinstance(rules, (list, tuple)) or not rules:
            raise p.fail(f"{path}.rules", "a non-empty list of aggregation rules", rules)
        rules = tuple(p.choice(f"{path}.rules[{i}]", r, RULES) for i, r in enumerate(rules))
        return cls(
            source=p.choice(f"{path}.source", p.required(path, block, "source"), sources.names()),
            paths={key: p.text(f"{path}.{key}", p.required(path, block, key)) for key in settings},
            aggregation=p.choice(
                f"{path}.aggregation", p.required(path, block, "aggregation"), rules
            ),
            rules=rules,
            mode_support=ModeSupport.from_params(
                p.required(path, block, "mode_support"), f"{path}.mode_support"
            ),
            dawid_skene=DawidSkeneSoft.from_params(
                p.required(path, block, "dawid_skene"), f"{path}.dawid_skene"
            ),
            require_votes_for_all_study_items=p.boolean(
                f"{path}.require_votes_for_all_study_items",
                p.required(path, block, "require_votes_for_all_study_items"),
            ),
            released=ReleasedConfig.from_params(block),
        )

    @staticmethod
    def source_of(params: dict[str, Any], path: str = "annotation") -> str:
        """``annotation.source`` of the whole parameters, validated as :meth:`from_params`
        does, without reading the rest of the block.

        >>> AnnotationConfig.source_of({"annotation": {"source": "released"}})
        'released'
        """
        block = p.block(path, params.get(path))
        return p.choice(f"{path}.source", p.required(path, block, "source"), sources.names())

    @property
    def annotation_source(self) -> sources.AnnotationSource:
        """The registry entry of ``source``."""
        return sources.get(self.source)

    @property
    def path(self) -> str | None:
        """The chosen source's file (its ``path_setting``), None for a source without one."""
        key = self.annotation_source.path_setting
        return None if key is None else self.paths[key]

    @property
    def chosen_rule(self) -> str:
        """The ``aggregation`` value of ``human_soft_labels``: the chosen rule, or for released
        soft labels the released column they come from (the source says which)."""
        return self.annotation_source.chosen_rule(self)
