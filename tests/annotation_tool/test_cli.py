"""The admin command line: init, add-annotator, status, export, revoke."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from soft_label_audit.annotation_tool import db
from soft_label_audit.annotation_tool.cli import main
from soft_label_audit.annotation_tool.store import RAW_ANNOTATION_COLUMNS
from soft_label_audit.annotation_tool.web import create_app
from soft_label_audit.columns import CHOICES

from .conftest import Api, make_study_items

#: export options that keep the votes a test client sends as fast as it can
KEEP_FAST = ("--max-fast-share", "1")
LINK = re.compile(r"^(ann_[0-9a-f]{8})\thttp://127\.0\.0\.1:8050/a/([A-Za-z0-9_-]+)$", re.M)


@pytest.fixture
def tool(tmp_path, mnist_digits):
    """Paths of a database initialised through the CLI from parquet files."""
    study_path, digits_path = tmp_path / "study_items.parquet", tmp_path / "digits.parquet"
    make_study_items(mnist_digits, 6).to_parquet(study_path)
    mnist_digits.to_parquet(digits_path)
    db_path = tmp_path / "tool.db"
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(main, [*args, "--db", str(db_path)], catch_exceptions=False)
        return result

    r = run(
        "init",
        "--study-items",
        str(study_path),
        "--digits",
        str(digits_path),
        "--attention-checks",
        "2",
        "--votes-per-item",
        "2",
        "--attention-every",
        "2",
    )
    assert r.exit_code == 0, r.output
    assert "8 added" in r.output and "6 study items, 2 attention checks" in r.output
    return run, db_path, study_path, digits_path


def test_init_is_rerunnable_and_keeps_settings(tool):
    run, db_path, study_path, digits_path = tool
    r = run(
        "init",
        "--study-items",
        str(study_path),
        "--digits",
        str(digits_path),
        "--attention-checks",
        "2",
    )
    assert r.exit_code == 0 and "0 added, 8 already present" in r.output
    assert "votes_per_item=2" in r.output and "attention_every=2" in r.output


def test_init_names_a_missing_input(tmp_path):
    r = CliRunner().invoke(
        main,
        ["init", "--db", str(tmp_path / "x.db"), "--study-items", str(tmp_path / "nope.parquet")],
    )
    assert r.exit_code != 0 and "nope.parquet does not exist" in r.output


def test_commands_refuse_a_missing_database(tmp_path):
    for cmd in ("add-annotator", "status", "export", "serve"):
        r = CliRunner().invoke(main, [cmd, "--db", str(tmp_path / "none.db")])
        assert r.exit_code != 0 and "init" in r.output, cmd


def test_add_annotator_prints_personal_links(tool):
    run, *_ = tool
    r = run("add-annotator", "--count", "3")
    links = LINK.findall(r.output)
    assert len(links) == 3 and len({t for _, t in links}) == 3
    assert all(len(token) >= 32 for _, token in links)


def test_export_writes_the_raw_annotations_contract(tool, tmp_path):
    run, db_path, *_ = tool
    (p1, t1), (p2, t2) = LINK.findall(run("add-annotator", "--count", "2").output)
    engine = db.open_database(db_path)
    client = create_app(engine).test_client()
    with engine.begin() as conn:
        expected_check = dict(
            conn.execute(
                select(db.items.c.item_id, db.items.c.expected_choice).where(
                    db.items.c.is_attention_check.is_(True)
                )
            ).all()
        )
    expected, check_answers = [], []
    # with attention_every=2, each annotator's first 4 items hold exactly one check
    for token, pseud, choices in (
        (t1, p1, ["1", "none", "7", "8"]),
        (t2, p2, ["2", "3", "4", "5"]),
    ):
        api = Api(client, token)
        for k, choice in enumerate(choices):
            item_id = api.next().get_json()["item"]["item_id"]
            if item_id in expected_check:  # p1 answers it wrongly on purpose, p2 rightly
                choice = "none" if pseud == p1 else expected_check[item_id]
                check_answers.append((pseud, item_id))
            else:
                expected.append((item_id, pseud, choice, k % 2 == 1, 0.3 + k / 4))
            r = api.vote(
                {
                    "item_id": item_id,
                    "choice": choice,
                    "unsure": k % 2 == 1,
                    "response_time": 0.3 + k / 4,
                }
            )
            assert r.status_code == 201

    out = tmp_path / "export" / "votes.csv"
    r = run("export", "--out", str(out), "--min-attention-accuracy", "0", *KEEP_FAST)
    assert r.exit_code == 0, r.output
    raw = pd.read_csv(out, dtype={"choice": str})
    assert tuple(raw.columns) == RAW_ANNOTATION_COLUMNS
    assert raw["choice"].isin(CHOICES).all()
    assert raw["unsure"].dtype == bool
    assert not raw.duplicated(["item_id", "annotator_id"]).any()
    assert t1 not in out.read_text() and t2 not in out.read_text()
    got = list(raw.itertuples(index=False, name=None))
    assert [g[:4] for g in got] == [e[:4] for e in expected]
    assert [g[4] for g in got] == pytest.approx([e[4] for e in expected])

    checks = pd.read_csv(tmp_path / "export" / "votes_attention_checks.csv", dtype={"choice": str})
    assert check_answers == list(zip(checks["annotator_id"], checks["item_id"]))
    assert checks["correct"].tolist() == [False, True]
    assert checks.loc[0, "choice"] == "none"
    assert (checks["server_response_time"] >= 0).all()
    assert (checks["response_time"] > 0).all()
    every = pd.read_csv(tmp_path / "export" / "votes_all_votes.csv", dtype={"choice": str})
    assert len(every) == 8 and every["is_attention_check"].sum() == 2
    assert every["server_response_time"].notna().all() and every["left_out"].isna().all()

    parquet = tmp_path / "votes.parquet"
    assert (
        run("export", "--out", str(parquet), "--min-attention-accuracy", "0", *KEEP_FAST).exit_code
        == 0
    )
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), raw, check_dtype=False)

    r = run("export", "--out", str(out), "--min-attention-accuracy", "0.5", *KEEP_FAST)
    filtered = pd.read_csv(out, dtype={"choice": str})
    assert (
        set(filtered["annotator_id"]) == {p2} and f"{p1} (attention checks 0/1 correct)" in r.output
    )
    assert len(filtered) == 3


def test_status_and_revoke(tool):
    run, db_path, *_ = tool
    ((pseud, token),) = LINK.findall(run("add-annotator").output)
    r = run("status")
    assert "study_items: 6" in r.output and "attention_checks: 2" in r.output
    assert "annotators: 1" in r.output and f"schema_version: {db.LATEST_VERSION}" in r.output
    assert run("revoke", pseud).exit_code == 0
    client = create_app(db.open_database(db_path)).test_client()
    assert client.get(f"/a/{token}").status_code == 403
    assert run("revoke", "ann_nobody").exit_code != 0
