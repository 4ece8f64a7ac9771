"""The one place where the table contracts are checked: on every save and every load.

Keyed on dataset names (``digits``, ``mnist.human_soft.targets``, ...): a table with a schema
in :mod:`soft_label_audit.contracts` is validated before the catalog writes it and after the
catalog reads it, so a node never sees, and never leaves behind, a table that breaks its
contract. Datasets without a contract pass untouched.
"""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

from soft_label_audit.contracts import check_table


class TableContractHook:
    """Validates the catalog tables that have a contract when they are saved or loaded."""

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        check_table(dataset_name, data)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any, node: Any) -> None:
        check_table(dataset_name, data)
