"""Configuration conventions: parameters used, catalog entries used, environments consistent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.pipeline import Pipeline

from soft_label_audit.grid import StudyGrid
from soft_label_audit.pipeline_registry import register_pipelines
from tests.conftest import PROJECT_ROOT
from tests.helpers import config_loader

CONF = PROJECT_ROOT / "conf"
STAGES = ("digits", "annotation", "labels", "training", "evaluation", "reporting")
#: parameters read outside nodes, with the reason
READ_OUTSIDE_NODES = {
    "study": "the grid: pipeline_registry builds one namespace per (source, condition)"
}


def _loader(env: str) -> OmegaConfigLoader:
    return config_loader(PROJECT_ROOT, env)


@pytest.fixture(scope="module")
def pipelines() -> dict[str, Pipeline]:
    return register_pipelines()


@pytest.fixture(scope="module")
def base_params() -> dict:
    return dict(_loader("base")["parameters"])


@pytest.fixture(scope="module")
def base_catalog() -> dict:
    return {k: v for k, v in _loader("base")["catalog"].items() if not k.startswith("_")}


def _leaves(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.extend(_leaves(value, path + "."))
        else:
            out.append(path)
    return out


def test_every_stage_is_registered(pipelines):
    assert set(STAGES) | {"__default__"} == set(pipelines)
    default_nodes = {n.name for n in pipelines["__default__"].nodes}
    for stage in STAGES:
        assert {n.name for n in pipelines[stage].nodes} <= default_nodes


def _optional_conditions():
    """The labels pipeline of every condition that has a target builder, in or out of the default
    study (e.g. machine_soft_large_teacher): its parameters and datasets count as used."""
    from soft_label_audit.grid import StudyGrid
    from soft_label_audit.pipelines.labels import create_pipeline
    from soft_label_audit.targets import BUILDERS

    return create_pipeline(grid=StudyGrid(("mnist",), tuple(BUILDERS)))


def test_every_parameter_is_used(pipelines, base_params):
    optional = _optional_conditions()
    used = {
        d.split(":", 1)[1]
        for d in pipelines["__default__"].inputs() | optional.inputs()
        if d.startswith("params:")
    }
    used |= {
        d.split(":", 1)[1]
        for n in pipelines["__default__"].nodes
        for d in n.inputs
        if d.startswith("params:")
    }
    unused = [
        leaf
        for leaf in _leaves(base_params)
        if leaf.split(".")[0] not in READ_OUTSIDE_NODES
        and not any(leaf == u or leaf.startswith(u + ".") for u in used)
    ]
    assert not unused, f"parameters no node reads: {unused}"
    missing = [u for u in used if not _has_path(base_params, u)]
    assert not missing, f"nodes read parameters that conf/base does not define: {missing}"


def _has_path(tree: dict, dotted: str) -> bool:
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _parse_match(pattern: str, name: str) -> bool:
    from parse import parse

    return parse(pattern, name) is not None


def test_every_catalog_entry_is_produced_or_consumed(pipelines, base_catalog):
    from soft_label_audit.runner import EXCHANGE_PATTERN  # the Dask runner's, not a pipeline's

    datasets = pipelines["__default__"].datasets() | _optional_conditions().datasets()
    base_catalog = {k: v for k, v in base_catalog.items() if k != EXCHANGE_PATTERN}
    unused = [
        entry
        for entry in base_catalog
        if not any(_parse_match(entry, d) if "{" in entry else entry == d for d in datasets)
    ]
    assert not unused, f"catalog entries no pipeline produces or consumes: {unused}"


def test_datasets_crossing_stages_are_in_the_catalog(pipelines, base_catalog):
    """A dataset one stage writes and another reads must persist (never a MemoryDataset)."""
    produced = {stage: pipelines[stage].all_outputs() for stage in STAGES}
    consumed = {stage: pipelines[stage].inputs() for stage in STAGES}
    crossing = set()
    for a in STAGES:
        for b in STAGES:
            if a != b:
                crossing |= produced[a] & consumed[b]
    missing = sorted(
        d
        for d in crossing
        if not any(_parse_match(entry, d) if "{" in entry else entry == d for entry in base_catalog)
    )
    assert not missing, f"datasets crossing stages without a catalog entry: {missing}"


@pytest.mark.parametrize(
    "env", sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in ("base", "local"))
)
def test_environment_overrides_only_known_parameters(env, base_params):
    """A typo in conf/<env> would silently add a parameter nobody reads."""
    base_leaves = set(_leaves(base_params))
    for path in (CONF / env).glob("parameters*.yml"):
        overrides = yaml.safe_load(path.read_text()) or {}
        unknown = [
            leaf
            for leaf in _leaves(overrides)
            if leaf not in base_leaves
            and not any(b.startswith(leaf + ".") for b in base_leaves)
            and not any(leaf.startswith(b + ".") for b in base_leaves)
        ]
        assert not unknown, (
            f"{path.relative_to(PROJECT_ROOT)} sets parameters conf/base lacks: {unknown}"
        )


def test_grid_namespaces_are_consistent(pipelines, base_params):
    grid = StudyGrid.from_params(base_params)
    for stage in ("labels", "training", "evaluation"):
        namespaces = {n.namespace for n in pipelines[stage].nodes if n.namespace}
        expected = {f"{s}.{c}" for s, c in grid.namespaces()}
        missing = expected - namespaces
        assert not missing, f"{stage}: no nodes in namespaces {sorted(missing)}"


def test_mlflow_tracks_to_sqlite():
    mlflow_conf = yaml.safe_load((CONF / "base" / "mlflow.yml").read_text())
    assert mlflow_conf["server"]["mlflow_tracking_uri"] == "sqlite:///mlflow.db"


def test_telemetry_consent_is_committed_off():
    assert yaml.safe_load((PROJECT_ROOT / ".telemetry").read_text()) == {"consent": False}


def test_no_machine_paths_in_the_project():
    offenders = []
    for path in (
        list((PROJECT_ROOT / "src").rglob("*.py"))
        + list(CONF.rglob("*.yml"))
        + [PROJECT_ROOT / "Makefile"]
    ):
        text = path.read_text(errors="ignore")
        if "/work/" in text or "/root/" in text or "/tmp/pytest" in text:
            offenders.append(str(path.relative_to(PROJECT_ROOT)))
    assert not offenders


# ---------------------------------------------------------------- kedro-viz: the first view

#: elements (boxes, nodes, datasets; parameters are hidden by default) that kedro-viz draws at
#: the top level of the __default__ flowchart; 151 before the stages had their own boxes and
#: each source kept its runs' outputs in its box. The floor is the study's own deliverables
#: (every output no node reads is drawn at the top level: the reporting tables and figures)
FIRST_VIEW_MAX_ELEMENTS = 48


def _first_view(pipeline: Pipeline) -> dict[str, set[str]]:
    """What kedro-viz draws at the top level of ``pipeline`` with every box collapsed, by kind
    (its own tree of namespaces, as ``kedro viz`` builds it)."""
    from kedro_viz.data_access.repositories.modular_pipelines import (
        ModularPipelinesRepository,
    )
    from kedro_viz.utils import _hash_input_output

    repo = ModularPipelinesRepository()
    repo.populate_tree(pipeline)
    names = {_hash_input_output(d): d for d in pipeline.datasets()}
    names |= {repo.get_node_and_modular_pipeline_mapping(n)[0]: n.name for n in pipeline.nodes}
    drawn: dict[str, set[str]] = {}
    for child in repo.tree["__root__"].children:
        drawn.setdefault(str(child.type.value), set()).add(names.get(child.id, child.id))
    return drawn


def test_first_kedro_viz_view_is_a_small_flowchart_of_boxes(pipelines):
    drawn = _first_view(pipelines["__default__"])
    assert not drawn.get("task"), f"nodes outside every box: {sorted(drawn['task'])}"
    assert {"digits", "annotation", "labels", "reporting"} <= drawn["modularPipeline"]
    shown = len(drawn["modularPipeline"]) + len(drawn["data"])
    assert shown <= FIRST_VIEW_MAX_ELEMENTS, (
        f"the first kedro-viz view draws {shown} boxes and datasets: {sorted(drawn['data'])}"
    )


def test_runs_datasets_stay_in_their_source_box(pipelines, base_params):
    """A dataset named for a (source, condition) is made in that namespace and never drawn at
    the top level; what a source hands on is one dataset per kind of hand-over."""
    grid = StudyGrid.from_params(base_params)
    default = pipelines["__default__"]
    producers = {out: n for n in default.nodes for out in n.outputs}
    for s, c in grid.namespaces():
        for dataset in (d for d in default.datasets() if d.startswith(f"{s}.{c}.")):
            if dataset in producers:
                assert producers[dataset].namespace == f"{s}.{c}", dataset
    top = _first_view(default)["data"]
    runs = sorted(d for d in top if any(d.startswith(f"{s}.{c}.") for s, c in grid.namespaces()))
    assert not runs, f"per-run datasets drawn outside their source's box: {runs}"
    per_source = {s: sorted(d for d in top if d.startswith(f"{s}.")) for s in grid.sources}
    assert all(len(handed) <= 4 for handed in per_source.values()), per_source


def _layer(catalog: dict, dataset: str) -> str | None:
    entries = [catalog[dataset]] if dataset in catalog else []
    patterns = sorted(
        (p for p in catalog if "{" in p and _parse_match(p, dataset)),
        key=lambda p: -len("".join(part for part in p.replace("}", "{").split("{")[::2])),
    )
    entries += [catalog[p] for p in patterns[:1]]
    for entry in entries:
        return ((entry.get("metadata") or {}).get("kedro-viz") or {}).get("layer")
    return None


def test_every_dataset_has_a_layer_and_the_layers_form_no_cycle(pipelines, base_catalog):
    """kedro-viz draws the layers as bands only when every edge goes down the layer order."""
    from graphlib import CycleError, TopologicalSorter

    default = pipelines["__default__"]
    layers = {d: _layer(base_catalog, d) for d in default.datasets() if not d.startswith("params")}
    missing = sorted(d for d, layer in layers.items() if layer is None)
    assert not missing, f"datasets without metadata: kedro-viz: layer: {missing}"
    order = TopologicalSorter()
    for n in default.nodes:
        for i in n.inputs:
            for o in n.outputs:
                if i in layers and layers[i] != layers[o]:
                    order.add(layers[o], layers[i])
    try:
        order.prepare()
    except CycleError as cycle:
        pytest.fail(f"the layers form a cycle, so kedro-viz shows none: {cycle.args[1]}")


def test_every_pipeline_wires_nodes_by_keyword():
    """One wiring style: ``node(func=..., inputs=..., outputs=..., name=...)``."""
    import ast

    for path in sorted(
        (PROJECT_ROOT / "src" / "soft_label_audit" / "pipelines").glob("*/pipeline.py")
    ):
        if path.parent.name == "digits":  # wired by the digits stage's owner
            continue
        for call in ast.walk(ast.parse(path.read_text())):
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) in ("node", "Node"):
                keywords = {k.arg for k in call.keywords}
                where = f"{path.relative_to(PROJECT_ROOT)}:{call.lineno}"
                assert not call.args, f"{where}: positional node arguments"
                assert {"func", "inputs", "outputs", "name"} <= keywords, where


#: lines a node body may have (docstring excluded): nodes are thin adapters
NODE_BODY_MAX = 25
#: nodes allowed up to 30 lines, with the reason
LONGER_NODES: dict[str, str] = {}


def _node_function(func):
    """The function behind a node (through functools.partial and the grid's wrappers, which
    set ``__wrapped__`` or copy the name and module of the function they bind)."""
    import functools
    import importlib

    while isinstance(func, functools.partial) or hasattr(func, "__wrapped__"):
        func = func.func if isinstance(func, functools.partial) else func.__wrapped__
    if "<locals>" in func.__qualname__:  # a wiring closure (grid.gather): measure it as it is
        return func
    module = importlib.import_module(func.__module__)
    return functools.reduce(getattr, func.__qualname__.split("."), module)


def node_body_lines(func) -> int:
    """Lines from the first statement after the docstring to the end of the function."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(func))).body[0]
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return body[-1].end_lineno - body[0].lineno + 1 if body else 0


def test_node_body_lines_counts_statements_not_the_docstring():
    def short(x):
        """A docstring
        of three
        lines."""
        y = x + 1
        return y

    assert node_body_lines(short) == 2


def test_nodes_are_thin(pipelines):
    functions = {
        f"{f.__module__}.{f.__qualname__}": f
        for f in (
            _node_function(n.func)
            for n in pipelines["__default__"].nodes + _optional_conditions().nodes
        )
    }
    too_long = {
        name: lines
        for name, f in functions.items()
        if (lines := node_body_lines(f))
        > (30 if name.rsplit(".", 1)[-1] in LONGER_NODES else NODE_BODY_MAX)
    }
    assert not too_long, f"node bodies over {NODE_BODY_MAX} lines: {too_long}"


def _private_imports(paths) -> list[str]:
    """``from <project module> import _name``: a private name used outside its module."""
    import ast

    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                "soft_label_audit",
                "tests",
            ):
                found += [
                    f"{path.name}:{node.lineno} {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    return found


def test_private_imports_are_found(tmp_path):
    offender = tmp_path / "offender.py"
    offender.write_text(
        "from __future__ import annotations\n"
        "from soft_label_audit.metrics._checks import as_probs\n"
        "from soft_label_audit.crowd.validation import _hidden, check_frame\n"
    )
    assert _private_imports([offender]) == [
        "offender.py:3 soft_label_audit.crowd.validation._hidden"
    ]


def test_no_module_imports_another_modules_private_names():
    files = [
        p for folder in ("src", "scripts", "tests") for p in (PROJECT_ROOT / folder).rglob("*.py")
    ]
    assert not _private_imports(files)


#: where the project's own text lives (data/ holds outputs, not text that refers to files)
TEXT_FOLDERS = ("src", "tests", "scripts", "conf", "docs", "notebooks")
TEXT_SUFFIXES = (".py", ".yml", ".yaml", ".md", ".ipynb", ".toml", ".txt")
TOP_LEVEL_TEXT = ("README.md", "Makefile", "pyproject.toml", ".gitignore")
#: a path-like token naming a markdown file (URLs are taken out before the search)
_MD_REFERENCE = re.compile(r"(?<![\w./-])((?:\.{1,2}/)?(?:[\w.-]+/)*[\w-]+\.md)(?![\w/])")
_URL = re.compile(r"[a-z]+://\S+")


def _missing_markdown_references(paths: list[Path], root: Path) -> list[str]:
    """``file: name`` for every markdown file named in ``paths`` that is not a file of ``root``:
    a name resolves against the root, the root's docs/ or the referring file's folder."""
    missing = []
    for path in paths:
        text = _URL.sub(" ", path.read_text(errors="ignore"))
        for name in sorted(set(_MD_REFERENCE.findall(text))):
            candidates = (root / name, root / "docs" / name, path.parent / name)
            if not any(
                c.is_file() and c.resolve().is_relative_to(root.resolve()) for c in candidates
            ):
                missing.append(f"{path.relative_to(root)}: {name}")
    return missing


def test_markdown_references_outside_the_project_are_found(tmp_path):
    # the names outside the example project are built, so this file does not name them itself
    environment, design = "ENVIRONMENT" + ".md", "../DESIGN" + ".md"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "architecture.md").write_text("# design\n")
    (tmp_path / "README.md").write_text("See [the design](docs/architecture.md).\n")
    module = tmp_path / "module.py"
    module.write_text(
        f'"""Ids as in docs/architecture.md and architecture.md; flags from {environment},\n'
        f'the plan in {design}, Kedro\'s page https://docs.kedro.org/x/dask.md."""\n'
    )
    assert _missing_markdown_references([tmp_path / "README.md", module], tmp_path) == [
        f"module.py: {design}",
        f"module.py: {environment}",
    ]


def test_nothing_refers_to_a_design_file_outside_the_project():
    """Docstrings, comments and docs name markdown files of the project only (its design page is
    docs/architecture.md): every ``*.md`` they name is a file of this repository."""
    paths = [PROJECT_ROOT / name for name in TOP_LEVEL_TEXT if (PROJECT_ROOT / name).is_file()]
    paths += [
        path
        for folder in TEXT_FOLDERS
        for path in sorted((PROJECT_ROOT / folder).rglob("*"))
        if path.suffix in TEXT_SUFFIXES and path.is_file()
    ]
    assert len(paths) > 100  # the search reads the project's text, not an empty folder
    missing = _missing_markdown_references(paths, PROJECT_ROOT)
    assert not missing, f"markdown files named that the project does not have: {missing}"
