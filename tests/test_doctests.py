"""The examples in the package's docstrings run, with their exact output (``make test`` runs
them with the rest of the suite). Every module under src/soft_label_audit that holds an example
(``>>>``) is collected, so a new example is tested without listing it here."""

from __future__ import annotations

import doctest
import importlib

import pytest

from tests.conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "soft_label_audit"


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text():
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_documented_functions_have_examples():
    modules = set(_modules_with_examples())
    for name in (
        "soft_label_audit.metrics.calibration",  # top_label_ece
        "soft_label_audit.metrics.cartography",  # coordinates
        "soft_label_audit.targets",  # every target builder
        "soft_label_audit.crowd.aggregation",  # every aggregation rule
        "soft_label_audit.params",
        "soft_label_audit.configs",
    ):
        assert name in modules


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name}: no example ran"
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
