"""The study grid: which sources and label conditions become namespaced pipelines.

Kedro builds pipelines before nodes see parameters, and ``register_pipelines`` gets no
arguments (kedro-org/kedro#3093). The grid is therefore read from the ``study`` parameters
in two ways: :class:`~soft_label_audit.hooks.StudyGridHook` remembers the parameters of the
running context (so ``--env`` and ``--params`` count), and when no context was created
(unit tests, ``find_pipelines``) the ``study`` block is read from the YAML files of
``conf/base`` and of ``KEDRO_ENV``. That fallback deliberately avoids OmegaConfigLoader: each
loader re-registers OmegaConf's process-wide ``globals`` and ``runtime_params`` resolvers,
and a second loader would silently replace the running session's.
"""

from __future__ import annotations

import inspect
import os
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soft_label_audit import params as p

PROJECT_ROOT = Path(__file__).resolve().parents[2]

_remembered: dict[str, Any] | None = None


@dataclass(frozen=True)
class StudyGrid:
    """Sources and conditions of the study; each pair is one namespace ``source.condition``."""

    sources: tuple[str, ...]
    conditions: tuple[str, ...]

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> StudyGrid:
        """The ``study`` block: ``sources`` and ``conditions``, lists of distinct identifiers.

        >>> StudyGrid.from_params({"study": {"sources": ["mnist"], "conditions": ["human soft"]}})
        Traceback (most recent call last):
        ...
        soft_label_audit.params.ParameterError: study.conditions[0] must be a Python identifier, got 'human soft'
        """
        study = p.block("study", p.required("parameters", params, "study"))
        names = {}
        for key in ("sources", "conditions"):
            values = p.required("study", study, key)
            if not isinstance(values, (list, tuple)) or len(set(map(str, values))) != len(values):
                raise p.fail(f"study.{key}", "a list of distinct names", values)
            for i, name in enumerate(values):
                if not (isinstance(name, str) and name.isidentifier()):
                    raise p.fail(f"study.{key}[{i}]", "a Python identifier", name)
            names[key] = tuple(values)
        return cls(names["sources"], names["conditions"])

    def namespaces(self) -> list[tuple[str, str]]:
        """All (source, condition) pairs in a stable order."""
        return [(s, c) for s in self.sources for c in self.conditions]


def remember_parameters(params: dict[str, Any]) -> None:
    """Called by the grid hook once the run's context (env and runtime params) exists."""
    global _remembered
    _remembered = dict(params)


@contextmanager
def following(params: dict[str, Any]) -> Iterator[None]:
    """Inside the block the grid follows ``params`` (a script that builds the pipelines of a
    run it does not start, e.g. to compute that run's provenance records), then what it
    followed before."""
    global _remembered
    previous = _remembered
    remember_parameters(params)
    try:
        yield
    finally:
        _remembered = previous


def _study_on_disk() -> dict[str, Any]:
    """The ``study`` block of conf/base, overridden by the ``KEDRO_ENV`` (else ``local``) folder."""
    import yaml

    study: dict[str, Any] = {}
    for folder in ("base", os.environ.get("KEDRO_ENV") or "local"):
        for path in sorted((PROJECT_ROOT / "conf" / folder).glob("parameters*.yml")):
            study.update((yaml.safe_load(path.read_text()) or {}).get("study") or {})
    return {"study": study}


def _digits_study_on_disk() -> dict[str, Any]:
    """The ``digits.study`` block of conf/base, overridden by the ``KEDRO_ENV`` (else ``local``)
    folder (no OmegaConfigLoader, for the reason in the module docstring)."""
    import yaml

    study: dict[str, Any] = {}
    for folder in ("base", os.environ.get("KEDRO_ENV") or "local"):
        for path in sorted((PROJECT_ROOT / "conf" / folder).glob("parameters*.yml")):
            digits = (yaml.safe_load(path.read_text()) or {}).get("digits") or {}
            study.update(digits.get("study") or {})
    return study


def active_items_from() -> str:
    """``digits.study.items_from`` of the running session, else of the configuration on disk
    (``draw`` when neither says): the digits pipeline's study node follows it."""
    if _remembered is not None:
        study = (_remembered.get("digits") or {}).get("study") or {}
    else:
        study = _digits_study_on_disk()
    return str(study.get("items_from") or "draw")


def active_grid() -> StudyGrid:
    """The grid of the running session, else of the configuration on disk."""
    return StudyGrid.from_params(_remembered if _remembered is not None else _study_on_disk())


CELL_ARGUMENTS = ("source", "condition")


def bind_cell(func: Callable, source: str, condition: str) -> Callable:
    """``func`` with the grid cell's ``source`` and ``condition`` bound as keyword arguments.

    The result keeps the function's name, docstring and (resolved) type hints and shows the
    remaining parameters as its signature, so Kedro validates the node's inputs against them
    and kedro-viz shows the real function.
    """

    def bound(*args, **kwargs):
        return func(*args, source=source, condition=condition, **kwargs)

    signature = inspect.signature(func)
    bound.__signature__ = signature.replace(
        parameters=[
            param for name, param in signature.parameters.items() if name not in CELL_ARGUMENTS
        ]
    )
    bound.__annotations__ = {
        name: hint
        for name, hint in typing.get_type_hints(func).items()
        if name not in CELL_ARGUMENTS
    }
    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(bound, attribute, getattr(func, attribute))
    bound.__wrapped__ = func  # kedro-viz's "Show code" (the signature above takes precedence)
    return bound


def gather(keys: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """A node function that takes one value per key, in ``keys`` order, and returns
    ``{key: value}``.

    The wiring uses it to hand one dataset instead of many across a namespace's edge, and to keep
    the per-run outputs that no node reads (each run's ``weights`` and ``figures``) in the
    source's namespace: kedro-viz draws every output that nothing in a namespace reads outside
    that namespace's box, so without it the first view is one row of 16 such datasets per source.

    >>> gather(("a", "b"))(1, 2)
    {'a': 1, 'b': 2}
    """

    def gather(*values: Any) -> dict[str, Any]:
        if len(values) != len(keys):
            raise ValueError(f"gather got {len(values)} values for the keys {keys}")
        return dict(zip(keys, values, strict=True))

    return gather


def pick(key: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` applied to the ``key`` entry of each of its arguments (dicts made by
    :func:`gather`); it keeps ``func``'s name and docstring, so kedro-viz shows the real function.

    >>> def larger(x, y):
    ...     return max(x, y)
    >>> pick("a", larger)({"a": 1, "b": 9}, {"a": 2, "b": 0})
    2
    """

    def picked(*bundles: dict[str, Any]) -> Any:
        return func(*(bundle[key] for bundle in bundles))

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        if hasattr(func, attribute):
            setattr(picked, attribute, getattr(func, attribute))
    picked.__signature__ = inspect.signature(func)
    picked.__wrapped__ = func  # kedro-viz's "Show code"
    return picked
