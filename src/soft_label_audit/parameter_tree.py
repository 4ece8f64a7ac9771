"""The whole parameter tree, read once into typed, frozen configuration objects.

:class:`~soft_label_audit.hooks.StudyGridHook` calls :func:`read_parameters` when the Kedro
context is created, before any pipeline is built or any node runs, so every bad value, unknown
key and missing key of every block stops ``kedro run`` in a few lines with exit status 2
(:mod:`soft_label_audit.cli`)::

    Error: evaluation.n_bins must be a positive integer, got 0
    Fix: correct it in conf/<env>/parameters_*.yml or pass --params

Each top-level block has one reader in :data:`BLOCKS` (its typed class's ``from_params``);
a key that no reader knows is refused, so a typo in ``--params`` cannot pass silently. The
rules of a setting live on its field's reader, once; its default lives in ``conf/base`` (the
readers take every setting from the YAML, none from a Python default). Nodes receive the
blocks that this check has passed (Kedro's ``params:`` inputs, so kedro-mlflow logs them and
kedro-viz shows them as they are) and read their typed object from them, which cannot fail
any more.

Blocks that depend on others are read with them: ``training`` once per source of
``study.sources`` (epochs may differ by source), ``labels.conditions`` for every condition of
``study.conditions`` with its builder's options class (:data:`soft_label_audit.targets.BUILDERS`),
and the teachers of ``labels`` on top of the ``training`` block (:func:`teacher_block`). A
post-hoc condition of ``study.conditions`` needs its base condition there too
(:func:`_check_post_hoc`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from soft_label_audit import params as p


@dataclass(frozen=True)
class DigitsConfig:
    """The ``digits`` block: the synthetic variant, the study split, the held-out scoring pool
    and the sample figure."""

    synthetic: Any
    study: Any
    pool: Any
    figure: Any

    @classmethod
    def from_params(cls, block: Any, path: str = "digits") -> DigitsConfig:
        from soft_label_audit.data_sources.figures import SampleGridConfig
        from soft_label_audit.data_sources.pool import PoolConfig
        from soft_label_audit.data_sources.study import StudyConfig
        from soft_label_audit.data_sources.synthetic import AmbiguityConfig

        block = p.block(path, block)
        p.no_unknown(path, block, ("synthetic", "study", "pool", "figure"))
        made = AmbiguityConfig.from_params(
            p.required(path, block, "synthetic"), f"{path}.synthetic"
        )
        pool = PoolConfig.from_params(p.required(path, block, "pool"), f"{path}.pool")
        ids = range(made.first_item_id, made.first_item_id + made.n_items)
        _pool_ids_clear_of(pool, ids, f"{path}.synthetic's ids [{ids.start}, {ids.stop})")
        return cls(
            synthetic=made,
            study=StudyConfig.from_params(p.required(path, block, "study"), f"{path}.study"),
            pool=pool,
            figure=SampleGridConfig.from_params(
                p.required(path, block, "figure"), f"{path}.figure"
            ),
        )


def _pool_ids_clear_of(pool: Any, ids: range, what: str) -> None:
    """Refuse pool synthetic ids that overlap ``ids``, the id range of other items (``what``)."""
    mine = pool.synthetic_ids()
    if len(mine) and len(ids) and mine.start < ids.stop and ids.start < mine.stop:
        raise p.fail(
            "digits.pool.synthetic.first_item_id",
            f"a first id whose range [first, first + n_items) misses {what}",
            pool.synthetic_first_item_id,
        )


#: keys of a teacher block that are not training settings
TEACHER_KEYS = ("seed", "k_folds", "n_train", "n_val")
#: keys of the ``training`` block that a teacher does not inherit
STUDENT_ONLY_KEYS = ("seeds", "epochs")


def teacher_block(teacher: Any, training: Any, path: str) -> dict[str, Any]:
    """A teacher's settings: the ``training`` block (the students' model and optimisation,
    without ``seeds`` and the per-source ``epochs``) overridden key by key by the teacher's
    own block, so the CNN and the optimiser are written once, in ``training``.

    >>> teacher_block({"epochs": 3, "optimizer": {"lr": 0.1}}, {"seeds": [0], "epochs": 9,
    ...     "optimizer": {"name": "adam", "lr": 0.002}}, "labels.teacher")
    {'optimizer': {'name': 'adam', 'lr': 0.1}, 'epochs': 3}
    """
    teacher = p.block(path, teacher)
    training = p.block("training", training)
    merged: dict[str, Any] = {k: v for k, v in training.items() if k not in STUDENT_ONLY_KEYS}
    for key, value in teacher.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


#: the teachers of ``labels`` and the settings each must have
TEACHER_NEEDS = {"teacher": ("k_folds",), "large_teacher": ("n_train", "n_val")}


def read_teacher(block: Any, training: Any, key: str, path: str | None = None):
    """``labels.<key>`` (``teacher`` or ``large_teacher``) as a
    :class:`~soft_label_audit.trainer.teacher.TeacherConfig`, on top of ``training``."""
    from soft_label_audit.trainer.teacher import TeacherConfig

    path = path or f"labels.{key}"
    own = p.block(path, block)
    p.no_unknown(path, own, (*(k for k in TRAINING_KEYS if k != "seeds"), *TEACHER_KEYS))
    return TeacherConfig.from_params(teacher_block(own, training, path), path, TEACHER_NEEDS[key])


@dataclass(frozen=True)
class LabelsConfig:
    """The ``labels`` block: the none-slot rule, each study condition's recipe options and the
    two teachers (read on top of ``training``, :func:`teacher_block`)."""

    none_slot: str
    conditions: dict[str, Any]
    teacher: Any
    large_teacher: Any

    @classmethod
    def from_params(
        cls, block: Any, training: Any, conditions: tuple[str, ...], path: str = "labels"
    ) -> LabelsConfig:
        from soft_label_audit.configs import none_slot
        from soft_label_audit.targets import BUILDERS, builder_for

        block = p.block(path, block)
        p.no_unknown(path, block, ("none_slot", "conditions", "teacher", "large_teacher"))
        recipes = p.block(f"{path}.conditions", p.required(path, block, "conditions"))
        options = {}
        for condition in conditions:
            where = f"{path}.conditions.{condition}"
            if condition not in recipes:
                raise p.ParameterError(
                    f"{where} is missing: study.conditions lists {condition!r}",
                    fix=f"add `{condition}: {{}}` (or its options) under labels.conditions",
                )
            options[condition] = builder_for(condition).options.from_params(
                recipes[condition], where
            )
        p.no_unknown(f"{path}.conditions", recipes, BUILDERS)
        for name, value in recipes.items():  # recipes of conditions the study does not run
            if name not in options:
                builder_for(str(name)).options.from_params(value, f"{path}.conditions.{name}")
        teachers = {
            key: read_teacher(p.required(path, block, key), training, key, f"{path}.{key}")
            for key in TEACHER_NEEDS
        }
        return cls(
            none_slot=none_slot(p.required(path, block, "none_slot"), f"{path}.none_slot"),
            conditions=options,
            teacher=teachers["teacher"],
            large_teacher=teachers["large_teacher"],
        )


#: the settings of a ``training`` block (and of a teacher block, which inherits them)
TRAINING_KEYS = (
    "seeds",
    "epochs",
    "batch_size",
    "model",
    "optimizer",
    "schedule",
    "device",
    "vectorise",
    "num_threads",
    "parallel_runs",
    "deterministic",
    "progress",
    "eval_batch_size",
)


@dataclass(frozen=True)
class TrainingBlock:
    """The ``training`` block, read for every source of the study (epochs may differ)."""

    by_source: dict[str, Any]

    @classmethod
    def from_params(cls, block: Any, sources: tuple[str, ...], path: str = "training"):
        from soft_label_audit.configs import TrainingConfig

        block = p.block(path, block)
        p.no_unknown(path, block, TRAINING_KEYS)
        epochs = p.required(path, block, "epochs")
        if isinstance(epochs, Mapping):
            p.no_unknown(f"{path}.epochs", epochs, sources)
        return cls({s: TrainingConfig.from_params(block, s, path) for s in sources})


@dataclass(frozen=True)
class Parameters:
    """Every block of the parameter tree, typed (:data:`BLOCKS` says which class reads which)."""

    blocks: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.blocks[name]


def _study(params: Mapping[str, Any]):
    from soft_label_audit.grid import StudyGrid

    return StudyGrid.from_params(params)


def _reader(dotted: str) -> Callable[[Any], Any]:
    """``module:Class`` -> that class's ``from_params`` (imported when first used)."""

    def read(block: Any) -> Any:
        import importlib

        module, name = dotted.split(":")
        return getattr(importlib.import_module(module), name).from_params(block)

    read.__qualname__ = f"{dotted}.from_params"
    return read


#: top-level block -> reader of the block alone; blocks read with others are in :func:`read_parameters`
BLOCKS: dict[str, Callable[[Any], Any]] = {
    "digits": DigitsConfig.from_params,
    "annotation": _reader("soft_label_audit.configs:AnnotationConfig"),
    "simulated_crowd": _reader("soft_label_audit.crowd.simulated:CrowdConfig"),
    "crowd_validity": _reader("soft_label_audit.crowd.validity:ValidityTargets"),
    "annotation_report": _reader("soft_label_audit.configs:AnnotationReport"),
    "evaluation": _reader("soft_label_audit.configs:EvaluationConfig"),
    "reporting": _reader("soft_label_audit.reporting.config:ReportingConfig"),
}
#: blocks read together with the study grid
GRID_BLOCKS = ("study", "training", "labels")
TOP_LEVEL = (*GRID_BLOCKS, *BLOCKS)


def _top(params: Mapping[str, Any], name: str) -> Any:
    if name not in params:
        raise p.ParameterError(f"{name} is missing", fix="add the block to conf/base")
    return params[name]


def read_parameters(params: Mapping[str, Any]) -> Parameters:
    """Read and check the whole tree (``conf/<env>`` merged over ``conf/base``, runtime
    ``--params`` included); raises :class:`~soft_label_audit.params.ParameterError`."""
    params = p.block("parameters", params)
    p.no_unknown("parameters", params, TOP_LEVEL)
    _top(params, "study")
    grid = _study(params)
    p.no_unknown("study", p.block("study", params["study"]), ("sources", "conditions"))
    _check_post_hoc(grid)
    blocks: dict[str, Any] = {"study": grid}
    training = _top(params, "training")
    blocks["training"] = TrainingBlock.from_params(training, grid.sources)
    blocks["labels"] = LabelsConfig.from_params(_top(params, "labels"), training, grid.conditions)
    for name, read in BLOCKS.items():
        blocks[name] = read(_top(params, name))
    _check_across_blocks(blocks)
    return Parameters(blocks)


def _check_post_hoc(grid: Any) -> None:
    """A post-hoc condition (``targets.BUILDERS[c].post_hoc_of``) rescales its base condition's
    runs, so ``study.conditions`` must list the base too (the order does not matter)."""
    from soft_label_audit.targets import BUILDERS

    for i, condition in enumerate(grid.conditions):
        builder = BUILDERS.get(condition)  # an unknown condition is refused with labels
        base = None if builder is None else builder.post_hoc_of
        if base is not None and base not in grid.conditions:
            raise p.ParameterError(
                f"study.conditions[{i}] is {condition!r}, which rescales the runs of {base!r} "
                f"(post hoc, no training), but study.conditions lacks {base!r}",
                fix=f"add {base} to study.conditions, or drop {condition}",
            )


def _check_across_blocks(blocks: dict[str, Any]) -> None:
    """Rules that tie two blocks together."""
    grid = blocks["study"]
    # released rows that are not MNIST get ids from the offset upwards, one per row
    offset = blocks["annotation"].released.non_mnist_id_offset
    _pool_ids_clear_of(
        blocks["digits"].pool,
        range(offset, 2**63 - 1),
        f"the released non-MNIST ids (annotation.released.non_mnist_id_offset, {offset} up)",
    )
    study = blocks["digits"].study
    if study.from_votes:  # the vote file gives the sources and their items (hooks.StudyGridHook)
        return
    counts = study.n_per_source
    missing = [s for s in grid.sources if s not in counts]
    if missing:
        raise p.ParameterError(
            f"digits.study.n_per_source.{missing[0]} is missing: study.sources lists {missing[0]!r}",
            fix="give every source of study.sources its number of study items",
        )
    empty = [s for s in grid.sources if counts[s] == 0]
    if empty:
        raise p.ParameterError(
            f"digits.study.n_per_source.{empty[0]} is 0, which leaves source {empty[0]!r} of "
            "study.sources without study items",
            fix=f"give {empty[0]!r} study items, or drop it from study.sources",
        )


def base_block(dotted: str) -> Any:
    """A copy of one block of ``conf/base`` as its YAML writes it, for examples and tests that
    change a few settings of a complete block (``${globals:...}`` values filled in from
    ``conf/base/globals.yml``).

    >>> base_block("digits.figure")
    {'rows': 4, 'cols': 8}
    """
    import copy
    import re

    import yaml

    from soft_label_audit.grid import PROJECT_ROOT

    base = PROJECT_ROOT / "conf" / "base"
    tree: dict[str, Any] = {}
    for path in sorted(base.glob("parameters*.yml")):
        tree.update(yaml.safe_load(path.read_text()) or {})
    globals_ = yaml.safe_load((base / "globals.yml").read_text()) or {}

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        match = isinstance(value, str) and re.fullmatch(r"\$\{globals:([\w.]+)\}", value)
        if match:
            node: Any = globals_
            for key in match.group(1).split("."):
                node = node[key]
            return node
        return value

    node: Any = tree
    for key in dotted.split("."):
        node = node[key]
    return copy.deepcopy(resolve(node))
