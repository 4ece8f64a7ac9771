"""Validation of annotation inputs with pandera: every rule names itself in the error.

A failing input stops the run with one :class:`AnnotationValidationError` whose message names
the file, each broken rule, how many rows break it and the first few of them. Rules:

votes (``raw_file`` and the simulated crowd):
  columns are exactly item_id, annotator_id, choice, unsure (+ optional response_time);
  no missing values; item_id is an integer and a study item; choice is "0".."9" or "none";
  unsure is a boolean; response_time is a non-negative number; one vote per
  (item, annotator); every study item has at least one vote (when required).
released soft labels: see :func:`validate_released`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from soft_label_audit.columns import CHOICES

VOTE_COLUMNS = ("item_id", "annotator_id", "choice", "unsure")
OPTIONAL_VOTE_COLUMNS = ("response_time",)
MAX_SHOWN = 5

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}

#: pandera's own check names, said in words
_BUILTIN_RULES = {
    "not_nullable": "no missing values (NaN/empty)",
    "column_in_dataframe": "required column present",
    "column_in_schema": "no unknown columns",
}


class AnnotationValidationError(ValueError):
    """Bad annotation input; the message names the file, the rules and the offending rows."""


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def is_integer_like(v: Any) -> bool:
    if _missing(v) or isinstance(v, bool | np.bool_):
        return False
    if isinstance(v, int | np.integer):
        return True
    if isinstance(v, float | np.floating):
        return math.isfinite(v) and float(v).is_integer()
    if isinstance(v, str):
        try:
            return float(v.strip()).is_integer() and math.isfinite(float(v))
        except ValueError:
            return False
    return False


def to_int(v: Any) -> int:
    return int(float(v.strip())) if isinstance(v, str) else int(v)


def normalise_choice(v: Any) -> Any:
    """ "3", 3, 3.0, " None " -> "3", "3", "3", "none"; anything else is returned unchanged."""
    if isinstance(v, bool | np.bool_) or _missing(v):
        return v
    if is_integer_like(v):
        return str(to_int(v))
    if isinstance(v, str):
        return v.strip().lower()
    return v


def parse_bool(v: Any) -> bool | None:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer) and v in (0, 1):
        return bool(v)
    if isinstance(v, float | np.floating) and v in (0.0, 1.0):
        return bool(v)
    if isinstance(v, str):
        s = v.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    return None


def is_nonnegative_number(v: Any) -> bool:
    if _missing(v):
        return True  # response_time is optional per vote
    try:
        x = float(v)
    except (TypeError, ValueError):
        return False
    return math.isfinite(x) and x >= 0


#: delimiters a CSV file of votes may have been saved with instead of commas
OTHER_DELIMITERS = (";", "\t", "|")


def other_delimiter(columns: Iterable[Any]) -> str | None:
    """The delimiter of a header read as one column because it is not comma-separated.

    >>> other_delimiter(["item_id;annotator_id;choice;unsure"])
    ';'
    >>> other_delimiter(["item_id", "annotator_id"]) is None
    True
    """
    columns = [str(c) for c in columns]
    if len(columns) != 1:
        return None
    return next((d for d in OTHER_DELIMITERS if d in columns[0]), None)


def element_check(rule: str, predicate: Callable[[Any], bool]) -> pa.Check:
    """A pandera check applying ``predicate`` to every cell; ``rule`` is its message."""
    return pa.Check(lambda s: s.map(predicate).astype(bool), name=rule)


def describe_failures(frame: pd.DataFrame, errors: SchemaErrors, file: str, what: str) -> str:
    """One message: the file, then per rule the count of offending rows and the first few.

    Rows are numbered from 0 in the order of the file's data rows (a CSV's header line not
    counted).
    """
    cases = errors.failure_cases
    cases = cases[~cases["check"].astype(str).str.startswith("dtype(")]
    lines = [f"Invalid {what} in {file}:"]
    for check, group in cases[cases["index"].isna()].groupby("check", sort=False):
        rule = _BUILTIN_RULES.get(str(check), str(check))
        values = sorted({str(v) for v in group["failure_case"]})
        lines.append(f"  rule '{rule}': {len(values)} offending column(s): {', '.join(values)}")
    with_rows = cases[cases["index"].notna()].copy()
    # a missing value is reported per column; a frame-wide rule once for all its columns
    with_rows["rule"] = [
        f"{_BUILTIN_RULES[c]} in column {col}" if c == "not_nullable" else _BUILTIN_RULES.get(c, c)
        for c, col in zip(
            with_rows["check"].astype(str), with_rows["column"].astype(str), strict=True
        )
    ]
    for rule, group in with_rows.groupby("rule", sort=False):
        index = pd.unique(group["index"].astype(int))
        shown = frame.loc[frame.index.intersection(index[:MAX_SHOWN])]
        table = shown.to_string(max_colwidth=40)
        lines.append(
            f"  rule '{rule}': {len(index)} offending row(s); first {min(MAX_SHOWN, len(index))}:\n"
            + "\n".join("    " + t for t in table.splitlines())
        )
    return "\n".join(lines)


def check_frame(frame: pd.DataFrame, schema: pa.DataFrameSchema, file: str, what: str) -> None:
    """Validate ``frame`` against ``schema``; one message naming the file, rows and rules."""
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        raise AnnotationValidationError(describe_failures(frame, exc, file, what)) from None


#: what the rule "item_id is a study item" adds when the ids are images outside the study
OUTSIDE_STUDY_HINT = (
    "they are items of the digits table outside the study: to study exactly the voted items run "
    '`kedro run --env own_votes --params "annotation.raw_path=FILE"` (digits.study.items_from: '
    "votes); to keep the drawn study, choose them with digits.study.n_per_source and "
    "pool_item_ids"
)
#: ... and what the rule "item_id is an item of a source" adds
NO_SOURCE_HINT = (
    "those ids are not an item of any source: MNIST items are 0..69999 (training images "
    "0..59999, test images 60000..69999), synthetic items those of the digits table "
    "(digits.synthetic.first_item_id onwards)"
)
ITEM_RULE = "item_id is an item of a source"
STUDY_RULE = "item_id is a study item"


def votes_schema(
    study_item_ids: Iterable[int],
    with_response_time: bool,
    all_item_ids: Iterable[int] | None = None,
) -> pa.DataFrameSchema:
    """``all_item_ids``: the items of every source (the digits table); an id outside them
    breaks the rule of being an item of a source, not that of being a study item."""
    known = {int(i) for i in study_item_ids}
    items = None if all_item_ids is None else {int(i) for i in all_item_ids}
    id_checks = [element_check("item_id is an integer", is_integer_like)]
    if items is not None:
        id_checks.append(
            element_check(ITEM_RULE, lambda v: not is_integer_like(v) or to_int(v) in items)
        )
    id_checks.append(
        element_check(
            STUDY_RULE,
            lambda v: (
                not is_integer_like(v)
                or to_int(v) in known
                or (items is not None and to_int(v) not in items)
            ),
        )
    )
    columns = {
        "item_id": pa.Column(None, nullable=False, checks=id_checks),
        "annotator_id": pa.Column(
            None,
            nullable=False,
            checks=[
                element_check("annotator_id is a non-empty id", lambda v: str(v).strip() != "")
            ],
        ),
        "choice": pa.Column(
            None,
            nullable=False,
            checks=[
                element_check(
                    'choice is one of "0".."9" or "none"', lambda v: normalise_choice(v) in CHOICES
                )
            ],
        ),
        "unsure": pa.Column(
            None,
            nullable=False,
            checks=[
                element_check(
                    "unsure is a boolean (true/false, 1/0)", lambda v: parse_bool(v) is not None
                )
            ],
        ),
    }
    if with_response_time:
        columns["response_time"] = pa.Column(
            None,
            nullable=True,
            checks=[
                element_check(
                    "response_time is a non-negative number of seconds", is_nonnegative_number
                )
            ],
        )

    def one_vote_per_pair(df: pd.DataFrame) -> pd.Series:
        key = pd.DataFrame(
            {
                "i": df["item_id"].map(lambda v: to_int(v) if is_integer_like(v) else str(v)),
                "a": df["annotator_id"].astype(str).str.strip(),
            }
        )
        return ~key.duplicated(keep=False)

    return pa.DataFrameSchema(
        columns,
        checks=[pa.Check(one_vote_per_pair, name="one vote per (item_id, annotator_id)")],
        strict=True,
        coerce=False,
    )


def validate_votes(
    frame: pd.DataFrame,
    study_items: pd.DataFrame,
    file: str,
    require_all_items: bool = True,
    all_item_ids: Iterable[int] | None = None,
) -> pd.DataFrame:
    """Check a long vote table and return it typed by the contract (``raw_annotations``).
    With ``all_item_ids`` (the digits table's ids) an id of no source and an image outside
    the study break two different rules, the second naming the settings that study it.

    Columns of the result: item_id int64, annotator_id str, choice str, unsure bool,
    response_time float64 (NaN when the input has none).
    """
    frame = frame.reset_index(drop=True)
    with_rt = "response_time" in frame.columns
    schema = votes_schema(study_items["item_id"], with_rt, all_item_ids)
    missing_cols = [c for c in VOTE_COLUMNS if c not in frame.columns]
    unknown_cols = [c for c in frame.columns if c not in VOTE_COLUMNS + OPTIONAL_VOTE_COLUMNS]
    if missing_cols or unknown_cols:
        parts = [f"Invalid annotations in {file}:"]
        delimiter = other_delimiter(frame.columns)
        if delimiter:
            parts.append(
                f"  rule 'comma-separated': the file is not comma-separated: its header "
                f"{str(frame.columns[0])[:80]!r} is one column, split by {delimiter!r}; save it "
                f"with commas between the columns {', '.join(VOTE_COLUMNS)} (+ optional "
                "response_time), e.g. pandas' to_csv or a spreadsheet's 'CSV (comma delimited)'"
            )
            raise AnnotationValidationError("\n".join(parts))
        if missing_cols:
            parts.append(f"  rule 'required column present': missing column(s) {missing_cols}")
        if unknown_cols:
            parts.append(
                f"  rule 'no unknown columns': unknown column(s) {unknown_cols}; "
                f"expected {list(VOTE_COLUMNS)} and optionally {list(OPTIONAL_VOTE_COLUMNS)}"
            )
        raise AnnotationValidationError("\n".join(parts))
    if frame.empty:
        raise AnnotationValidationError(
            f"Invalid annotations in {file}:\n  rule 'at least one vote': the file has no rows"
        )
    try:
        check_frame(frame, schema, file, "annotations")
    except AnnotationValidationError as exc:
        message = str(exc)
        if f"rule '{ITEM_RULE}'" in message:
            message += f"\n  ({NO_SOURCE_HINT})"
        if f"rule '{STUDY_RULE}'" in message:
            message += f"\n  ({OUTSIDE_STUDY_HINT})"
        raise AnnotationValidationError(message) from None
    votes = pd.DataFrame(
        {
            "item_id": frame["item_id"].map(to_int).astype("int64"),
            "annotator_id": frame["annotator_id"].astype(str).str.strip().astype(str),
            "choice": frame["choice"].map(normalise_choice).astype(str),
            "unsure": frame["unsure"].map(parse_bool).astype(bool),
            "response_time": pd.to_numeric(frame["response_time"], errors="coerce").astype(
                "float64"
            )
            if with_rt
            else np.full(len(frame), np.nan),
        }
    )
    if require_all_items:
        without = study_items.loc[~study_items["item_id"].isin(votes["item_id"])]
        if len(without):
            shown = without.head(MAX_SHOWN).to_string(index=False)
            raise AnnotationValidationError(
                f"Invalid annotations in {file}:\n  rule 'every study item has at least one vote': "
                f"{len(without)} study item(s) have no votes; first {min(MAX_SHOWN, len(without))}:\n"
                + "\n".join("    " + t for t in shown.splitlines())
                + "\n  (set annotation.require_votes_for_all_study_items: false to study only the annotated items)"
            )
    return votes
