"""Project command line: Kedro's own ``kedro run``, with errors a person can read.

Kedro loads this module's ``cli`` group in place of its built-in project commands, so
``kedro run`` and ``python -m soft_label_audit`` take every option of Kedro's ``run``. Two things
are added around it:

* an unknown environment (``--env NAME`` or ``KEDRO_ENV``) is refused before anything starts,
  with the environments that ``conf/`` holds;
* a user error (bad annotation file, missing or empty file, unknown condition, pipeline or
  environment) ends with its message and the fix in a few lines and exit status 2. Any other
  exception is a bug and keeps its full traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click
from kedro.framework.cli.project import run as kedro_run

from soft_label_audit.errors import UnknownEnvironmentError, UserError

USER_ERROR_EXIT = 2
_UNKNOWN_PIPELINE = "Failed to find the pipeline named"


def environments(conf_dir: Path) -> list[str]:
    """The environments of a ``conf`` folder: its sub-folders (``base`` included)."""
    if not conf_dir.is_dir():
        return []
    return sorted(p.name for p in conf_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def check_environment(conf_dir: Path, env: str | None) -> None:
    """Raise :class:`UnknownEnvironmentError` unless ``env`` (if given) is a folder of ``conf_dir``."""
    if not env or (conf_dir / env).is_dir():
        return
    known = environments(conf_dir)
    raise UnknownEnvironmentError(
        f"unknown environment {env!r}: there is no folder {conf_dir.name}/{env}",
        f"use one of {', '.join(known) or '(none found)'}, e.g. `kedro run --env test`, "
        "or create the folder conf/" + env,
    )


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def describe_user_error(error: BaseException) -> tuple[str, str | None] | None:
    """(message, fix) when ``error`` (or what caused it) is a user's mistake, else None."""
    from soft_label_audit.crowd.validation import AnnotationValidationError
    from soft_label_audit.data_sources.mnist import MnistChecksumError

    for cause in _chain(error):
        if isinstance(cause, UserError):
            return str(cause), cause.fix
        if isinstance(cause, AnnotationValidationError):
            return str(cause), "correct the annotation file (or choose another with --params)"
        if isinstance(cause, MnistChecksumError):
            return str(
                cause
            ), "delete the MNIST idx files under data/01_raw/MNIST/raw to rebuild them"
        if isinstance(cause, FileNotFoundError):
            return _missing_file(cause)
        if isinstance(cause, ValueError) and str(cause).startswith(_UNKNOWN_PIPELINE):
            return _unknown_pipeline(str(cause))
    # Kedro's own message for a missing input file (the DatasetError names the dataset and path)
    first = str(error)
    if type(error).__name__ == "DatasetError" and "does not exist" in first:
        return first, "check the path, or run the pipeline that makes it first"
    return None


def _missing_file(error: FileNotFoundError) -> tuple[str, str]:
    """A missing file: an output of a stage (named, with the command that makes it), else a
    file the user passed."""
    from soft_label_audit.provenance import producer_of_file

    path = error.filename or str(error).strip("'")
    made = producer_of_file(str(path))
    if made is not None:
        dataset, stage, command = made
        return f"{dataset} ({path}) does not exist; the {stage} pipeline makes it", (
            f"run `{command}` first"
        )
    return str(error), "check the path, or pass the file with --params"


def _unknown_pipeline(message: str) -> tuple[str, str]:
    from kedro.framework.project import pipelines

    name = message.removeprefix(_UNKNOWN_PIPELINE).split(".")[0].strip(" '")
    try:
        known = sorted(pipelines)
    except Exception:  # registering the pipelines failed too: say what we can
        known = []
    return (
        f"unknown pipeline {name!r}",
        f"use one of the registered pipelines: {', '.join(known)}" if known else None,
    )


def report_user_error(message: str, fix: str | None) -> None:
    click.secho(f"Error: {message}", fg="red", err=True)
    if fix:
        click.echo(f"Fix: {fix}", err=True)


def _run(**kwargs):
    conf_source = kwargs.get("conf_source")
    conf_dir = Path(conf_source) if conf_source else Path.cwd() / "conf"
    try:
        check_environment(conf_dir, kwargs.get("env") or os.environ.get("KEDRO_ENV"))
        return kedro_run.callback(**kwargs)
    except Exception as error:
        described = describe_user_error(error)
        if described is None:
            raise
        report_user_error(*described)
        sys.exit(USER_ERROR_EXIT)


@click.group(name="soft_label_audit")
def cli() -> None:
    """Commands of the Soft-Label Audit project."""


cli.add_command(
    click.Command(
        name="run",
        params=list(kedro_run.params),
        callback=_run,
        help=kedro_run.help,
        short_help=kedro_run.short_help,
    )
)
