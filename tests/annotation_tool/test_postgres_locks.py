"""PostgreSQL under interleavings and the lapsed-reservation load (issue 25): the quota check
is one consistent read, and item locks cannot deadlock or stall.

Every test here runs on PostgreSQL only (SQLite's single writer serialises every write
transaction, so neither defect can occur there).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import event, func, select

from soft_label_audit.annotation_tool import db, store

pytestmark = pytest.mark.postgres


@pytest.fixture
def backend():
    return "postgres"


def _vote(item_id: int, rt: float = 0.4) -> dict:
    return {"item_id": item_id, "choice": "1", "unsure": False, "response_time": rt}


def test_a_vote_committing_mid_check_does_not_hand_out_a_full_item(make_db, monkeypatch):
    engine = make_db(n_study=1, n_checks=0, votes_per_item=3, lease_seconds=60)
    people = {name: store.add_annotator(engine)[0] for name in "ABCDE"}

    def next_item(name: str, now: float):
        assignment, _ = store.next_assignment(engine, people[name], now=now)
        return None if assignment is None else assignment.item_id

    (item,) = {next_item("D", 0.0), next_item("B", 0.0)}
    store.record_vote(engine, people["B"], _vote(item), now=0.5)
    # D's reservation has lapsed by t=100: A and then E are given the item; it is now full
    # (B voted, A and E hold live reservations), D's lapsed reservation notwithstanding
    assert next_item("A", 100.0) == item
    assert next_item("E", 100.0) == item

    # C asks at t=100. Right after C's transaction has read the votes on the item, A's vote
    # commits (on another connection): widen that gap, deterministically
    fired, voter = threading.Event(), {}
    c_thread = threading.get_ident()

    def a_votes_now(statement: str) -> None:
        if fired.is_set() or threading.get_ident() != c_thread:
            return
        if "FROM votes" not in statement or "count(" not in statement.lower():
            return
        fired.set()
        voter["thread"] = threading.Thread(
            target=lambda: voter.setdefault(
                "vote", store.record_vote(engine, people["A"], _vote(item), now=100.5)
            )
        )
        voter["thread"].start()
        voter["thread"].join(timeout=2)  # a vote that waits for C's lock waits on after C

    def after_execute(conn, cursor, statement, *args):
        a_votes_now(statement)

    driver_execute = db._driver_execute

    def hooked_driver_execute(conn, sql, args=()):
        cursor = driver_execute(conn, sql, args)
        a_votes_now(sql)
        return cursor

    event.listen(engine, "after_cursor_execute", after_execute)
    monkeypatch.setattr(db, "_driver_execute", hooked_driver_execute)
    try:
        given_to_c = next_item("C", 100.0)
    finally:
        event.remove(engine, "after_cursor_execute", after_execute)
        monkeypatch.setattr(db, "_driver_execute", driver_execute)
    voter["thread"].join(timeout=10)
    assert fired.is_set()
    assert "vote" in voter  # A's vote was accepted, during or after C's look-up
    assert given_to_c is None  # B's and A's votes and E's reservation fill the quota
    store.record_vote(engine, people["E"], _vote(item), now=101.0)
    with pytest.raises(store.VoteRejected, match="completed it meanwhile"):
        store.record_vote(engine, people["D"], _vote(item), now=101.0)
    with engine.begin() as conn:
        n_votes = conn.execute(select(func.count()).select_from(db.votes)).scalar_one()
    assert n_votes == 3


#: the lapsed-reservation load: 1 s leases, a third of the clients holding each item 1.5 s
N_CLIENTS, N_STALLED, STALL_S = 15, 5, 1.5


def test_lapsed_reservations_under_load_neither_deadlock_nor_stall(
    make_db, postgres_server, monkeypatch
):
    engine = make_db(n_study=30, n_checks=0, votes_per_item=3, lease_seconds=1)
    deadlocks: list[str] = []
    write = db.write

    def counting_write(engine_, fn, retries=3):
        def job(conn):
            try:
                return fn(conn)
            except Exception as exc:
                if getattr(getattr(exc, "orig", None), "sqlstate", None) == "40P01":
                    deadlocks.append(str(exc.orig).splitlines()[0])
                raise

        return write(engine_, job, retries)

    monkeypatch.setattr(db, "write", counting_write)
    log = postgres_server.root / "server.log"
    log_before = log.read_text(errors="replace").count("deadlock detected")
    annotators = [store.add_annotator(engine)[0] for _ in range(N_CLIENTS)]
    next_times: list[float] = []
    problems: list[str] = []
    finished = []

    def client(k: int) -> None:
        me, stall = annotators[k], STALL_S if k < N_STALLED else 0.0
        try:
            t0 = time.perf_counter()
            assignment, _ = store.next_assignment(engine, me)
            next_times.append(time.perf_counter() - t0)
            while assignment is not None:
                time.sleep(stall)
                t0 = time.perf_counter()
                try:
                    outcome = store.record_vote_and_next(
                        engine, me, _vote(assignment.item_id, rt=stall or 0.3)
                    )
                except store.VoteRejected as exc:  # 409: the lease lapsed, others filled it
                    if exc.status != 409:
                        raise
                    assignment, _ = store.next_assignment(engine, me)
                else:
                    if outcome.next_error:
                        problems.append(
                            f"client {k}: saved without a next item: {outcome.next_error}"
                        )
                        assignment, _ = store.next_assignment(engine, me)
                    else:
                        assignment = outcome.assignment
                next_times.append(time.perf_counter() - t0)
            finished.append(k)
        except Exception as exc:  # surfaced below
            problems.append(f"client {k}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(N_CLIENTS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    wall = time.perf_counter() - start
    with engine.begin() as conn:
        per_item = Counter(conn.execute(select(db.votes.c.item_id)).scalars())
    assert not problems, problems
    assert sorted(finished) == list(range(N_CLIENTS))
    assert set(per_item.values()) == {3} and len(per_item) == 30  # complete, none over quota
    assert deadlocks == []
    assert log.read_text(errors="replace").count("deadlock detected") == log_before
    assert max(next_times) < 1.0, (max(next_times), wall)
