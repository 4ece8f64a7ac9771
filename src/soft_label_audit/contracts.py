"""The table contracts: one pandera schema per catalog table, the one statement of each.

Each schema says which columns a table has at least (extra columns are allowed), their kinds,
ranges and allowed values, the key that identifies a row, and the rows that must sum to one.
:class:`soft_label_audit.contract_hook.TableContractHook` checks every table that has a schema
when the catalog saves or loads it, so a node may rely on its inputs' contracts.

Print a contract::

    python -m soft_label_audit.contracts                # the tables that have one
    python -m soft_label_audit.contracts item_stats     # one table's columns and rules
    python -m soft_label_audit.contracts mnist.human_soft.test_predictions

The checks are vectorised; only the two columns of Python objects (``image`` bytes and
``machine_soft_label`` lists) are looked at cell by cell.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from functools import cache

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from soft_label_audit.columns import (
    CHOICES,
    H_COLS,
    MNIST_TRAIN_IDS,
    N_CLASSES,
    N_MNIST,
    P_COLS,
    PREDICTION_SCOPES,
    SOURCES,
    SPLITS,
    T_COLS,
)
from soft_label_audit.crowd import sources as annotation_sources
from soft_label_audit.data_sources.tables import IMAGE_BYTES

#: |row sum - 1| allowed for human soft labels and targets (float64 arithmetic)
SUM_ATOL = 1e-6
#: |row sum - 1| allowed for predicted distributions (a float32 softmax stored as float64)
PROB_SUM_ATOL = 1e-4
#: the human entropy is over at most 11 slots (10 digits and "none"), in nats
MAX_ENTROPY = math.log(len(H_COLS))
#: rows shown per broken rule
MAX_SHOWN = 5

_BUILTIN_RULES = {
    "not_nullable": "no missing values",
    "column_in_dataframe": "required column present",
}


class ContractError(ValueError):
    """A table breaks its contract; the message names the table, each rule and the rows."""


# ---------------------------------------------------------------- checks (all vectorised)


def _has(df: pd.DataFrame, columns: Sequence[str]) -> bool:
    return all(c in df.columns for c in columns)


def _kind(kind: str) -> pa.Check:
    """The column's dtype is of ``kind`` (integer, float, bool, str): a whole-column check."""
    test: dict[str, Callable[[pd.Series], bool]] = {
        "integer": pd.api.types.is_integer_dtype,
        "float": lambda s: pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s),
        "bool": pd.api.types.is_bool_dtype,
        "str": lambda s: pd.api.types.is_string_dtype(s) and not pd.api.types.is_bool_dtype(s),
    }
    return pa.Check(lambda s: bool(test[kind](s)), name=f"dtype is {kind}")


def _between(lo: float, hi: float, atol: float = 0.0) -> pa.Check:
    return pa.Check(lambda s: s.between(lo - atol, hi + atol), name=f"in [{lo:g}, {hi:g}]")


def _at_least(lo: float) -> pa.Check:
    return pa.Check(lambda s: s >= lo, name=f">= {lo:g}")


def _one_of(values: Sequence[str]) -> pa.Check:
    return pa.Check(lambda s: s.isin(values), name=f"one of {', '.join(values)}")


def _annotation_source() -> pa.Check:
    """A registered annotation source (:data:`soft_label_audit.crowd.sources.SOURCES`, read
    when the check runs)."""
    return pa.Check(
        lambda s: s.isin(annotation_sources.names()),
        name=f"one of {', '.join(annotation_sources.names())}",
    )


def _equals(value: str) -> pa.Check:
    return pa.Check(lambda s: s == value, name=f"equals {value!r} (the dataset's namespace)")


def _non_empty() -> pa.Check:
    return pa.Check(lambda s: s.astype(str).str.strip() != "", name="non-empty")


def _one_row_per(keys: Sequence[str]) -> pa.Check:
    keys = list(keys)
    label = keys[0] if len(keys) == 1 else "(" + ", ".join(keys) + ")"
    return pa.Check(
        lambda df: ~df.duplicated(keys, keep=False) if _has(df, keys) else True,
        name=f"one row per {label}",
    )


def _sums_to_one(columns: Sequence[str], atol: float) -> pa.Check:
    columns = list(columns)

    def check(df: pd.DataFrame) -> pd.Series | bool:
        if not _has(df, columns):
            return True
        total = df[columns].to_numpy(dtype=np.float64, na_value=np.nan).sum(axis=1)
        return pd.Series(np.abs(total - 1.0) <= atol, index=df.index)

    return pa.Check(check, name=f"{columns[0]}..{columns[-1]} sum to 1 (within {atol:g})")


def _mnist_ids() -> pa.Check:
    lo, hi = 0, N_MNIST

    def check(df: pd.DataFrame) -> pd.Series | bool:
        if not _has(df, ["source", "item_id"]):
            return True
        return (df["source"] != "mnist") | df["item_id"].between(lo, hi - 1)

    return pa.Check(check, name=f"an mnist item_id is in {lo}..{hi - 1} (the 70k ordering)")


def _image_cell(v: object) -> bool:
    return isinstance(v, bytes | bytearray) and len(v) == IMAGE_BYTES


def _images_ok(s: pd.Series) -> pd.Series:
    """Per cell: bytes of 784 pixels (cell by cell only when some cell is not bytes)."""
    if pd.api.types.infer_dtype(s, skipna=True) not in ("bytes", "empty"):
        return s.map(_image_cell).astype(bool)
    present = s.notna().to_numpy()
    ok = np.zeros(len(s), dtype=bool)
    values = s.to_numpy()[present]
    ok[present] = np.fromiter(map(len, values), dtype=np.int64, count=len(values)) == IMAGE_BYTES
    return pd.Series(ok, index=s.index)


def _image() -> pa.Check:
    return pa.Check(_images_ok, name=f"{IMAGE_BYTES} bytes (28x28 uint8)")


def _soft_labels_ok(cells: pd.Series) -> np.ndarray:
    """Per cell: a sequence of 10 finite non-negative numbers summing to 1 (vectorised)."""
    try:
        lists = pyarrow.array(list(cells), type=pyarrow.list_(pyarrow.float64()))
        sized = pc.list_value_length(lists).to_numpy(zero_copy_only=False) == N_CLASSES
    except (pyarrow.ArrowException, TypeError, ValueError):
        lists = None
        sized = cells.map(lambda v: np.ndim(v) == 1 and len(v) == N_CLASSES).to_numpy(dtype=bool)
    ok = np.zeros(len(cells), dtype=bool)
    if sized.any():
        if lists is not None and sized.all():
            x = lists.flatten().to_numpy(zero_copy_only=False).reshape(-1, N_CLASSES)
        else:
            x = np.array([_as_floats(v) for v in cells[sized]])
        ok[sized] = (x >= -SUM_ATOL).all(axis=1) & (np.abs(x.sum(axis=1) - 1.0) <= SUM_ATOL)
    return ok


def _as_floats(v: object) -> np.ndarray:
    try:
        x = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        return np.full(N_CLASSES, np.nan)
    return x if x.shape == (N_CLASSES,) else np.full(N_CLASSES, np.nan)


def _machine_soft_label() -> pa.Check:
    def check(s: pd.Series) -> pd.Series:
        present = s.notna().to_numpy()
        ok = np.ones(len(s), dtype=bool)
        ok[present] = _soft_labels_ok(s[present])
        return pd.Series(ok, index=s.index)

    return pa.Check(
        check, name=f"{N_CLASSES} non-negative floats summing to 1 (within {SUM_ATOL:g})"
    )


def _synthetic_has_machine_label() -> pa.Check:
    def check(df: pd.DataFrame) -> pd.Series | bool:
        if not _has(df, ["source", "machine_soft_label"]):
            return True
        return (df["source"] != "synthetic") | df["machine_soft_label"].notna()

    return pa.Check(check, name="a synthetic item carries a machine_soft_label")


def _mode_shift_means_other_mode() -> pa.Check:
    def check(df: pd.DataFrame) -> pd.Series | bool:
        if not _has(df, ["mode_shift", "human_mode", "original_label"]):
            return True
        return ~df["mode_shift"].astype(bool) | (df["human_mode"] != df["original_label"])

    return pa.Check(check, name="mode_shift only where human_mode != original_label")


def _flipped_means_other_label() -> pa.Check:
    def check(df: pd.DataFrame) -> pd.Series | bool:
        if not _has(df, ["label_flipped", "true_label", "original_label"]):
            return True
        return df["label_flipped"].astype(bool) == (df["true_label"] != df["original_label"])

    return pa.Check(check, name="label_flipped exactly where true_label != original_label")


def _single_value(column: str) -> pa.Check:
    return pa.Check(
        lambda df: df[column].nunique() <= 1 if column in df else True,
        name=f"one {column} per table",
    )


def _other_columns_numeric(keys: Sequence[str]) -> pa.Check:
    def check(df: pd.DataFrame) -> bool:
        return all(pd.api.types.is_numeric_dtype(df[c]) for c in df.columns if c not in keys)

    return pa.Check(
        check, name=f"every column besides {', '.join(keys)} is numeric (one per metric)"
    )


# ---------------------------------------------------------------- columns


def _col(kind: str, *checks: pa.Check, nullable: bool = False, required: bool = True) -> pa.Column:
    return pa.Column(None, checks=[_kind(kind), *checks], nullable=nullable, required=required)


def _item_id() -> pa.Column:
    return _col("integer", _at_least(0))


def _label() -> pa.Column:
    return _col("integer", _between(0, N_CLASSES - 1))


def _probabilities(columns: Sequence[str]) -> dict[str, pa.Column]:
    """Presence only; :func:`_distribution` checks the block at once (cheaper than per column)."""
    return {c: pa.Column(None, nullable=True) for c in columns}


def _distribution(columns: Sequence[str], atol: float) -> list[pa.Check]:
    """The rules of a probability block: float dtype, each value in [0, 1], rows summing to 1."""
    columns = list(columns)
    block = f"{columns[0]}..{columns[-1]}"

    def floats(df: pd.DataFrame) -> bool:
        return all(pd.api.types.is_float_dtype(df[c]) for c in columns if c in df)

    def in_unit(df: pd.DataFrame) -> pd.Series | bool:
        if not _has(df, columns):
            return True
        values = df[columns].to_numpy(dtype=np.float64, na_value=np.nan)
        return pd.Series(((values >= -atol) & (values <= 1 + atol)).all(axis=1), index=df.index)

    return [
        pa.Check(floats, name=f"{block} have a float dtype"),
        pa.Check(in_unit, name=f"{block} each in [0, 1], none missing"),
        _sums_to_one(columns, atol),
    ]


def _str(*checks: pa.Check, required: bool = True) -> pa.Column:
    return _col("str", *checks, required=required)


def _schema(
    name: str, columns: dict[str, pa.Column], checks: Sequence[pa.Check], doc: str
) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        columns, checks=list(checks), name=name, description=doc, strict=False
    )


# ---------------------------------------------------------------- one schema per table


def _digits() -> pa.DataFrameSchema:
    return _schema(
        "digits",
        {
            "item_id": _item_id(),
            "source": _str(_one_of(SOURCES)),
            "original_label": _label(),
            "image": pa.Column(None, checks=[_image()]),
            "machine_soft_label": pa.Column(None, checks=[_machine_soft_label()], nullable=True),
            "class_a": _col("integer", _between(-1, N_CLASSES - 1), required=False),
            "class_b": _col("integer", _between(-1, N_CLASSES - 1), required=False),
            "mix_weight": _col("float", _between(0, 1), nullable=True, required=False),
        },
        [_one_row_per(["item_id"]), _mnist_ids(), _synthetic_has_machine_label()],
        "every item (MNIST 70k and synthetic), one row each; image: 784 row-major uint8 "
        "(data_sources.tables); machine_soft_label: None for MNIST; mix_weight: the weight "
        "of class_b (NaN for MNIST)",
    )


def _pool_mnist_ids() -> pa.Check:
    lo, hi = MNIST_TRAIN_IDS.start, MNIST_TRAIN_IDS.stop

    def check(df: pd.DataFrame) -> pd.Series | bool:
        if not _has(df, ["source", "item_id"]):
            return True
        return (df["source"] != "mnist") | df["item_id"].between(lo, hi - 1)

    return pa.Check(
        check,
        name=f"an mnist item_id is a training image, {lo}..{hi - 1} (never a test image: the "
        "crowd's memory)",
    )


def _synthetic_ids_outside_mnist() -> pa.Check:
    def check(df: pd.DataFrame) -> pd.Series | bool:
        if not _has(df, ["source", "item_id"]):
            return True
        return (df["source"] != "synthetic") | (df["item_id"] >= N_MNIST)

    return pa.Check(check, name=f"a synthetic item_id is >= {N_MNIST} (outside the 70k ordering)")


def _pool_digits() -> pa.DataFrameSchema:
    columns = dict(_digits().columns)
    # required here: whatever must stay apart from the pool leaves out the blends' parents too
    for parent in ("parent_a", "parent_b"):
        columns[parent] = _col("integer", _between(-1, MNIST_TRAIN_IDS.stop - 1))
    return _schema(
        "pool_digits",
        columns,
        [
            _one_row_per(["item_id"]),
            _pool_mnist_ids(),
            _synthetic_ids_outside_mnist(),
            _synthetic_has_machine_label(),
        ],
        "the held-out scoring pool (data_sources.pool), one row per item, the columns of "
        "digits: MNIST training images outside the study and further synthetic blends from "
        "parents outside the study; parent_a/parent_b: the MNIST training ids a blend was "
        "made from (-1 for MNIST)",
    )


def _study_items() -> pa.DataFrameSchema:
    return _schema(
        "study_items",
        {
            "item_id": _item_id(),
            "source": _str(_one_of(SOURCES)),
            "split": _str(_one_of(SPLITS)),
            "original_label": _label(),
        },
        [_one_row_per(["item_id"]), _mnist_ids()],
        "the items chosen for re-annotation with their split",
    )


def _study_items_table() -> pa.DataFrameSchema:
    """``study_items`` as the digits stage writes it: :func:`_study_items` and, under the
    positive control (``digits.study.label_noise.share > 0``), ``true_label`` and
    ``label_flipped``."""
    columns = dict(_study_items().columns)
    columns.update(
        {
            "true_label": _col("integer", _between(0, N_CLASSES - 1), required=False),
            "label_flipped": _col("bool", required=False),
        }
    )
    return _schema(
        "study_items",
        columns,
        [_one_row_per(["item_id"]), _mnist_ids(), _flipped_means_other_label()],
        "the items chosen for re-annotation with their split; original_label is the label the "
        "study gives the models; under the positive control (digits.study.label_noise) "
        "true_label is MNIST's label and label_flipped marks the items whose original_label "
        "was flipped to a confusable digit (present only when the share is above 0)",
    )


def _study_digits() -> pa.DataFrameSchema:
    columns = dict(_study_items().columns)
    columns.update(
        {
            "image": pa.Column(None, checks=[_image()]),
            "machine_soft_label": pa.Column(None, checks=[_machine_soft_label()], nullable=True),
            "annotation_source": _str(_annotation_source()),
        }
    )
    return _schema(
        "study_digits",
        columns,
        [_one_row_per(["item_id"]), _mnist_ids(), _single_value("annotation_source")],
        "the annotated study items the rest of the study uses, one row each: study_items "
        "joined with digits (simulated, raw_file) or the released file's own rows (released)",
    )


def _votes(name: str, with_source: bool) -> pa.DataFrameSchema:
    columns = {
        "item_id": _item_id(),
        "annotator_id": _str(_non_empty()),
        "choice": _str(_one_of(CHOICES)),
        "unsure": _col("bool"),
        "response_time": _col("float", _at_least(0), nullable=True, required=False),
    }
    if with_source:
        columns["annotation_source"] = _str(_annotation_source(), required=False)
    return _schema(
        name,
        columns,
        [_one_row_per(["item_id", "annotator_id"])],
        "one vote per row (empty for released soft labels); response_time in seconds",
    )


def _soft_labels(name: str, keys: Sequence[str], doc: str) -> pa.DataFrameSchema:
    columns = {"item_id": _item_id(), **_probabilities(H_COLS)}
    columns["aggregation"] = _str(_non_empty())
    columns["annotation_source"] = _str(_annotation_source())
    checks = [_one_row_per(keys), *_distribution(H_COLS, SUM_ATOL)]
    if list(keys) == ["item_id"]:
        checks.append(_single_value("aggregation"))
    return _schema(name, columns, checks, doc)


def _item_stats() -> pa.DataFrameSchema:
    columns = dict(_study_items().columns)
    columns.update(
        {
            "n_votes": _col("integer", _at_least(1), nullable=True),
            "human_entropy": _col("float", _between(0, MAX_ENTROPY, SUM_ATOL)),
            "pct_unsure": _col("float", _between(0, 1), nullable=True),
            "human_mode": _label(),
            "mode_shift": _col("bool"),
            "annotation_source": _str(_annotation_source()),
            "mode_unsupported": _col("bool", required=False),
            "pct_none_votes": _col("float", _between(0, 1), nullable=True, required=False),
            "h_none": _col("float", _between(0, 1, SUM_ATOL), required=False),
        }
    )
    return _schema(
        "item_stats",
        columns,
        [_one_row_per(["item_id"]), _mnist_ids(), _mode_shift_means_other_mode()],
        "per study item: votes (null for released soft labels); human_entropy: the entropy "
        "(nats) of the human_soft target after labels.none_slot (human_labels.human_entropy), "
        "the one measure of human uncertainty; human_argmax: argmax of h over the 10 digits "
        "(ties to the original label when among the maxima, else the lowest digit); "
        "human_mode: human_argmax where the votes support it (annotation.mode_support), else "
        "the original label (mode_unsupported set); mode_shift: human_mode != original_label",
    )


def _run_keys(source: str | None, condition: str | None) -> dict[str, pa.Column]:
    return {
        "source": _str(*([_equals(source)] if source else [_non_empty()])),
        "condition": _str(*([_equals(condition)] if condition else [_non_empty()])),
        "seed": _col("integer", _at_least(0)),
    }


def _targets(source: str | None, condition: str | None) -> pa.DataFrameSchema:
    return _schema(
        "targets",
        {"item_id": _item_id(), "split": _str(_one_of(SPLITS)), **_probabilities(T_COLS)},
        [_one_row_per(["item_id"]), *_distribution(T_COLS, SUM_ATOL)],
        "the training target of every study item of the source",
    )


def _test_predictions(source: str | None, condition: str | None) -> pa.DataFrameSchema:
    return _schema(
        "test_predictions",
        {**_run_keys(source, condition), "item_id": _item_id(), **_probabilities(P_COLS)},
        [_one_row_per(["seed", "item_id"]), *_distribution(P_COLS, PROB_SUM_ATOL)],
        "the predicted distribution of every test item, per seed",
    )


def _pool_predictions(source: str | None, condition: str | None) -> pa.DataFrameSchema:
    return _schema(
        "pool_predictions",
        {**_run_keys(source, condition), "item_id": _item_id(), **_probabilities(P_COLS)},
        [_one_row_per(["seed", "item_id"]), *_distribution(P_COLS, PROB_SUM_ATOL)],
        "the predicted distribution of every pool item (pool_digits: held-out, unannotated) "
        "of the source, per seed, at the run's best epoch (lowest val_loss); empty without pool",
    )


def _final_predictions(source: str | None, condition: str | None) -> pa.DataFrameSchema:
    return _schema(
        "final_predictions",
        {
            **_run_keys(source, condition),
            "scope": _str(_one_of(PREDICTION_SCOPES)),
            "item_id": _item_id(),
            **_probabilities(P_COLS),
        },
        [_one_row_per(["scope", "seed", "item_id"]), *_distribution(P_COLS, PROB_SUM_ATOL)],
        "the predicted distribution of every test item (scope test) and pool item (scope "
        "pool), per seed, at the final epoch",
    )


def _curves(source: str | None, condition: str | None) -> pa.DataFrameSchema:
    return _schema(
        "curves",
        {
            **_run_keys(source, condition),
            "epoch": _col("integer", _at_least(1)),
            "train_loss": _col("float", _at_least(0)),
            "train_acc": _col("float", _between(0, 1)),
            "val_loss": _col("float", _at_least(0)),
            "val_acc": _col("float", _between(0, 1)),
            "best_epoch": _col("integer", _at_least(1)),
            "val_loss_converged": _col("bool"),
            # NaN only without validation items
            "temperature_best": _col("float", _at_least(0), nullable=True),
            "temperature_final": _col("float", _at_least(0), nullable=True),
        },
        [_one_row_per(["seed", "epoch"])],
        "per seed and epoch (1-based): training and validation curves; val_loss and val_acc "
        "against the original label for every condition, *_human_mode against the human "
        "mode, val_loss_own_target against the run's own targets; on every row of a seed: "
        "best_epoch (lowest val_loss, the epoch of test_predictions), "
        "val_loss_gain_last_fifth and val_loss_converged: the convergence check "
        "(metrics/convergence.py: converged when the best epoch lies before the last fifth), "
        "temperature_best and temperature_final: the post-hoc temperature fitted on the "
        "validation items' logits at the best and the final epoch (metrics/temperature.py: "
        "lowest NLL against the original label; NaN without validation items)",
    )


def _metrics(source: str | None, condition: str | None) -> pa.DataFrameSchema:
    return _schema(
        "metrics",
        _run_keys(source, condition),
        [_one_row_per(["seed"]), _other_columns_numeric(["source", "condition"])],
        "one row per seed: every metric of the run (NaN where a metric is undefined); "
        "columns without a prefix score the test items at the best epoch, pool__{name} the "
        "pool items at the best epoch, final__{name} and final__pool__{name} the final epoch "
        "(label-free metrics only, metrics/registry.py); best_epoch: the epoch scored",
    )


_TABLES: dict[str, Callable[[], pa.DataFrameSchema]] = {
    "digits": _digits,
    "study_items": _study_items_table,
    "pool_digits": _pool_digits,
    "study_digits": _study_digits,
    "raw_annotations": lambda: _votes("raw_annotations", with_source=False),
    "validated_annotations": lambda: _votes("validated_annotations", with_source=True),
    "human_soft_labels_by_rule": lambda: _soft_labels(
        "human_soft_labels_by_rule",
        ["item_id", "aggregation"],
        "every aggregation rule's soft label per item",
    ),
    "human_soft_labels": lambda: _soft_labels(
        "human_soft_labels",
        ["item_id"],
        "the chosen rule's soft label per study item (10 digits + none)",
    ),
    "item_stats": _item_stats,
}
_NAMESPACED: dict[str, Callable[[str | None, str | None], pa.DataFrameSchema]] = {
    "targets": _targets,
    "test_predictions": _test_predictions,
    "pool_predictions": _pool_predictions,
    "final_predictions": _final_predictions,
    "curves": _curves,
    "metrics": _metrics,
}
#: the tables of one ``{source}.{condition}`` namespace that have a contract
NAMESPACED_TABLES = tuple(_NAMESPACED)

#: the catalog tables with a contract (namespaced ones as ``{source}.{condition}.<table>``)
TABLES = tuple(_TABLES) + tuple(f"{{source}}.{{condition}}.{t}" for t in NAMESPACED_TABLES)


@cache
def schema_for(dataset_name: str) -> pa.DataFrameSchema | None:
    """The schema of a catalog dataset, or None when it has no contract.

    ``mnist.human_soft.test_predictions`` gets the test_predictions schema with its ``source``
    and ``condition`` columns bound to the namespace; a bare ``test_predictions`` (or
    ``{source}.{condition}.test_predictions``) the schema with any source and condition.
    """
    if dataset_name in _TABLES:
        return _TABLES[dataset_name]()
    parts = dataset_name.split(".")
    if parts[-1] not in _NAMESPACED or len(parts) not in (1, 3):
        return None
    if len(parts) == 1 or parts[:2] == ["{source}", "{condition}"]:
        return _NAMESPACED[parts[-1]](None, None)
    return _NAMESPACED[parts[-1]](parts[0], parts[1])


def _show(frame: pd.DataFrame, rows: np.ndarray) -> str:
    """The first offending rows, bytes cells shortened, indented."""
    shown = frame.iloc[rows[:MAX_SHOWN]].copy()
    for c in shown.columns:
        if shown[c].dtype == object:
            shown[c] = [
                f"<{len(v)} bytes>" if isinstance(v, bytes | bytearray) else v for v in shown[c]
            ]
    return "\n".join("    " + line for line in shown.to_string(max_colwidth=40).splitlines())


def describe(dataset_name: str, frame: pd.DataFrame, errors: SchemaErrors) -> str:
    """One message: the table, then per broken rule its column, how many rows and the first."""
    cases = errors.failure_cases
    lines = [
        f"Table {dataset_name!r} breaks its contract (python -m soft_label_audit.contracts {dataset_name}):"
    ]
    whole = cases[cases["index"].isna()]
    for (column, check), group in whole.groupby(["column", "check"], dropna=False, sort=False):
        rule = _BUILTIN_RULES.get(str(check), str(check))
        if str(check) == "column_in_dataframe":
            lines.append(
                f"  rule '{rule}': missing {', '.join(sorted(map(str, group['failure_case'])))}"
            )
        elif isinstance(column, str) and column in frame:
            lines.append(f"  column {column!r}: rule '{rule}' (found dtype {frame[column].dtype})")
        else:
            lines.append(f"  rule '{rule}': {'; '.join(map(str, group['failure_case']))}")
    rowwise = cases[cases["index"].notna()]
    table_rules = rowwise["schema_context"] == "DataFrameSchema"
    labels = np.where(
        table_rules,
        rowwise["check"].astype(str),
        "column " + rowwise["column"].astype(str).map(repr) + ": " + rowwise["check"].astype(str),
    )
    for label, group in rowwise.groupby(labels, sort=False):
        for builtin, words in _BUILTIN_RULES.items():
            label = label.replace(builtin, words)
        rows = pd.unique(group["index"].astype(np.int64))
        lines.append(
            f"  rule '{label}': {len(rows)} offending row(s); first {min(MAX_SHOWN, len(rows))}:\n"
            + _show(frame, np.sort(rows))
        )
    return "\n".join(lines)


def check_table(dataset_name: str, data: object) -> None:
    """Raise :class:`ContractError` when ``data`` breaks the contract of ``dataset_name``.

    Datasets without a contract pass untouched. Rows are numbered from 0 in table order.
    """
    schema = schema_for(dataset_name)
    if schema is None:
        return
    if not isinstance(data, pd.DataFrame):
        raise ContractError(
            f"Table {dataset_name!r} must be a pandas DataFrame, got {type(data).__name__}"
        )
    frame = data.reset_index(drop=True)
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        raise ContractError(describe(dataset_name, frame, exc)) from None


def render(dataset_name: str) -> str:
    """A contract in words: columns (kind and rules) and the rules over whole rows."""
    schema = schema_for(dataset_name)
    if schema is None:
        raise KeyError(f"no contract for {dataset_name!r}; tables with one: {', '.join(TABLES)}")
    lines = [
        f"{dataset_name}: {schema.description}",
        "columns (at least these; others are allowed):",
    ]
    for name, column in schema.columns.items():
        flags = [] if column.required else ["optional"]
        if column.nullable:
            flags.append("may be missing")
        rules = [c.name for c in column.checks]
        note = f" ({', '.join(flags)})" if flags else ""
        lines.append(f"  {name}{note}: {'; '.join(rules)}")
    lines.append("rules over rows:")
    lines.extend(f"  {c.name}" for c in schema.checks)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("Tables with a contract (python -m soft_label_audit.contracts TABLE):")
        print("\n".join(f"  {t}" for t in TABLES))
        return 0
    try:
        print("\n\n".join(render(a) for a in args))
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
