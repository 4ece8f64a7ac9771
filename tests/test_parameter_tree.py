"""The whole parameter tree is read once, before any work: every documented parameter with a
bad value, every block with an unknown key and every setting left out stops the run naming
the parameter's path (soft_label_audit.parameter_tree); ``kedro run`` then ends in a few lines
with exit status 2 before its first node."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

from soft_label_audit.parameter_tree import (
    STUDENT_ONLY_KEYS,
    TEACHER_NEEDS,
    TRAINING_KEYS,
    base_block,
    read_parameters,
    teacher_block,
)
from soft_label_audit.params import ParameterError
from tests.conftest import PROJECT_ROOT
from tests.helpers import config_loader, data_root, kedro_cli, make_project_copy

#: mappings whose keys are data, not settings (any key is allowed, none is required)
DATA_MAPS = ("reporting.power.targets", "annotation.released.source_map")
#: settings a teacher inherits from ``training`` when its own block leaves them out
INHERITED = tuple(
    f"labels.{teacher}.{key}"
    for teacher in TEACHER_NEEDS
    for key in TRAINING_KEYS
    if key not in STUDENT_ONLY_KEYS
)


def _load(env: str) -> dict:
    return copy.deepcopy(dict(config_loader(PROJECT_ROOT, env)["parameters"]))


BASE = _load("base")


def _dotted(path: tuple) -> str:
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


def _walk(node, path: tuple = ()) -> Iterator[tuple[str, tuple, object]]:
    """("map", path, node) for every mapping and ("leaf", path, value) for every other value
    (lists are leaves, and so is each of their elements)."""
    if isinstance(node, dict):
        if path:
            yield "map", path, node
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    else:
        yield "leaf", path, node
        if isinstance(node, list):
            for i, value in enumerate(node):
                yield from _walk(value, (*path, i))


def _changed(tree: dict, path: tuple, change) -> dict:
    tree = copy.deepcopy(tree)
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    change(parent, path[-1])
    return tree


def _named(path: tuple) -> str:
    """The path an error must name: the element's own, or the list's that holds it."""
    while isinstance(path[-1], int):
        path = path[:-1]
    return _dotted(path)


def _refused(tree: dict) -> str:
    with pytest.raises(ParameterError) as info:
        read_parameters(tree)
    return str(info.value).splitlines()[0]


# sorted: the merged tree's key order may differ between processes (xdist workers must collect
# the same tests in the same order)
LEAVES = sorted((path for kind, path, _ in _walk(BASE) if kind == "leaf"), key=_dotted)
MAPS = sorted(
    (path for kind, path, _ in _walk(BASE) if kind == "map" and _dotted(path) not in DATA_MAPS),
    key=_dotted,
)
SETTINGS = [
    path
    for path in LEAVES + MAPS
    if not isinstance(path[-1], int)
    and _dotted(path[:-1]) not in DATA_MAPS
    and _dotted(path) not in INHERITED
    # the recipe of a condition the study does not run may be left out
    and not (
        len(path) == 3
        and path[:2] == ("labels", "conditions")
        and path[2] not in BASE["study"]["conditions"]
    )
]


def _leaf_value(path: tuple):
    node = BASE
    for key in path:
        node = node[key]
    return node


def test_the_configured_environments_read_cleanly():
    for env in ("base", "test", "released"):
        tree = read_parameters(_load(env))
        assert tree["study"].sources == ("mnist", "synthetic")
    assert len(LEAVES) > 150 and len(MAPS) > 40  # the walk sees the whole tree


@pytest.mark.parametrize("path", LEAVES, ids=_dotted)
def test_every_parameter_with_a_wrong_kind_of_value_is_refused_by_path(path):
    message = _refused(_changed(BASE, path, lambda parent, key: parent.__setitem__(key, {"x": 1})))
    assert message.startswith(_named(path)), message


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in LEAVES
        if isinstance(_leaf_value(p), (int, float)) and not isinstance(_leaf_value(p), bool)
    ],
    ids=_dotted,
)
def test_every_number_out_of_range_is_refused_by_path(path):
    message = _refused(_changed(BASE, path, lambda parent, key: parent.__setitem__(key, -1e9)))
    assert message.startswith(_named(path)), message


@pytest.mark.parametrize("path", MAPS, ids=_dotted)
def test_every_block_refuses_an_unknown_key(path):
    message = _refused(
        _changed(BASE, path, lambda parent, key: parent[key].__setitem__("zz_typo", 1))
    )
    assert message.startswith(_named(path)) and "unknown settings ['zz_typo']" in message


@pytest.mark.parametrize("path", SETTINGS, ids=_dotted)
def test_every_setting_left_out_is_missing_not_defaulted(path):
    """A setting's default lives in conf/base, nowhere else: no reader falls back on one."""
    message = _refused(_changed(BASE, path, lambda parent, key: parent.__delitem__(key)))
    assert message.startswith(_dotted(path)) and "is missing" in message, message


def test_an_unknown_block_and_a_condition_without_its_recipe_are_refused():
    assert _refused({**BASE, "evaluaton": {"n_bins": 3}}).startswith(
        "parameters has unknown settings ['evaluaton']"
    )
    recipes = {k: v for k, v in BASE["labels"]["conditions"].items() if k != "human_soft"}
    tree = {**BASE, "labels": {**BASE["labels"], "conditions": recipes}}
    assert (
        _refused(tree)
        == "labels.conditions.human_soft is missing: study.conditions lists 'human_soft'"
    )


def test_a_post_hoc_condition_without_its_base_is_refused():
    conditions = [c for c in BASE["study"]["conditions"] if c != "original_hard"]
    i = conditions.index("original_hard_temperature_scaled")
    tree = {**BASE, "study": {**BASE["study"], "conditions": conditions}}
    assert _refused(tree) == (
        f"study.conditions[{i}] is 'original_hard_temperature_scaled', which rescales the runs "
        "of 'original_hard' (post hoc, no training), but study.conditions lacks 'original_hard'"
    )
    # with its base, in any order, it reads
    tree["study"]["conditions"] = [*conditions, "original_hard"]
    assert "original_hard_temperature_scaled" in read_parameters(tree)["study"].conditions


def _pool_first_id(first: int, n_items: int | None = None) -> dict:
    pool = copy.deepcopy(BASE["digits"]["pool"])
    pool["synthetic"]["first_item_id"] = first
    if n_items is not None:
        pool["synthetic"]["n_items"] = n_items
    return {**BASE, "digits": {**BASE["digits"], "pool": pool}}


def test_the_pool_ids_miss_the_synthetic_and_released_ids():
    made = BASE["digits"]["synthetic"]
    lo, hi = made["first_item_id"], made["first_item_id"] + made["n_items"]
    offset = BASE["annotation"]["released"]["non_mnist_id_offset"]
    n = BASE["digits"]["pool"]["synthetic"]["n_items"]
    assert _refused(_pool_first_id(hi - 1)) == (
        "digits.pool.synthetic.first_item_id must be a first id whose range [first, first + "
        f"n_items) misses digits.synthetic's ids [{lo}, {hi}), got {hi - 1}"
    )
    assert _refused(_pool_first_id(lo - n + 1)).startswith("digits.pool.synthetic.first_item_id")
    assert _refused(_pool_first_id(offset - n + 1)).startswith(
        "digits.pool.synthetic.first_item_id must be a first id whose range [first, first + "
        "n_items) misses the released non-MNIST ids (annotation.released.non_mnist_id_offset"
    )
    assert _refused(_pool_first_id(60_000)).startswith(
        "digits.pool.synthetic.first_item_id must be an integer >= 70000"
    )
    # ranges that touch without overlapping, and an empty pool anywhere, are fine
    for tree in (_pool_first_id(hi), _pool_first_id(lo - n), _pool_first_id(offset - n)):
        assert read_parameters(tree)["digits"].pool.synthetic_n_items == n
    assert read_parameters(_pool_first_id(lo, n_items=0))["digits"].pool.synthetic_ids() == range(
        lo, lo
    )


def test_teachers_are_the_students_cnn_unless_they_say_otherwise():
    tree = read_parameters(BASE)
    for teacher in TEACHER_NEEDS:
        config = getattr(tree["labels"], teacher)
        assert config.model == tree["training"].by_source["mnist"].model
        assert config.train.lr == BASE["training"]["optimizer"]["lr"]
        assert config.train.epochs == BASE["labels"][teacher]["epochs"]
    own = teacher_block({"model": {"hidden": 8}}, base_block("training"), "labels.teacher")
    assert own["model"] == {"channels": [16, 32], "hidden": 8} and "seeds" not in own


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project_copy(tmp_path_factory.mktemp("parameter_tree_project"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("evaluation.n_bins=0", "evaluation.n_bins must be a positive integer, got 0"),
        ("reporting.alpha=7", "reporting.alpha must be a number in (0, 1), got 7"),
        ("training.optimiser.lr=0.1", "training has unknown settings ['optimiser']"),
    ],
)
def test_kedro_run_stops_before_its_first_node(project, params, expected):
    result = kedro_cli(project, "run", "--env", "test", "--params", params, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert f"Error: {expected}" in output, output
    assert len(output.splitlines()) <= 10 and "Traceback" not in output, output
    assert "node" not in output.lower(), output  # no node was run (nor announced)
    assert not data_root(project).exists()  # nothing was written
