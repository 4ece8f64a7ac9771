"""Every configuration block read by a typed class: a bad value stops with the one template,
``<path> must be <rule>, got <value>`` (soft_label_audit.params), naming the parameter path."""

from __future__ import annotations

import copy

import pytest

from soft_label_audit.configs import (
    EVALUATION_EXAMPLE,
    AnnotationReport,
    ComparisonConfig,
    EvaluationConfig,
    TrainingConfig,
    none_slot,
)
from soft_label_audit.crowd.released import ReleasedConfig
from soft_label_audit.grid import StudyGrid
from soft_label_audit.params import ParameterError
from soft_label_audit.trainer import TeacherConfig
from tests.conftest import PROJECT_ROOT
from tests.helpers import config_loader


@pytest.fixture(scope="module")
def base() -> dict:
    return copy.deepcopy(dict(config_loader(PROJECT_ROOT, "base")["parameters"]))


def _set(tree: dict, dotted: str, value) -> dict:
    tree = copy.deepcopy(tree)
    node = tree
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return tree


def test_the_configured_blocks_read_cleanly(base):
    evaluation = EvaluationConfig.from_params(base["evaluation"])
    assert evaluation == EvaluationConfig.from_params(EVALUATION_EXAMPLE)
    assert ComparisonConfig.from_params(base["reporting"]).n_resamples == 2000
    training = TrainingConfig.from_params(base["training"], "synthetic")
    assert training.train.epochs == base["training"]["epochs"]["synthetic"]
    teacher = TeacherConfig.from_params(base["labels"]["teacher"], "labels.teacher", ("k_folds",))
    assert teacher.k_folds == 5 and teacher.model.settings() == {"channels": [16, 32], "hidden": 64}
    assert ReleasedConfig.from_params(base["annotation"]).source_map["amnist"] == "synthetic"


@pytest.mark.parametrize(
    ("block", "key", "value", "message"),
    [
        ("evaluation", "n_bins", -3, "evaluation.n_bins must be a positive integer, got -3"),
        (
            "evaluation",
            "cartography.burn_in_fraction",
            1.0,
            "evaluation.cartography.burn_in_fraction must be a number in [0, 1), got 1.0",
        ),
        (
            "evaluation",
            "convergence.higher_is_better",
            "no",
            "evaluation.convergence.higher_is_better must be true or false, got 'no'",
        ),
        (
            "evaluation",
            "calibration_floor.quantile",
            95,
            "evaluation.calibration_floor.quantile must be a number in [0, 1], got 95",
        ),
        (
            "reporting",
            "bootstrap.n_resamples",
            0,
            "reporting.bootstrap.n_resamples must be a positive integer, got 0",
        ),
        (
            "reporting",
            "confidence",
            1.5,
            "reporting.confidence must be a number in (0, 1), got 1.5",
        ),
    ],
)
def test_evaluation_and_reporting_values_are_checked(base, block, key, value, message):
    reader = {"evaluation": EvaluationConfig, "reporting": ComparisonConfig}[block]
    with pytest.raises(ParameterError) as info:
        reader.from_params(_set(base, f"{block}.{key}", value)[block])
    assert str(info.value).splitlines()[0] == message


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("seeds", [0, -1], "training.seeds[1] must be a non-negative integer, got -1"),
        ("epochs.synthetic", 0, "training.epochs.synthetic must be a positive integer, got 0"),
        ("batch_size", 2.5, "training.batch_size must be a positive integer, got 2.5"),
        ("optimizer.lr", 0, "training.optimizer.lr must be a number > 0, got 0"),
        (
            "optimizer.name",
            "rmsprop",
            "training.optimizer.name must be one of 'adam', 'adamw', 'sgd', got 'rmsprop'",
        ),
        ("model.hidden", 0, "training.model.hidden must be a positive integer, got 0"),
        ("model.channels", [16], "training.model.channels must be two widths [c1, c2], got [16]"),
    ],
)
def test_training_values_are_checked(base, key, value, message):
    with pytest.raises(ParameterError) as info:
        TrainingConfig.from_params(_set(base, f"training.{key}", value)["training"], "synthetic")
    assert str(info.value).splitlines()[0] == message


@pytest.mark.parametrize(
    ("teacher", "needs", "key", "value", "message"),
    [
        (
            "teacher",
            ("k_folds",),
            "k_folds",
            1,
            "labels.teacher.k_folds must be an integer >= 2, got 1",
        ),
        (
            "teacher",
            ("k_folds",),
            "seed",
            "x",
            "labels.teacher.seed must be a non-negative integer, got 'x'",
        ),
        (
            "large_teacher",
            ("n_train", "n_val"),
            "n_train",
            0,
            "labels.large_teacher.n_train must be a positive integer, got 0",
        ),
        (
            "large_teacher",
            ("n_train", "n_val"),
            "epochs",
            -1,
            "labels.large_teacher.epochs must be a positive integer, got -1",
        ),
    ],
)
def test_teacher_values_are_checked(base, teacher, needs, key, value, message):
    block = _set(base, f"labels.{teacher}.{key}", value)["labels"][teacher]
    with pytest.raises(ParameterError) as info:
        TeacherConfig.from_params(block, f"labels.{teacher}", needs)
    assert str(info.value).splitlines()[0] == message


def test_released_annotation_values_are_checked(base):
    annotation = _set(base, "annotation.released.image_tolerance", -1)["annotation"]
    with pytest.raises(ParameterError) as info:
        ReleasedConfig.from_params(annotation)
    assert str(info.value).splitlines()[0] == (
        "annotation.released.image_tolerance must be a non-negative integer, got -1"
    )


@pytest.mark.parametrize(
    ("read", "message"),
    [
        (
            lambda base: none_slot("drop"),
            "labels.none_slot must be one of 'renormalise', 'spread', got 'drop'",
        ),
        (
            lambda base: AnnotationReport.from_params(
                {**base["annotation_report"], "n_disputed": 0}
            ),
            "annotation_report.n_disputed must be a positive integer, got 0",
        ),
        (
            lambda base: StudyGrid.from_params(_set(base, "study.sources", ["mnist", "mnist"])),
            "study.sources must be a list of distinct names, got ['mnist', 'mnist']",
        ),
        (
            lambda base: StudyGrid.from_params(_set(base, "study.conditions", ["human-soft"])),
            "study.conditions[0] must be a Python identifier, got 'human-soft'",
        ),
    ],
)
def test_labels_annotation_report_and_study_values_are_checked(base, read, message):
    with pytest.raises(ParameterError) as info:
        read(base)
    assert str(info.value).splitlines()[0] == message
    assert none_slot(base["labels"]["none_slot"]) == "renormalise"
    assert AnnotationReport.from_params(base["annotation_report"]).n_disputed == 24
    assert StudyGrid.from_params(base).sources == ("mnist", "synthetic")
