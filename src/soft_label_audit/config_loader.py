"""The project's config loader: a run on another annotation source gets its own data root.

Each environment's ``globals.yml`` names its ``data_root``, its ``mlflow_experiment`` and its
own ``annotation.source`` (conf/base: the simulated crowd under ``data``; conf/released: the
released soft labels under ``data/released``). A run that picks another source on the command
line, e.g. ``kedro run --params "annotation.source=raw_file,annotation.raw_path=FILE"``, writes
under ``<data_root>/<source>`` (``data/raw_file``, ``data/test/raw_file``) and logs into the
experiment ``<mlflow_experiment>_<source>``, so its outputs never overwrite (nor mix with) those
of the environment's own source.

Why here and not in ``globals.yml``: Kedro does not let ``globals`` read ``runtime_params``
(the ``--params`` of the run), and every catalog entry and ``mlflow.yml`` read
``${globals:data_root}`` and ``${globals:mlflow_experiment}``; choosing the root where the
globals are loaded keeps those entries as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.config import OmegaConfigLoader


def runtime_source(runtime_params: Mapping[str, Any] | None) -> str | None:
    """``annotation.source`` of the run's ``--params`` (nested or dotted), else None."""
    params = dict(runtime_params or {})
    if "annotation.source" in params:
        return str(params["annotation.source"])
    annotation = params.get("annotation")
    if isinstance(annotation, Mapping) and "source" in annotation:
        return str(annotation["source"])
    return None


def for_source(globals_: dict[str, Any], source: str | None) -> dict[str, Any]:
    """``globals_`` with the data root and MLflow experiment of ``source``.

    >>> g = {"data_root": "data", "mlflow_experiment": "sla", "annotation": {"source": "simulated"}}
    >>> for_source(g, "raw_file")["data_root"], for_source(g, "raw_file")["mlflow_experiment"]
    ('data/raw_file', 'sla_raw_file')
    >>> for_source(g, "simulated") == g == for_source(g, None)
    True
    """
    own = (globals_.get("annotation") or {}).get("source")
    if source is None or own is None or source == own or "data_root" not in globals_:
        return globals_
    chosen = dict(globals_)
    chosen["data_root"] = f"{str(globals_['data_root']).rstrip('/')}/{source}"
    if "mlflow_experiment" in globals_:
        chosen["mlflow_experiment"] = f"{globals_['mlflow_experiment']}_{source}"
    return chosen


class SourceRootConfigLoader(OmegaConfigLoader):
    """:class:`~kedro.config.OmegaConfigLoader` whose ``globals`` follow the run's annotation
    source (:func:`for_source`); everything else is Kedro's."""

    def __getitem__(self, key: str) -> dict[str, Any]:
        value = super().__getitem__(key)
        if key == "globals":
            return for_source(value, runtime_source(self.runtime_params))
        return value
