"""The command line: an unknown environment is refused by name; user errors print message and
fix in a few lines and exit 2; a bug keeps its traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from soft_label_audit.cli import check_environment, describe_user_error
from soft_label_audit.crowd.validation import AnnotationValidationError
from soft_label_audit.errors import UnknownEnvironmentError
from tests.conftest import PROJECT_ROOT
from tests.helpers import kedro_cli, make_project_copy


def test_unknown_environment_is_refused_listing_the_environments():
    with pytest.raises(UnknownEnvironmentError) as info:
        check_environment(PROJECT_ROOT / "conf", "nosuch")
    assert "'nosuch'" in str(info.value)
    assert "base" in info.value.fix and "test" in info.value.fix and "released" in info.value.fix
    check_environment(PROJECT_ROOT / "conf", "test")
    check_environment(PROJECT_ROOT / "conf", None)


def test_user_errors_are_found_through_their_causes_and_bugs_are_not():
    try:
        try:
            raise AnnotationValidationError(
                "votes.csv: rule 'choice in 0..9 or none', 2 offending row(s)"
            )
        except ValueError as inner:
            raise RuntimeError("Failed while loading data from dataset annotation_input") from inner
    except RuntimeError as outer:
        message, fix = describe_user_error(outer)
    assert "votes.csv" in message and fix
    assert describe_user_error(ZeroDivisionError("division by zero")) is None
    assert describe_user_error(KeyError("h_3")) is None


def test_a_missing_stage_output_names_the_stage_and_command_that_make_it():
    """A file a stage makes, gone during the run: the producing pipeline, not "check the path"."""
    from kedro.io import DatasetError

    from soft_label_audit import provenance

    path = "/p/data/test/07_model_output/mnist/human_soft/curves.parquet"
    provenance.INPUT_FILES[path] = (
        "mnist.human_soft.curves",
        "training",
        "kedro run --env test --pipeline training",
    )
    try:
        try:
            raise FileNotFoundError(path)
        except FileNotFoundError as inner:
            raise DatasetError(f"Failed while loading data from dataset ...\n{path}") from inner
    except DatasetError as outer:
        message, fix = describe_user_error(outer)
    finally:
        provenance.INPUT_FILES.clear()
    assert (
        message
        == f"mnist.human_soft.curves ({path}) does not exist; the training pipeline makes it"
    )
    assert fix == "run `kedro run --env test --pipeline training` first"
    message, fix = describe_user_error(FileNotFoundError("votes.csv"))  # a file the user passed
    assert message == "votes.csv" and "pass the file with --params" in fix


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project_copy(tmp_path_factory.mktemp("cli_project"))


CASES = {
    # every environment folder of conf/, listed in order
    "unknown_env": (
        ["--env", "nosuch"],
        [
            "'nosuch'",
            ", ".join(sorted(p.name for p in (PROJECT_ROOT / "conf").iterdir() if p.is_dir())),
        ],
    ),
    "unknown_pipeline": (
        ["--env", "test", "--pipelines", "nosuch"],
        ["'nosuch'", "annotation, digits"],
    ),
    "unknown_condition": (
        ["--env", "test", "--params", "study.conditions=nosuch"],
        ["'nosuch'", "human_soft"],
    ),
    # nothing has run in the project: evaluation names the stage that makes its inputs
    "missing_upstream": (
        ["--env", "test", "--pipeline", "evaluation"],
        [
            "mnist.generator_soft.curves, made by the training pipeline",
            "Fix: run `kedro run --env test --pipelines digits,annotation,labels,training` first",
        ],
    ),
    "missing_file": (
        [
            "--env",
            "test",
            "--pipelines",
            "annotation",
            "--params",
            "annotation.source=raw_file,annotation.raw_path=nowhere/votes.csv",
        ],
        ["nowhere/votes.csv", "does not exist"],
    ),
    "empty_file": (
        [
            "--env",
            "test",
            "--pipelines",
            "annotation",
            "--params",
            "annotation.source=raw_file,annotation.raw_path=empty.csv",
        ],
        ["empty.csv is empty", "item_id, annotator_id, choice, unsure"],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_a_user_error_ends_in_a_few_lines_naming_the_problem(project, case):
    (project / "empty.csv").write_text("")
    args, expected = CASES[case]
    result = kedro_cli(project, "run", *args, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert len(output.splitlines()) < 20, output
    assert "Traceback" not in output and "Error: " in output and "Fix: " in output
    for text in expected:
        assert text in output, output
