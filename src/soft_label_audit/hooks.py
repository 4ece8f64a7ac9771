"""Project hooks. Nodes stay unaware of tracking; hooks do the bookkeeping."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl

from soft_label_audit import grid


class StudyGridHook:
    """Remembers the run's parameters so the study grid follows ``--env`` and ``--params``."""

    @hook_impl
    def after_context_created(self, context) -> None:
        # the raw parameters (runtime --params included): `context.params` would validate them
        # against the registered pipelines, building the pipelines before the grid is known
        grid.remember_parameters(context.config_loader["parameters"])
