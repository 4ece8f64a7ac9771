"""The project's config loader: a run on another annotation source, or on another draw of the
simulated crowd, gets its own data root.

Each environment's ``globals.yml`` names its ``data_root``, its ``mlflow_experiment`` and its
own ``annotation.source`` (conf/base: the simulated crowd under ``data``; conf/released: the
released soft labels under ``data/released``). A run that picks another source on the command
line, e.g. ``kedro run --params "annotation.source=raw_file,annotation.raw_path=FILE"``, writes
under ``<data_root>/<source>`` (``data/raw_file``, ``data/test/raw_file``) and logs into the
experiment ``<mlflow_experiment>_<source>``, so its outputs never overwrite (nor mix with) those
of the environment's own source.

Likewise a run whose ``--params`` set ``simulated_crowd.seed`` to another value than the
environment's own (its merged parameters: ``conf/base``, then the environment's folder; 7 in
``conf/base``), e.g. ``kedro run --params simulated_crowd.seed=8``, is another draw of the
simulated crowd: it writes under ``<data_root>/crowd_seed_<S>`` (``data/crowd_seed_8``,
``data/test/crowd_seed_8``) and logs into ``<mlflow_experiment>_crowd_seed_<S>``. With another
source too, the seed's folder comes after the source's (``data/released/simulated/crowd_seed_8``
for ``--env released --params "annotation.source=simulated,simulated_crowd.seed=8"``). The seed
draws the simulated crowd only, so another seed with a source that is not ``simulated`` is
refused (:class:`CrowdSeedError`): its outputs would be the same study under another name. The
environment's own seed given on the command line changes nothing (same root, same experiment).

Why here and not in ``globals.yml``: Kedro does not let ``globals`` read ``runtime_params``
(the ``--params`` of the run), and every catalog entry and ``mlflow.yml`` read
``${globals:data_root}`` and ``${globals:mlflow_experiment}``; choosing the root where the
globals are loaded keeps those entries as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from soft_label_audit.crowd.sources import SimulatedCrowd
from soft_label_audit.errors import UserError

#: the source whose votes ``simulated_crowd.seed`` draws
SIMULATED = SimulatedCrowd.name


class CrowdSeedError(UserError):
    """``simulated_crowd.seed`` on the command line where it cannot name a crowd draw."""


def runtime_source(runtime_params: Mapping[str, Any] | None) -> str | None:
    """``annotation.source`` of the run's ``--params`` (nested or dotted), else None."""
    params = dict(runtime_params or {})
    if "annotation.source" in params:
        return str(params["annotation.source"])
    annotation = params.get("annotation")
    if isinstance(annotation, Mapping) and "source" in annotation:
        return str(annotation["source"])
    return None


def runtime_crowd_seed(runtime_params: Mapping[str, Any] | None) -> Any:
    """``simulated_crowd.seed`` of the run's ``--params`` (nested or dotted), else None.

    >>> runtime_crowd_seed({"simulated_crowd": {"seed": 8}}), runtime_crowd_seed(
    ...     {"simulated_crowd.seed": 9}), runtime_crowd_seed({"annotation": {"source": "x"}})
    (8, 9, None)
    """
    params = dict(runtime_params or {})
    if "simulated_crowd.seed" in params:
        return params["simulated_crowd.seed"]
    crowd = params.get("simulated_crowd")
    if isinstance(crowd, Mapping) and "seed" in crowd:
        return crowd["seed"]
    return None


def _as_seed(value: Any) -> int | None:
    """``value`` as a crowd seed (an integer, or its digits), else None (the parameter checks
    of the run then say what is wrong with it)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
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


def for_crowd_seed(
    globals_: dict[str, Any], seed: Any, own_seed: Any, source: str | None = None
) -> dict[str, Any]:
    """``globals_`` with the data root and MLflow experiment of the crowd draw ``seed``, when
    it is not the environment's ``own_seed`` (``source``: the run's annotation source, by
    default the environment's own). Call it after :func:`for_source`.

    >>> g = {"data_root": "data", "mlflow_experiment": "sla", "annotation": {"source": "simulated"}}
    >>> for_crowd_seed(g, 8, 7)["data_root"], for_crowd_seed(g, "8", 7)["mlflow_experiment"]
    ('data/crowd_seed_8', 'sla_crowd_seed_8')
    >>> for_crowd_seed(g, 7, 7) == g == for_crowd_seed(g, None, 7)
    True
    >>> both = for_crowd_seed(for_source(g, "raw_file"), 8, 7, "simulated")
    >>> both["data_root"], both["mlflow_experiment"]
    ('data/raw_file/crowd_seed_8', 'sla_raw_file_crowd_seed_8')
    >>> for_crowd_seed(g, 8, 7, "raw_file")
    Traceback (most recent call last):
    ...
    soft_label_audit.config_loader.CrowdSeedError: simulated_crowd.seed=8 draws the ... 'raw_file'
    """
    if seed is None or "data_root" not in globals_:
        return globals_
    chosen_seed, own = _as_seed(seed), _as_seed(own_seed)
    if chosen_seed is None or chosen_seed == own:
        return globals_
    source = source if source is not None else (globals_.get("annotation") or {}).get("source")
    if source is not None and source != SIMULATED:
        raise CrowdSeedError(
            f"simulated_crowd.seed={chosen_seed} draws the simulated crowd, but this run's "
            f"annotation.source is {source!r}",
            "leave simulated_crowd.seed out of --params (it changes nothing on recorded votes), "
            "or add annotation.source=simulated",
        )
    chosen = dict(globals_)
    chosen["data_root"] = f"{str(globals_['data_root']).rstrip('/')}/crowd_seed_{chosen_seed}"
    if "mlflow_experiment" in globals_:
        chosen["mlflow_experiment"] = f"{globals_['mlflow_experiment']}_crowd_seed_{chosen_seed}"
    return chosen


class SourceRootConfigLoader(OmegaConfigLoader):
    """:class:`~kedro.config.OmegaConfigLoader` whose ``globals`` follow the run's annotation
    source (:func:`for_source`) and crowd draw (:func:`for_crowd_seed`); everything else is
    Kedro's."""

    def __getitem__(self, key: str) -> dict[str, Any]:
        value = super().__getitem__(key)
        if key == "globals":
            source = runtime_source(self.runtime_params)
            chosen = for_source(value, source)
            seed = runtime_crowd_seed(self.runtime_params)
            if seed is None:
                return chosen
            return for_crowd_seed(chosen, seed, self.own_crowd_seed(), source)
        return value

    def own_crowd_seed(self) -> Any:
        """The environment's own ``simulated_crowd.seed``: the environment folder's value, else
        conf/base's (the parameters merge key by key), without the run's ``--params``. Read from
        the files as written, since the parameters interpolate the globals being loaded; a seed
        that is not an integer there is refused."""
        base, env, *_ = self._read_raw_config("parameters")
        own = None
        for configs in (base, env):
            for config in configs.values():
                value = OmegaConf.select(config, "simulated_crowd.seed", default=None)
                if value is not None:
                    own = value
        if own is not None and _as_seed(own) is None:
            raise CrowdSeedError(
                f"simulated_crowd.seed of the environment is {own!r}, not an integer",
                "write the environment's simulated_crowd.seed as an integer",
            )
        return own
