"""The one place where the table contracts are checked: on save and on load.

Keyed on dataset names (``digits``, ``mnist.human_soft.targets``, ...): a table with a schema
in :mod:`soft_label_audit.contracts` is validated before the catalog writes it and when the
catalog first reads it in a run, so a node never sees, and never leaves behind, a table that
breaks its contract. Datasets without a contract pass untouched.

A table is checked once per run on the way in: a later load of a dataset that this run has
already checked (saved, or loaded before) is not checked again, since it reads the same file.
That keeps the checks a small share of a run (tables are loaded by many nodes).
"""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

from soft_label_audit.contracts import check_table, schema_for


class TableContractHook:
    """Validates the catalog tables that have a contract when they are saved or loaded."""

    def __init__(self) -> None:
        self._checked: set[str] = set()

    @hook_impl
    def before_pipeline_run(self, run_params: Any, pipeline: Any, catalog: Any) -> None:
        self._checked.clear()

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        check_table(dataset_name, data)
        self._checked.add(dataset_name)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any, node: Any) -> None:
        if dataset_name in self._checked or schema_for(dataset_name) is None:
            return
        check_table(dataset_name, data)
        self._checked.add(dataset_name)
