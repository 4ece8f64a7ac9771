"""Project hooks. Nodes stay unaware of tracking; hooks do the bookkeeping."""

from __future__ import annotations

import logging

from kedro.framework.hooks import hook_impl

from soft_label_audit import grid
from soft_label_audit.columns import MNIST_TEST_IDS, SOURCES
from soft_label_audit.errors import UnknownConditionError
from soft_label_audit.parameter_tree import read_parameters

logger = logging.getLogger(__name__)


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
        tree = read_parameters(params)  # the whole tree, before any pipeline is built or node runs
        if tree["digits"].study.from_votes:
            params = sources_from_votes(context.config_loader, params)
            read_parameters(params)
        grid.remember_parameters(params)


def sources_from_votes(config_loader, params: dict) -> dict:
    """``digits.study.items_from: votes``: read the vote file now, before any node (an id of
    no source stops the run here), and make ``study.sources`` the sources its items cover. The
    config loader's runtime parameters carry the change, so the nodes, kedro-mlflow and the
    provenance records see the sources the study runs on. Returns the new parameters."""
    from soft_label_audit.data_sources.study import vote_file_sources

    path, by_source = vote_file_sources(params)
    if not by_source:  # no usable item id: the annotation stage's validation says why
        return params
    covered = [s for s in SOURCES if s in by_source]
    named = []
    for source, ids in by_source.items():
        tests = sum(i in MNIST_TEST_IDS for i in ids)
        named.append(
            f"{len(ids)} {source} items" + (f" ({tests} MNIST test images)" if tests else "")
        )
    logger.info("own votes: %s names %s; study.sources = %s", path, ", ".join(named), covered)
    if list((params.get("study") or {}).get("sources") or []) == covered:
        return params
    runtime = dict(config_loader.runtime_params or {})
    study = dict(runtime.get("study") or {})
    runtime["study"] = {**study, "sources": covered}
    for dotted in [k for k in runtime if k.startswith("study.sources")]:
        runtime.pop(dotted)
    config_loader.runtime_params = runtime
    config_loader._runtime_params_oc = None  # the catalog's runtime_params resolver re-reads it
    return config_loader["parameters"]
