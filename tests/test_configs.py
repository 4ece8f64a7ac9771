"""Every configuration block read by a typed class: a bad value stops with the one template,
``<path> must be <rule>, got <value>`` (soft_label_audit.params), naming the parameter path."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from soft_label_audit.configs import (
    EVALUATION_EXAMPLE,
    AnnotationConfig,
    AnnotationReport,
    EvaluationConfig,
    TrainingConfig,
    none_slot,
)
from soft_label_audit.crowd.aggregation import DawidSkeneSoft
from soft_label_audit.crowd.released import ReleasedConfig
from soft_label_audit.crowd.statistics import ModeSupport
from soft_label_audit.grid import StudyGrid
from soft_label_audit.parameter_tree import read_teacher
from soft_label_audit.params import ParameterError
from soft_label_audit.reporting.config import ReportingConfig
from soft_label_audit.targets import BUILDERS, PermutationOptions, TargetInputs, build_targets
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
    assert ReportingConfig.from_params(base["reporting"]).bootstrap.n_resamples == 2000
    training = TrainingConfig.from_params(base["training"], "synthetic")
    assert training.train.epochs == base["training"]["epochs"]["synthetic"]
    teacher = read_teacher(base["labels"]["teacher"], base["training"], "teacher")
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
            "evaluation.calibration_floor.quantile must be a number in (0, 1), got 95",
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
    reader = {"evaluation": EvaluationConfig, "reporting": ReportingConfig}[block]
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
        read_teacher(block, base["training"], teacher)
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
            lambda base: ReportingConfig.from_params(
                {**base["reporting"], "cartography_reference": "human"}
            ),
            "reporting.cartography_reference must be one of 'original', 'human_mode', got 'human'",
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
    assert none_slot(base["labels"]["none_slot"]) == "spread"
    assert AnnotationReport.from_params(base["annotation_report"]).n_disputed == 24
    assert StudyGrid.from_params(base).sources == ("mnist", "synthetic")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "source",
            "crowd",
            "annotation.source must be one of 'simulated', 'released', 'raw_file', got 'crowd'",
        ),
        ("raw_path", "", "annotation.raw_path must be a non-empty string, got ''"),
        ("released_path", None, "annotation.released_path must be a non-empty string, got None"),
        ("rules", [], "annotation.rules must be a non-empty list of aggregation rules, got []"),
        (
            "rules",
            ["vote_share", "majority"],
            "annotation.rules[1] must be one of 'vote_share', 'vote_share_yes_only', "
            "'vote_share_unsure_to_none', 'dawid_skene', got 'majority'",
        ),
        (
            "aggregation",
            "vote_share_yes_only",
            "annotation.aggregation must be one of 'vote_share', 'vote_share_unsure_to_none', "
            "got 'vote_share_yes_only'",
        ),
        (
            "mode_support.min_vote_share",
            2,
            "annotation.mode_support.min_vote_share must be a number in [0, 1], got 2",
        ),
        (
            "mode_support.min_sure_votes",
            1.5,
            "annotation.mode_support.min_sure_votes must be a non-negative integer, got 1.5",
        ),
        (
            "dawid_skene.n_iter",
            0,
            "annotation.dawid_skene.n_iter must be a positive integer, got 0",
        ),
        ("dawid_skene.tol", -1e-5, "annotation.dawid_skene.tol must be a number > 0, got -1e-05"),
        (
            "dawid_skene.min_median_votes_per_annotator",
            0,
            "annotation.dawid_skene.min_median_votes_per_annotator must be a number >= 1, got 0",
        ),
        (
            "require_votes_for_all_study_items",
            "yes",
            "annotation.require_votes_for_all_study_items must be true or false, got 'yes'",
        ),
        (
            "soft_label_tolerance",
            0,
            "annotation.soft_label_tolerance must be a number > 0, got 0",
        ),
    ],
)
def test_annotation_values_are_checked(base, key, value, message):
    annotation = _set(base, "annotation.rules", ["vote_share", "vote_share_unsure_to_none"])
    annotation = _set(annotation, f"annotation.{key}", value)["annotation"]
    with pytest.raises(ParameterError) as info:
        AnnotationConfig.from_params(annotation)
    assert str(info.value).splitlines()[0] == message


def test_the_annotation_block_reads_cleanly(base):
    config = AnnotationConfig.from_params(base["annotation"])
    assert config.source == "simulated" and config.chosen_rule == "vote_share"
    assert config.mode_support == ModeSupport(min_vote_share=0.5, min_sure_votes=3)
    assert (config.dawid_skene.n_iter, config.dawid_skene.tol) == (100, 1e-5)
    # Dawid-Skene needs a vote per row of each annotator's 11 x 11 confusion matrix
    assert config.dawid_skene.min_median_votes_per_annotator == 11
    assert config.dawid_skene.min_median_votes_per_item == 3
    assert config.require_votes_for_all_study_items is True
    assert config.released == ReleasedConfig.from_params(base["annotation"])
    released = AnnotationConfig.from_params({**base["annotation"], "source": "released"})
    assert released.chosen_rule == "released:soft_label"


@pytest.mark.parametrize(
    ("key", "read"),
    [
        ("annotation", AnnotationConfig.from_params),
        ("annotation.mode_support", ModeSupport.from_params),
        ("annotation.dawid_skene", DawidSkeneSoft.from_params),
        ("annotation.released", lambda block: ReleasedConfig.from_params({"released": block})),
    ],
)
def test_annotation_blocks_refuse_unknown_settings(base, key, read):
    block = _set(base, f"{key}.min_votes", 3)
    for part in key.split("."):
        block = block[part]
    with pytest.raises(ParameterError, match=rf"^{key} has unknown settings \['min_votes'\]"):
        read(block)


@pytest.mark.parametrize(
    ("condition", "options", "message"),
    [
        (
            "human_soft_permuted",
            {"band_edges": [1e-6, 0.5, 1.0], "seed": -1},
            "labels.conditions.human_soft_permuted.seed must be a non-negative integer, got -1",
        ),
        (
            "human_soft_permuted",
            {"band_edges": [0.5, 1e-6], "seed": 0},
            "labels.conditions.human_soft_permuted.band_edges must be a strictly ascending list "
            "of entropies (nats), got [0.5, 1e-06]",
        ),
        (
            "human_soft_permuted",
            {"band_edges": [1e-6, "high"], "seed": 0},
            "labels.conditions.human_soft_permuted.band_edges[1] must be a number >= 0, got 'high'",
        ),
        (
            "human_soft_permuted",
            {"band_edges": [0.5], "seed": 0, "seeds": 1},
            "labels.conditions.human_soft_permuted has unknown settings ['seeds']; "
            "known: ['band_edges', 'seed']",
        ),
        (
            "label_smoothing_matched",
            {"epsilon": 0.1},
            "labels.conditions.label_smoothing_matched has unknown settings ['epsilon']; known: []",
        ),
    ],
)
def test_condition_options_are_checked(condition, options, message):
    h = np.zeros((2, 11))
    h[:, 3] = 1.0
    inputs = TargetInputs(original=[3, 3], human=h, mode=[3, 3])
    with pytest.raises(ParameterError) as info:
        build_targets(condition, inputs, options)
    assert str(info.value).splitlines()[0] == message


def test_the_configured_condition_options_read_cleanly(base):
    conditions = base["labels"]["conditions"]
    assert set(conditions) == set(BUILDERS)
    for condition, options in conditions.items():
        path = f"labels.conditions.{condition}"
        assert BUILDERS[condition].options.from_params(options, path) is not None
    permuted = PermutationOptions.from_params(conditions["human_soft_permuted"])
    assert permuted == PermutationOptions(band_edges=(1e-6, 0.5, 1.0), seed=0)
