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


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project_copy(tmp_path_factory.mktemp("cli_project"))


CASES = {
    "unknown_env": (["--env", "nosuch"], ["'nosuch'", "base, local, released, test"]),
    "unknown_pipeline": (
        ["--env", "test", "--pipelines", "nosuch"],
        ["'nosuch'", "annotation, digits"],
    ),
    "unknown_condition": (
        ["--env", "test", "--params", "study.conditions=nosuch"],
        ["'nosuch'", "human_soft"],
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
