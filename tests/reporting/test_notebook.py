"""The comparison notebook is valid, compiles, and only reads results (no pipeline logic); it is
executed on real runs by tests/test_study_record.py."""

import ast
import json

from tests.conftest import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "notebooks" / "compare_conditions.ipynb"


def _code_cells():
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["nbformat"] == 4
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_cells_compile_and_carry_no_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    for source in _code_cells():
        compile(source, str(NOTEBOOK), "exec")


def test_notebook_reads_through_the_catalog_and_mlflow_only():
    tree = ast.parse("\n".join(_code_cells()))
    defined = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert not defined, f"the notebook defines {defined}: logic belongs in the package"
    imported = {
        a.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [ast.alias(n.module or "")])
    }
    assert "soft_label_audit" in imported  # one reading function (tests/test_study_record.py)
    source = "\n".join(_code_cells())
    assert "from soft_label_audit.study_record import read_context_record" in source
    assert 'catalog.load("study_summary")' in source and "read_context_record(context" in source
    assert "mlflow.search_runs" not in source  # the latest child per cell would mix records
