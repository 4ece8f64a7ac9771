"""Every validation rule has a bad-input case; the message names file, rule and rows."""

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.crowd.validation import AnnotationValidationError, validate_votes

STUDY = pd.DataFrame({"item_id": [10, 11, 12]})
FILE = "data/01_raw/votes.csv"


def good_votes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["10", "10", "11", "12"],
            "annotator_id": ["a", "b", "a", "b"],
            "choice": ["3", "none", "7", "1"],
            "unsure": ["false", "true", "0", "1"],
            "response_time": ["1.5", "", "2", "0.7"],
        }
    ).replace("", np.nan)


def test_good_votes_are_typed_by_the_contract():
    votes = validate_votes(good_votes(), STUDY, FILE)
    assert votes.dtypes.astype(str).to_dict() == {
        "item_id": "int64",
        "annotator_id": "str",
        "choice": "str",
        "unsure": "bool",
        "response_time": "float64",
    }
    assert votes["unsure"].tolist() == [False, True, False, True]
    assert votes["choice"].tolist() == ["3", "none", "7", "1"]


def test_parquet_like_types_are_accepted():
    frame = pd.DataFrame(
        {
            "item_id": [10, 11, 12],
            "annotator_id": ["a", "a", "a"],
            "choice": [3, "None", 9],
            "unsure": [True, False, False],
        }
    )
    votes = validate_votes(frame, STUDY, FILE)
    assert votes["choice"].tolist() == ["3", "none", "9"]
    assert votes["response_time"].isna().all()


def _message(frame, study=STUDY, **kw) -> str:
    with pytest.raises(AnnotationValidationError) as err:
        validate_votes(frame, study, FILE, **kw)
    message = str(err.value)
    assert FILE in message
    return message


@pytest.mark.parametrize(
    "column, value, rule",
    [
        ("item_id", "99", "item_id is a study item"),
        ("item_id", "ten", "item_id is an integer"),
        ("item_id", "10.5", "item_id is an integer"),
        ("choice", "10", 'choice is one of "0".."9" or "none"'),
        ("choice", "maybe", 'choice is one of "0".."9" or "none"'),
        ("unsure", "perhaps", "unsure is a boolean"),
        ("response_time", "-1", "response_time is a non-negative number"),
        ("item_id", np.nan, "no missing values (NaN/empty) in column item_id"),
        ("choice", np.nan, "no missing values (NaN/empty) in column choice"),
    ],
)
def test_each_cell_rule_names_rule_rows_and_count(column, value, rule):
    frame = good_votes()
    frame.loc[2, column] = value
    message = _message(frame)
    assert f"rule '{rule}" in message
    assert "1 offending row(s)" in message
    assert "\n    2 " in message  # the offending row is shown with its row number


def test_duplicate_votes():
    frame = pd.concat([good_votes(), good_votes().iloc[[0]]], ignore_index=True)
    message = _message(frame)
    assert "rule 'one vote per (item_id, annotator_id)': 2 offending row(s)" in message


def test_missing_and_unknown_columns():
    message = _message(good_votes().drop(columns=["unsure"]).assign(label="x"))
    assert "missing column(s) ['unsure']" in message
    assert "unknown column(s) ['label']" in message


def test_items_without_votes_and_the_opt_out():
    study = pd.DataFrame({"item_id": [10, 11, 12, 13, 14]})
    message = _message(good_votes(), study=study)
    assert "rule 'every study item has at least one vote': 2 study item(s)" in message
    assert "13" in message and "14" in message
    assert len(validate_votes(good_votes(), study, FILE, require_all_items=False)) == 4


def test_counts_and_shows_at_most_five_rows():
    frame = pd.concat([good_votes()] * 1, ignore_index=True)
    many = pd.DataFrame(
        {
            "item_id": ["10"] * 8,
            "annotator_id": [f"x{i}" for i in range(8)],
            "choice": ["12"] * 8,
            "unsure": ["0"] * 8,
            "response_time": [1.0] * 8,
        }
    )
    message = _message(pd.concat([frame, many], ignore_index=True))
    assert "8 offending row(s); first 5" in message


def test_empty_file():
    assert "at least one vote" in _message(good_votes().iloc[:0])


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_file_not_separated_by_commas_is_named_as_such(tmp_path, sep):
    """A spreadsheet's 'CSV' with semicolons reads as one column: the message says why."""
    from soft_label_audit.crowd.inputs import read_votes_file

    path = tmp_path / "votes.csv"
    good_votes().to_csv(path, sep=sep, index=False)
    message = _message(read_votes_file(path))
    assert "rule 'comma-separated': the file is not comma-separated" in message
    assert f"split by {sep!r}" in message
    assert len(message.splitlines()) == 2


def test_a_comma_separated_file_with_a_semicolon_in_a_cell_is_read_as_votes(tmp_path):
    from soft_label_audit.crowd.inputs import read_votes_file

    path = tmp_path / "votes.csv"
    good_votes().assign(annotator_id=["a;1", "b", "a;1", "b"]).to_csv(path, index=False)
    assert len(validate_votes(read_votes_file(path), STUDY, FILE)) == 4
