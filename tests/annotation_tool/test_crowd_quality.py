"""Votes a researcher can trust from strangers (issue 25): speed judged on the server's clock,
attention checks a bot cannot learn, and an exclusion rule over the whole session.

Time is the server's: the store's functions take the moment of each request (``now``), so an
annotator who answers in 1.5 s takes no wall-clock time here; the fast bot goes through the
web app and is timed by the server's real clock.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from sqlalchemy import select

from soft_label_audit.annotation_tool import db, store
from soft_label_audit.annotation_tool.cli import main
from soft_label_audit.annotation_tool.web import create_app

from .conftest import Api

N_VOTES = 80
#: the number of attention checks ``init`` adds by default
DEFAULT_CHECKS = next(
    p.default for p in main.commands["init"].params if p.name == "attention_checks"
)


def _items(engine) -> tuple[dict[int, str], dict[int, int]]:
    """Attention checks -> expected choice, study items -> original label."""
    with engine.begin() as conn:
        rows = conn.execute(
            select(
                db.items.c.item_id,
                db.items.c.is_attention_check,
                db.items.c.expected_choice,
                db.items.c.original_label,
            )
        ).all()
    checks = {r.item_id: r.expected_choice for r in rows if r.is_attention_check}
    labels = {r.item_id: int(r.original_label) for r in rows if not r.is_attention_check}
    return checks, labels


def _session(engine, answer, n: int, t0: float, seconds: float = 1.5) -> list[int]:
    """One annotator's session through the store, each answer ``seconds`` after its item was
    handed out (server time); ``answer(position, item_id)`` gives the choice. Returns the
    item ids in the order shown."""
    annotator, _ = store.add_annotator(engine)
    shown, now = [], t0
    for position in range(1, n + 1):
        assignment, _ = store.next_assignment(engine, annotator, now=now)
        if assignment is None:
            break
        shown.append(assignment.item_id)
        now += seconds
        vote = {
            "item_id": assignment.item_id,
            "choice": answer(position, assignment.item_id),
            "unsure": False,
            "response_time": seconds - 0.2,
        }
        store.record_vote(engine, annotator, vote, now=now)
    return shown


def test_neither_bot_reaches_the_export(make_db):
    # the study as `init` makes it by default: its number of checks, one every 10 votes
    engine = make_db(n_study=90, n_checks=DEFAULT_CHECKS, votes_per_item=5, attention_every=10)
    checks, labels = _items(engine)
    rng = random.Random(25)
    t0 = 1.9e9

    # a careful human: right on the checks, the digit's label on study items
    _session(engine, lambda _, item: checks.get(item) or str(labels[item]), N_VOTES, t0)

    # the fast bot claims 0.3 s per answer and even knows every check's answer: the server
    # measures a few milliseconds between handing out an item and receiving its vote
    api = Api(create_app(engine).test_client(), store.add_annotator(engine)[1])
    for _ in range(N_VOTES):
        item = api.next().get_json()["item"]
        choice = checks.get(item["item_id"]) or rng.choice("0123456789")
        r = api.vote(
            {"item_id": item["item_id"], "choice": choice, "unsure": False, "response_time": 0.3}
        )
        assert r.status_code == 201

    # the learning bot: on a first link it has the items at positions 11, 22, 33 and 44 (where
    # checks used to come, the same four for every link) answered rightly once, then on a
    # second link answers those items rightly when they come again and the rest at random,
    # at a human pace
    learned: dict[int, str] = {}

    def first_link(position: int, item: int) -> str:
        if position % 11 == 0:
            learned[item] = checks.get(item) or str(labels[item])
            return learned[item]
        return rng.choice("0123456789")

    _session(engine, first_link, 44, t0 + 1000)
    second = _session(
        engine, lambda _, item: learned.get(item) or rng.choice("0123456789"), N_VOTES, t0 + 2000
    )
    assert len(second) == N_VOTES

    frames = store.export_frames(engine)
    summary = frames["annotators"].set_index("annotator_id")
    human, fast_bot, first, learner = summary.index
    assert list(summary["kept"]) == [True, False, False, False], summary
    assert set(frames["raw_annotations"]["annotator_id"]) == {human}
    assert "on the server's clock" in summary.loc[fast_bot, "left_out"]
    assert summary.loc[fast_bot, "attention_accuracy"] == 1.0  # caught by speed alone
    assert "attention checks" in summary.loc[learner, "left_out"]
    # checks kept coming over the whole session: one in every block of 10 study votes
    # (80 items: 7 or 8 checks, wherever they were drawn), not four and then none
    assert summary.loc[learner, "n_attention_checks"] in (7, 8)
    assert summary.loc[human, "n_attention_checks"] in (7, 8)
    # both times are exported for every vote
    every = frames["all_votes"]
    assert len(every) == 4 * N_VOTES - (N_VOTES - 44)
    fast_rows = every[every["annotator_id"] == fast_bot]
    assert (fast_rows["response_time"] == 0.3).all()
    assert (fast_rows["server_response_time"] < 0.25).all() and fast_rows["fast"].all()
    human_rows = every[every["annotator_id"] == human]
    assert human_rows["server_response_time"].tolist() == pytest.approx([1.5] * N_VOTES)
    assert not human_rows["fast"].any()


def test_check_positions_are_drawn_per_annotator_and_reproducible():
    s = store.Settings(attention_every=10, attention_seed=7)
    first = [store.check_due_after(s, annotator, 0) for annotator in range(1, 101)]
    assert all(1 <= n <= 10 for n in first) and len(set(first)) == 10
    later = [store.check_due_after(s, 1, k) for k in range(50)]
    assert all(10 * k < n <= 10 * (k + 1) for k, n in enumerate(later))
    assert len({n - 10 * k for k, n in enumerate(later)}) > 5  # not one fixed offset
    assert later == [store.check_due_after(s, 1, k) for k in range(50)]
    other_seed = dataclasses.replace(s, attention_seed=8)
    assert later != [store.check_due_after(other_seed, 1, k) for k in range(50)]


def test_every_database_draws_its_own_check_seed(tmp_path):
    seeds = set()
    for name in ("a.db", "b.db"):
        with db.open_database(tmp_path / name).begin() as conn:
            seeds.add(store.read_settings(conn).attention_seed)
    assert len(seeds) == 2 and 0 not in seeds
