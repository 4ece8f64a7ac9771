"""Running a pipeline slice in memory and keeping every output for inspection."""

from __future__ import annotations

from typing import Any

from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner


class KeptMemoryDataset(MemoryDataset):
    """A MemoryDataset that the runner cannot release, so tests can read intermediates.

    Figures (and dicts of figures) are held by reference, as the project's catalog holds them
    (``copy_mode: assign``, or a file): a deep copy of a Matplotlib figure costs ~0.1 s, and the
    default copy mode would deep-copy each one on every save and load.
    """

    def save(self, data: Any) -> None:
        if self._copy_mode is None and _holds_figures(data):
            self._copy_mode = "assign"
        super().save(data)

    def _release(self) -> None:
        pass


def _holds_figures(data: Any) -> bool:
    """A Matplotlib figure, or a non-empty dict of them (nested dicts too)."""
    import sys

    if "matplotlib.figure" not in sys.modules:  # nothing made a figure
        return False
    from matplotlib.figure import Figure

    if isinstance(data, dict):
        return bool(data) and all(_holds_figures(value) for value in data.values())
    return isinstance(data, Figure)


def run_in_memory(pipeline: Pipeline, inputs: dict[str, Any]) -> dict[str, Any]:
    """Run ``pipeline`` with ``inputs`` (datasets and ``params:`` entries) and return every dataset."""
    datasets = {name: KeptMemoryDataset(value) for name, value in inputs.items()}
    for name in pipeline.datasets():
        datasets.setdefault(name, KeptMemoryDataset())
    catalog = DataCatalog(datasets)
    SequentialRunner().run(pipeline, catalog)
    return {
        name: catalog.load(name) for name in pipeline.datasets() if catalog[name]._data is not None
    }


def make_project_copy(root, mnist_raw_dir=None):
    """pyproject, conf (without local) and optionally the verified idx files in ``root``.

    The package itself is installed (editable) in the environment, so ``src`` stays empty;
    nothing in the repository's own ``data/`` or ``mlflow.db`` is touched by runs there.
    """
    import shutil
    from pathlib import Path

    from tests.conftest import PROJECT_ROOT

    root = Path(root)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    shutil.copy(PROJECT_ROOT / ".telemetry", root)
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()
    if mnist_raw_dir is not None:
        shutil.copytree(mnist_raw_dir, root / "data" / "01_raw" / "MNIST" / "raw")
    return root


def kedro_cli(project, *args: str, timeout: int = 600):
    """``python -m kedro ARGS`` in ``project``, as CI would run it (no telemetry, no progress bars)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "CI": "true", "MPLBACKEND": "Agg"}
    env.pop("KEDRO_ENV", None)
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def config_loader(project, env: str = "test", runtime_params: dict | None = None):
    """The project's config loader (``settings.CONFIG_LOADER_CLASS`` and its arguments), as
    ``kedro run --env ENV --params ...`` would make it."""
    from soft_label_audit.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS

    return CONFIG_LOADER_CLASS(
        str(project / "conf"), **CONFIG_LOADER_ARGS, env=env, runtime_params=runtime_params
    )


def data_root(project, env: str = "test", runtime_params: dict | None = None):
    """Where ``kedro run --env ENV [--params ...]`` writes in ``project`` (each environment, and
    each annotation source other than the environment's own, has its own root)."""
    return project / config_loader(project, env, runtime_params)["globals"]["data_root"]


def write_provenance(project, stages, env: str = "test", runtime_params: dict | None = None):
    """Records (soft_label_audit.provenance) for ``stages`` under the data root of ``env``, as
    a run with the project's settings would leave them: for tests that put stand-in outputs of
    those stages where a later stage reads them."""
    from soft_label_audit import provenance
    from soft_label_audit.pipeline_registry import register_pipelines

    loader = config_loader(project, env, runtime_params)
    graph = provenance.stage_graph(register_pipelines())
    expected = provenance.expected_records(graph, loader["parameters"])
    root = data_root(project, env, runtime_params)
    for stage in stages:
        provenance.write_record(root, expected[stage])


def training_inputs(project, pipelines: str = "training,evaluation,reporting"):
    """The files (relative to ``project``) that the stages ``pipelines`` (comma-separated) read
    and none of their nodes writes, found through the project's pipelines and catalog: what a
    project needs from an earlier run to run those stages alone."""
    import importlib
    from pathlib import Path

    from kedro.io import DataCatalog
    from kedro.pipeline import Pipeline

    from soft_label_audit.grid import StudyGrid

    grid = StudyGrid.from_params(config_loader(project)["parameters"])
    pipeline = sum(
        (
            importlib.import_module(f"soft_label_audit.pipelines.{name}").create_pipeline(grid=grid)
            for name in pipelines.split(",")
        ),
        Pipeline([]),
    )
    catalog = DataCatalog.from_config(config_loader(project)["catalog"])
    return [
        Path(str(catalog.get(name, fallback_to_runtime_pattern=True)._describe()["filepath"]))
        for name in sorted(pipeline.inputs())
        if not name.startswith("params:") and name != "parameters"
    ]
