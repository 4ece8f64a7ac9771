"""``DaskRunner``: the study's nodes as futures on a Dask cluster (Kedro's Dask deployment).

Follows the Dask page of Kedro's deployment documentation, on Kedro 1.7's
runner interface::

    kedro run --runner soft_label_audit.runner.DaskRunner
    kedro run --runner soft_label_audit.runner.DaskRunner --runner-params "address=tcp://HOST:8786"

* Every node is one ``distributed`` future whose arguments include the futures of the nodes it
  depends on, so the scheduler starts a node once its inputs exist and runs independent
  (source, condition) training nodes on different workers at the same time.
* The scheduler is ``address`` (``--runner-params``), else ``DASK_SCHEDULER_ADDRESS``; without
  either, a ``LocalCluster`` of ``n_workers`` processes (one thread each) on this machine.
* Nodes talk only through storage every worker sees: a dataset the sequential run holds in
  memory is saved through the catalog pattern ``dask_exchange.{name}`` (a pickle under the data
  root, conf/base/catalog_dask.yml); without that pattern the run is refused by name.
* The project's hooks (``settings.HOOKS``) are re-created on the worker for every node, and
  their ``after_context_created`` is replayed with the run's parameters. Plugin hooks from entry
  points (kedro-mlflow) stay on the driver: there, their ``before_node_run`` logs each node's
  parameters into the parent run, as under the sequential runner.
* MLflow: workers log to the driver's tracking URI (a tracking server URL when workers are
  remote) and under the driver's parent run, passed as ``MLFLOW_TRACKING_URI`` and
  :data:`soft_label_audit.tracking.PARENT_RUN_ENV`; artifact datasets log into that parent run.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kedro.io import MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import AbstractRunner
from kedro.runner.task import Task

if TYPE_CHECKING:
    from kedro.io import CatalogProtocol
    from kedro.pipeline.node import Node
    from pluggy import PluginManager

logger = logging.getLogger(__name__)

#: catalog pattern of the datasets that carry in-memory values between nodes on a cluster
EXCHANGE_PATTERN = "dask_exchange.{name}"
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


def _exchange_dataset(catalog: CatalogProtocol, name: str):
    """The ``dask_exchange`` dataset of ``name``, resolved through that pattern alone.

    Asking the catalog for ``dask_exchange.<name>`` is not enough: a namespaced name such as
    ``mnist.human_soft.test_metrics`` also matches a more specific project pattern
    (``{source}.{condition}.test_metrics``, declared as a MemoryDataset for its kedro-viz layer),
    and the catalog would hand back that MemoryDataset.
    """
    import copy

    from kedro.io.core import AbstractDataset

    resolver = getattr(catalog, "config_resolver", None)
    config = resolver._get_pattern_config(EXCHANGE_PATTERN) if resolver is not None else {}
    if not config:
        return None
    exchange_name = EXCHANGE_PATTERN.format(name=name)
    resolved = resolver._resolve_dataset_config(
        exchange_name, EXCHANGE_PATTERN, copy.deepcopy(config)
    )
    return AbstractDataset.from_config(exchange_name, resolved)


class DaskRunnerError(RuntimeError):
    """The pipeline cannot run on a Dask cluster as configured."""


@dataclass(frozen=True)
class _WorkerSetup:
    """What a worker needs to run a node as the driver would: picklable, sent with each task."""

    package_name: str | None
    project_path: str
    parameters: dict[str, Any]
    environ: dict[str, str] = field(default_factory=dict)


@dataclass
class _WorkerContext:
    """The part of ``KedroContext`` the project's ``after_context_created`` hooks read."""

    project_path: Path
    parameters: dict[str, Any]

    @property
    def config_loader(self) -> dict[str, Any]:
        return {"parameters": self.parameters}

    @property
    def params(self) -> dict[str, Any]:
        return self.parameters


def _configure_worker(package_name: str | None) -> None:
    from kedro.framework.project import PACKAGE_NAME, configure_project

    if package_name and PACKAGE_NAME != package_name:
        configure_project(package_name)  # a fresh worker process: settings and pipelines


def _worker_hook_manager(setup: _WorkerSetup) -> PluginManager:
    """The project's hooks, fresh for this node, with the run's context replayed."""
    from kedro.framework.hooks.manager import _create_hook_manager, _register_hooks
    from kedro.framework.project import settings

    hook_manager = _create_hook_manager()
    _register_hooks(hook_manager, [copy.deepcopy(hook) for hook in settings.HOOKS])
    context = _WorkerContext(Path(setup.project_path), copy.deepcopy(setup.parameters))
    hook_manager.hook.after_context_created(context=context)
    return hook_manager


def _run_node(
    node: Node,
    catalog: CatalogProtocol,
    is_async: bool,
    run_id: str | None,
    setup: _WorkerSetup,
    *dependencies: Node,
) -> Node:
    """Run ``node`` on a worker; ``dependencies`` are upstream futures, there only for ordering."""
    _configure_worker(setup.package_name)
    os.environ.update(setup.environ)
    if "MLFLOW_TRACKING_URI" in setup.environ:
        import mlflow

        mlflow.set_tracking_uri(setup.environ["MLFLOW_TRACKING_URI"])
    hook_manager = _worker_hook_manager(setup)
    return Task(
        node=node, catalog=catalog, is_async=is_async, hook_manager=hook_manager, run_id=run_id
    ).execute()


class DaskRunner(AbstractRunner):
    """Runs each node of the pipeline as a Dask future on a ``distributed`` cluster."""

    def __init__(
        self,
        is_async: bool = False,
        address: str | None = None,
        n_workers: int | str = 2,
        threads_per_worker: int | str = 1,
    ):
        """
        Args:
            is_async: load and save a node's datasets with threads (as Kedro's runners).
            address: the scheduler, e.g. ``tcp://10.0.0.5:8786``; by default
                ``DASK_SCHEDULER_ADDRESS``.
            n_workers, threads_per_worker: size of the ``LocalCluster`` made when no scheduler is
                given (one thread per worker: each node already uses the worker's cores).
        """
        super().__init__(is_async=is_async)
        self._address = address or os.environ.get(SCHEDULER_ENV) or None
        self._n_workers = int(n_workers)
        self._threads = int(threads_per_worker)
        if self._n_workers < 1 or self._threads < 1:
            raise ValueError(
                f"DaskRunner: n_workers and threads_per_worker must be >= 1, got "
                f"{self._n_workers} and {self._threads}"
            )

    def _get_executor(self, max_workers: int) -> None:
        return None  # the Dask client schedules; _run does not use an executor

    # ------------------------------------------------------------------ driver side

    def _client(self):
        import dask
        from distributed import Client, LocalCluster

        # a busy scheduler (seen: 30 s unresponsive on a shared 2-core machine) must not drop the
        # client, which loses every future of the run; DASK_DISTRIBUTED__COMM__TIMEOUTS__TCP wins
        if "DASK_DISTRIBUTED__COMM__TIMEOUTS__TCP" not in os.environ:
            dask.config.set({"distributed.comm.timeouts.tcp": "300s"})

        if self._address:
            self._logger.info("DaskRunner: connecting to the scheduler at %s", self._address)
            return Client(self._address), None
        # the in-process scheduler logs each closed connection with a traceback at INFO
        logging.getLogger("distributed.batched").setLevel(logging.WARNING)
        cluster = LocalCluster(
            n_workers=self._n_workers,
            threads_per_worker=self._threads,
            processes=True,
            dashboard_address=None,
        )
        self._logger.info(
            "DaskRunner: no scheduler given (address or %s); a LocalCluster of %d worker processes",
            SCHEDULER_ENV,
            self._n_workers,
        )
        return Client(cluster), cluster

    def _persist_memory_datasets(self, pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        """Swap every in-memory dataset a node writes for its ``dask_exchange`` dataset.

        In-memory pipeline inputs (parameters among them) travel with the pickled catalog.
        """
        in_memory = sorted(
            name
            for name in pipeline.datasets() - pipeline.inputs()
            if isinstance(catalog.get(name, fallback_to_runtime_pattern=True), MemoryDataset)
        )
        missing = []
        catalog_logger = logging.getLogger("kedro.io.data_catalog")
        level = catalog_logger.level
        catalog_logger.setLevel(logging.ERROR)  # not one "Replacing dataset" warning per swap
        try:
            for name in in_memory:
                exchange = _exchange_dataset(catalog, name)
                if exchange is None or isinstance(exchange, MemoryDataset):
                    missing.append(name)
                else:
                    catalog[name] = exchange
        finally:
            catalog_logger.setLevel(level)
        if in_memory and not missing:
            self._logger.info(
                "DaskRunner: %d in-memory dataset(s) go through %s",
                len(in_memory),
                EXCHANGE_PATTERN,
            )
        if missing:
            raise DaskRunnerError(
                f"DaskRunner: {len(missing)} dataset(s) would stay in one process's memory, which "
                f"other workers cannot read: {missing[:8]}{' ...' if len(missing) > 8 else ''}. "
                "Give them catalog entries on shared storage, or add the pattern "
                f'"{EXCHANGE_PATTERN}" (see conf/base/catalog_dask.yml).'
            )

    @staticmethod
    def _mlflow_environ(catalog: CatalogProtocol) -> dict[str, str]:
        """Tracking URI and parent run for the workers; artifact datasets log into that run."""
        import mlflow

        from soft_label_audit.tracking import PARENT_RUN_ENV

        environ = {"MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()}
        parent = mlflow.active_run()  # kedro-mlflow's before_pipeline_run started it
        if parent is None:
            return environ
        environ[PARENT_RUN_ENV] = parent.info.run_id
        for name in catalog.keys():
            dataset = catalog.get(name)
            if (
                getattr(dataset, "_logging_activated", False)
                and getattr(dataset, "run_id", 1) is None
            ):
                dataset.run_id = parent.info.run_id  # no active run on a worker
        return environ

    @staticmethod
    def _plugin_before_node_run(hook_manager, catalog: CatalogProtocol, node: Node, run_id) -> None:
        """Entry-point plugins' ``before_node_run`` on the driver, with the node's parameters."""
        from kedro.framework.project import settings
        from pluggy import PluginManager

        if not isinstance(hook_manager, PluginManager):
            return  # kedro's _NullPluginManager: a runner used without a session
        project_hooks = [h for h in hook_manager.get_plugins() if h in set(settings.HOOKS)]
        caller = hook_manager.subset_hook_caller("before_node_run", remove_plugins=project_hooks)
        names = [n for n in node.inputs if n.startswith("params:") or n == "parameters"]
        inputs = {n: catalog.get(n).load() for n in names}  # catalog.load logs every call
        caller(node=node, catalog=catalog, inputs=inputs, is_async=False, run_id=run_id)

    def _run(
        self,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        hook_manager: PluginManager | None = None,
        run_id: str | None = None,
    ) -> None:
        from distributed import as_completed
        from kedro.framework.project import PACKAGE_NAME

        self._persist_memory_datasets(pipeline, catalog)
        parameters = catalog.load("parameters") if "parameters" in catalog else {}
        setup = _WorkerSetup(
            PACKAGE_NAME, str(Path.cwd()), parameters, self._mlflow_environ(catalog)
        )
        nodes = pipeline.nodes
        dependencies = pipeline.node_dependencies
        client, cluster = self._client()
        done_nodes: set[Node] = set()
        futures = {}
        try:
            # sent to the workers once, not with every task: a big graph stalls the scheduler
            shared_catalog, shared_setup = client.scatter([catalog, setup], hash=False)
            for node in nodes:  # topological order: a node's upstream futures already exist
                upstream = [futures[dep] for dep in dependencies[node]]
                futures[node] = client.submit(
                    _run_node,
                    node,
                    shared_catalog,
                    self._is_async,
                    run_id,
                    shared_setup,
                    *upstream,
                    key=f"{node.name}-{run_id}",
                    pure=False,
                )
            for node in nodes:  # while the workers compute (one MLflow call per parameter)
                self._plugin_before_node_run(hook_manager, catalog, node, run_id)
            for finished, result in as_completed(
                futures.values(), with_results=True, raise_errors=False
            ):
                if finished.status != "finished":  # erred, or cancelled by the scheduler
                    failed = next(n for n, f in futures.items() if f is finished)
                    self._logger.error("Node %s %s on Dask", failed.name, finished.status)
                    self._suggest_resume_scenario(pipeline, done_nodes, catalog)
                    finished.result()  # re-raises the worker's exception here
                done_nodes.add(result)
                self._logger.info("Completed node: %s", result.name)
                self._logger.info("Completed %d out of %d tasks", len(done_nodes), len(nodes))
        finally:
            for future in futures.values():
                future.cancel()
            client.close()
            if cluster is not None:
                cluster.close()
