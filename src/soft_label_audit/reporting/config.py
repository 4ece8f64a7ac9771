"""The ``reporting`` parameter block (conf/base/parameters_reporting.yml), read and validated
whole by :meth:`ReportingConfig.from_params`.

Every key is required (conf/base holds every default) and no unknown key is accepted, at
every level; a claim entry's keys are those of its kind's spec
(:mod:`soft_label_audit.reporting.claim_kinds`, where ``kind`` itself may be left out for a
``difference``). A bad value, an unknown key or a missing key raises
:class:`soft_label_audit.params.ParameterError` naming its path::

    >>> ReportingConfig.from_params({**REPORTING_EXAMPLE, "alpha": 1.5})
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: reporting.alpha must be a number in (0, 1), got 1.5

Condition names must be label conditions (:data:`soft_label_audit.targets.BUILDERS`); whether
the study has them is the reporting's concern (a claim the study lacks is skipped with a note).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from soft_label_audit import params as p
from soft_label_audit.metrics.cartography import REFERENCES
from soft_label_audit.reporting.claim_kinds import ClaimSpec, read_claim
from soft_label_audit.targets import BUILDERS

#: a complete ``reporting`` block (without claims), for examples and tests
REPORTING_EXAMPLE: dict[str, Any] = {
    "baselines": ["original_hard", "human_soft"],
    "confidence": 0.95,
    "cartography_reference": "original",
    "bootstrap": {"n_resamples": 300, "seed": 0},
    "alpha": 0.05,
    "stability": {"baseline": "original_hard", "metrics": ["accuracy", "nll", "ece_15"]},
    "power": {
        "power": 0.8,
        "design_seeds": [3, 6, 10, 20, 40],
        "targets": {"accuracy": 0.01, "ece_15": 0.01},
        "reference": {"condition": "human_soft", "baseline": "original_hard"},
    },
    "claims": [],
}


def _open_interval(path: str, value: Any) -> float:
    return p.number(path, value, 0, 1, low_open=True, high_open=True)


def _condition(path: str, value: Any) -> str:
    return p.choice(path, value, BUILDERS)


def _names(path: str, value: Any, what: str, read=p.text, non_empty: bool = False) -> tuple:
    if not isinstance(value, (list, tuple)) or (non_empty and not value):
        raise p.fail(path, f"a {'non-empty ' if non_empty else ''}list of {what}", value)
    return tuple(read(f"{path}[{i}]", v) for i, v in enumerate(value))


def _block(path: str, parent: Mapping[str, Any], key: str, known: tuple[str, ...]):
    """The sub-block ``parent[key]`` (required, a mapping without unknown keys)."""
    block = p.block(f"{path}.{key}", p.required(path, parent, key))
    p.no_unknown(f"{path}.{key}", block, known)
    return block


@dataclass(frozen=True)
class BootstrapSettings:
    """``bootstrap``: the draws of every source's seed-and-item bootstrap."""

    n_resamples: int
    seed: int

    @classmethod
    def from_params(cls, block: Mapping[str, Any], path: str) -> BootstrapSettings:
        return cls(
            n_resamples=p.positive_int(
                f"{path}.n_resamples", p.required(path, block, "n_resamples")
            ),
            seed=p.non_negative_int(f"{path}.seed", p.required(path, block, "seed")),
        )


@dataclass(frozen=True)
class StabilitySettings:
    """``stability``: the metrics whose seed spread is compared with ``baseline``'s."""

    baseline: str
    metrics: tuple[str, ...]

    @classmethod
    def from_params(cls, block: Mapping[str, Any], path: str) -> StabilitySettings:
        return cls(
            baseline=_condition(f"{path}.baseline", p.required(path, block, "baseline")),
            metrics=_names(f"{path}.metrics", p.required(path, block, "metrics"), "metric names"),
        )


@dataclass(frozen=True)
class PowerReference:
    """``power.reference``: the plain comparison every target metric gets a power row for."""

    condition: str
    baseline: str


@dataclass(frozen=True)
class PowerSettings:
    """``power``: the power the designs must reach, the numbers of seeds they are solved for
    (``design_seeds``, each at least 2), and the reference comparison with a target effect per
    metric (the claims carry their own ``target``)."""

    power: float
    design_seeds: tuple[int, ...]
    targets: Mapping[str, float]
    reference: PowerReference

    @classmethod
    def from_params(cls, block: Mapping[str, Any], path: str) -> PowerSettings:
        targets = p.block(f"{path}.targets", p.required(path, block, "targets"))
        ref_path = f"{path}.reference"
        ref = _block(path, block, "reference", ("condition", "baseline"))
        return cls(
            power=_open_interval(f"{path}.power", p.required(path, block, "power")),
            design_seeds=_names(
                f"{path}.design_seeds",
                p.required(path, block, "design_seeds"),
                "numbers of seeds",
                lambda at, v: p.integer(at, v, minimum=2),
                non_empty=True,
            ),
            # keys are metric names: any is accepted
            targets=MappingProxyType(
                {
                    p.text(f"{path}.targets", metric): p.number(
                        f"{path}.targets.{metric}", effect, 0, low_open=True
                    )
                    for metric, effect in targets.items()
                }
            ),
            reference=PowerReference(
                condition=_condition(
                    f"{ref_path}.condition", p.required(ref_path, ref, "condition")
                ),
                baseline=_condition(f"{ref_path}.baseline", p.required(ref_path, ref, "baseline")),
            ),
        )


@dataclass(frozen=True)
class ReportingConfig:
    """The whole ``reporting`` block: the comparison of conditions (``baselines``,
    ``confidence``, ``bootstrap``), the cartography maps' reference, the stability ratios, the
    power table and the claims (``alpha``: their family-wise error rate and verdict level)."""

    baselines: tuple[str, ...]
    confidence: float
    cartography_reference: str
    bootstrap: BootstrapSettings
    alpha: float
    stability: StabilitySettings
    power: PowerSettings
    claims: tuple[ClaimSpec, ...]

    @classmethod
    def from_params(cls, block: Any, path: str = "reporting") -> ReportingConfig:
        """
        >>> config = ReportingConfig.from_params(REPORTING_EXAMPLE)
        >>> config.bootstrap.n_resamples, config.power.reference.baseline
        (300, 'original_hard')
        """
        block = p.block(path, block)
        p.no_unknown(path, block, [f.name for f in fields(cls)])
        return cls(
            baselines=_names(
                f"{path}.baselines",
                p.required(path, block, "baselines"),
                "conditions",
                _condition,
                non_empty=True,
            ),
            confidence=_open_interval(f"{path}.confidence", p.required(path, block, "confidence")),
            cartography_reference=p.choice(
                f"{path}.cartography_reference",
                p.required(path, block, "cartography_reference"),
                REFERENCES,
            ),
            bootstrap=BootstrapSettings.from_params(
                _block(path, block, "bootstrap", ("n_resamples", "seed")), f"{path}.bootstrap"
            ),
            alpha=_open_interval(f"{path}.alpha", p.required(path, block, "alpha")),
            stability=StabilitySettings.from_params(
                _block(path, block, "stability", ("baseline", "metrics")), f"{path}.stability"
            ),
            power=PowerSettings.from_params(
                _block(path, block, "power", ("power", "design_seeds", "targets", "reference")),
                f"{path}.power",
            ),
            claims=_claims(p.required(path, block, "claims"), f"{path}.claims"),
        )


def _claims(entries: Any, path: str) -> tuple[ClaimSpec, ...]:
    """``claims``: a list of claim entries with distinct ids (may be empty)."""
    if not isinstance(entries, (list, tuple)):
        raise p.fail(path, "a list of claims", entries)
    specs = tuple(read_claim(c, f"{path}[{i}]") for i, c in enumerate(entries))
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.id in seen:
            raise p.fail(f"{path}[{i}].id", "an id no other claim has", spec.id)
        seen.add(spec.id)
    return specs
