"""SHA-256 fingerprints of the study data made before training, independent of file format.

Everything before training (the synthetic images, the study split, the simulated votes and
the aggregated labels) must be bit-identical on any x86-64 machine with the pinned packages.
A fingerprint hashes a canonical serialisation of a table, not its parquet bytes (which carry
library versions and compression choices):

* rows sorted by the table's key columns, columns in sorted name order;
* each column as its name, then its cells: integers and booleans as decimal text, strings as
  UTF-8, floats as ``repr`` of the value rounded to ``DECIMALS`` decimals (the aggregated
  labels are ratios of vote counts; rounding absorbs the last bits a different BLAS or
  summation order could move), byte cells (images) as their bytes, list or array cells (soft
  labels) element by element as floats, missing cells as ``NA``;
* every cell followed by a separator byte, so no two tables serialise alike.

``FINGERPRINT_FILE`` (committed) holds the fingerprints of the ``test`` configuration (checked
by the test suite) and of the default configuration (checked by ``make check-fingerprints``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

DECIMALS = 10
FINGERPRINT_FILE = "fingerprints.json"

#: the tables whose bytes must not depend on the machine, with their row keys
TABLES: dict[str, tuple[str, ...]] = {
    "digits": ("item_id",),
    "study_items": ("item_id",),
    "raw_annotations": ("item_id", "annotator_id"),
    "human_soft_labels": ("item_id", "aggregation"),
}

#: where a `kedro run` writes them under the data root (conf/base/catalog_*.yml)
DATA_PATHS: dict[str, str] = {
    "digits": "02_intermediate/digits.parquet",
    "study_items": "03_primary/study_items.parquet",
    "raw_annotations": "02_intermediate/raw_annotations.parquet",
    "human_soft_labels": "03_primary/human_soft_labels.parquet",
}

_SEP = b"\x1f"
_ROW = b"\x1e"


def _cell(value) -> bytes:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return b"NA"
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bool | np.bool_):
        return b"1" if value else b"0"
    if isinstance(value, int | np.integer):
        return str(int(value)).encode()
    if isinstance(value, float | np.floating):
        return repr(round(float(value), DECIMALS) + 0.0).encode()
    if isinstance(value, list | tuple | np.ndarray):
        return b",".join(_cell(float(v)) for v in np.asarray(value, dtype=float).ravel())
    raise TypeError(f"cannot fingerprint a cell of type {type(value).__name__}")


def canonical_bytes(frame: pd.DataFrame, keys: Iterable[str]) -> Iterable[bytes]:
    """The canonical serialisation of ``frame`` (see module doc), in chunks."""
    keys = list(keys)
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise ValueError(f"cannot fingerprint a table without its key columns {missing}")
    ordered = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    for column in sorted(ordered.columns):
        yield column.encode() + _ROW
        for value in ordered[column].tolist():
            yield _cell(value) + _SEP
        yield _ROW


def table_fingerprint(frame: pd.DataFrame, keys: Iterable[str]) -> str:
    """SHA-256 (hex) of :func:`canonical_bytes`."""
    digest = hashlib.sha256()
    for chunk in canonical_bytes(frame, keys):
        digest.update(chunk)
    return digest.hexdigest()


def study_fingerprints(tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Fingerprints of the tables named in :data:`TABLES` (all of them must be given)."""
    absent = sorted(set(TABLES) - set(tables))
    if absent:
        raise ValueError(f"fingerprints need the tables {absent}")
    return {name: table_fingerprint(tables[name], keys) for name, keys in TABLES.items()}


def read_file(path: str | Path) -> dict[str, dict[str, str]]:
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


def write_entry(path: str | Path, env: str, fingerprints: dict[str, str]) -> None:
    """Set the fingerprints of configuration ``env`` in the file, keeping the others."""
    content = read_file(path)
    content[env] = dict(sorted(fingerprints.items()))
    Path(path).write_text(json.dumps(dict(sorted(content.items())), indent=2) + "\n")


def differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Names of the tables whose fingerprints differ (or are missing on either side)."""
    return sorted(
        name for name in set(expected) | set(actual) if expected.get(name) != actual.get(name)
    )


def run_in_memory(params: dict, mnist_raw: dict[str, np.ndarray], source: str, last_node: str):
    """Run the ``digits`` stage up to the study items and the ``annotation`` stage up to
    ``last_node`` in memory with ``params`` and annotation source ``source``; returns the
    catalog, every dataset kept."""
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    from soft_label_audit.datasets.annotation_files import AnnotationInputDataset
    from soft_label_audit.pipelines import annotation, digits

    pipe = digits.create_pipeline().to_nodes(
        "choose_study_items"
    ) + annotation.create_pipeline().to_nodes(last_node)
    datasets: dict[str, MemoryDataset] = {
        "mnist_raw": MemoryDataset(mnist_raw),
        "annotation_input": MemoryDataset(AnnotationInputDataset(source).load()),
    }
    for name in pipe.inputs():
        if name.startswith("params:"):
            value = params
            for part in name[len("params:") :].split("."):
                value = value[part]
            datasets[name] = MemoryDataset(value, copy_mode="deepcopy")

    class Kept(MemoryDataset):
        def _release(self) -> None:  # the runner frees intermediates; these are the results
            pass

    for name in pipe.datasets():
        datasets.setdefault(name, Kept(copy_mode="assign"))
    catalog = DataCatalog(datasets)
    SequentialRunner().run(pipe, catalog)
    return catalog


def run_pre_training_stages(
    conf_source: str | Path, env: str, mnist_raw: dict[str, np.ndarray]
) -> dict[str, pd.DataFrame]:
    """Run the ``digits`` and ``annotation`` stages (figures and validity checks left out) in
    memory with the parameters of configuration ``env`` and return the tables of
    :data:`TABLES`. The annotation source is the simulated crowd."""
    from kedro.config import OmegaConfigLoader

    from soft_label_audit.crowd import sources
    from soft_label_audit.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(
        str(conf_source), **{**CONFIG_LOADER_ARGS, "default_run_env": env}, env=env
    )
    params = loader["parameters"]
    covered = sources.fingerprinted_source()
    if params["annotation"]["source"] != covered:
        raise ValueError(
            f"fingerprints cover annotation.source={covered}; configuration {env!r} reads "
            f"annotation.source={params['annotation']['source']!r}"
        )
    catalog = run_in_memory(params, mnist_raw, covered, "annotation.select_aggregation_rule")
    return {name: catalog.load(name) for name in TABLES}
