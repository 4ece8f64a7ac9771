"""Project hooks. Nodes stay unaware of tracking; hooks do the bookkeeping."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl

from soft_label_audit import grid
from soft_label_audit.errors import UnknownConditionError
from soft_label_audit.parameter_tree import read_parameters


def check_conditions(params: dict) -> None:
    """Every condition of ``study.conditions`` must have a target builder (targets.BUILDERS)."""
    from soft_label_audit.targets import BUILDERS

    conditions = (params.get("study") or {}).get("conditions") or []
    conditions = [conditions] if isinstance(conditions, str) else [str(c) for c in conditions]
    unknown = [c for c in conditions if c not in BUILDERS]
    if unknown:
        raise UnknownConditionError(
            f"unknown label condition(s) {', '.join(map(repr, unknown))} in study.conditions",
            f"use names from {', '.join(sorted(BUILDERS))} (conf/base/parameters_study.yml), "
            "or add a builder to soft_label_audit.targets.BUILDERS",
        )


class StudyGridHook:
    """Checks the run's whole parameter tree (:func:`~soft_label_audit.parameter_tree.read_parameters`)
    and remembers it, so the study grid follows ``--env`` and ``--params``."""

    @hook_impl
    def after_context_created(self, context) -> None:
        # the raw parameters (runtime --params included): `context.params` would validate them
        # against the registered pipelines, building the pipelines before the grid is known
        params = context.config_loader["parameters"]
        check_conditions(params)
        read_parameters(params)  # the whole tree, before any pipeline is built or node runs
        grid.remember_parameters(params)
