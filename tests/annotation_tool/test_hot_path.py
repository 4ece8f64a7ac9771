"""The vote path made cheap (issue 8): the open-item counter, cached tokens, the lean WSGI
path. Each test runs on SQLite and on PostgreSQL (see conftest)."""

from __future__ import annotations

import time

from sqlalchemy import event, select, update

from soft_label_audit.annotation_tool import db, store
from soft_label_audit.annotation_tool.item_sets import build_annotation_items
from soft_label_audit.annotation_tool.web import SECURITY_HEADERS, create_app

from .conftest import Api, count_votes, make_study_items, reopen


def counted_and_recounted(engine) -> tuple[int, int]:
    with engine.begin() as conn:
        counted = conn.execute(store.Q_FREE).scalar_one()
        quota = store.read_settings(conn).votes_per_item
        recounted = conn.execute(store.Q_COUNT_FREE, {"quota": quota}).scalar_one()
    return counted, recounted


def assert_counter_right(engine) -> None:
    counted, recounted = counted_and_recounted(engine)
    assert counted == recounted
    a, it, oa = db.assignments, db.items, db.open_item_assignees
    with engine.begin() as conn:
        quota = store.read_settings(conn).votes_per_item
        kept = set(conn.execute(select(oa.c.item_id, oa.c.annotator_id)).all())
        expected = set(
            conn.execute(
                select(a.c.item_id, a.c.annotator_id)
                .join(it, it.c.item_id == a.c.item_id)
                .where(it.c.is_attention_check.is_(False), it.c.n_assigned < quota)
            ).all()
        )
    assert kept == expected


def test_open_item_counter_follows_every_change_of_the_queue(make_db, mnist_digits):
    engine = make_db(n_study=8, n_checks=1, votes_per_item=2, attention_every=3)
    client = create_app(engine).test_client()
    apis = [Api(client, store.add_annotator(engine)[1]) for _ in range(3)]
    assert counted_and_recounted(engine) == (8, 8)
    for _ in range(3):  # reservations and votes, attention checks among them
        for api in apis:
            api.vote_current()
            assert_counter_right(engine)
    # a lapsed lease on an item the others filled meanwhile is dropped
    with engine.begin() as conn:
        conn.execute(
            update(db.assignments)
            .values(shown_at=time.time() - 10_000)
            .where(db.assignments.c.completed_at.is_(None))
        )
    for api in apis:
        api.next()
        assert_counter_right(engine)
    # revoking releases a reservation
    pseudonym = store.find_annotator(engine, apis[0].token).pseudonym
    store.revoke(engine, pseudonym)
    assert_counter_right(engine)
    # a new quota and new items are recounted
    store.write_settings(engine, votes_per_item=3)
    assert_counter_right(engine)
    store.insert_items(
        engine, build_annotation_items(make_study_items(mnist_digits, 12), mnist_digits, 1)
    )
    assert_counter_right(engine)
    counted, _ = counted_and_recounted(engine)
    assert counted > 0


def test_cached_token_is_refused_once_another_process_revokes_it(engine, client):
    _, token = store.add_annotator(engine)
    api = Api(client, token)
    item_id = api.next().get_json()["item"]["item_id"]  # the app now knows the token
    with reopen(engine).begin() as conn:  # another process (the CLI) revokes it
        conn.execute(update(db.annotators).values(active=False))
    r = api.vote({"item_id": item_id, "choice": "3", "unsure": False, "response_time": 0.5})
    assert r.status_code == 403 and "revoked" in r.get_json()["error"]
    assert api.next().status_code == 403
    assert count_votes(engine) == 0


def test_lean_path_answers_like_the_flask_routes(engine, client):
    _, token = store.add_annotator(engine)
    api = Api(client, token)
    first = api.next()  # through Flask: the token is not known yet
    again = api.next()  # the lean path
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json()
    for r in (first, again):
        assert r.mimetype == "application/json"
        for key, value in SECURITY_HEADERS.items():
            assert r.headers[key] == value
    item_id = again.get_json()["item"]["item_id"]
    r = api.vote({"item_id": item_id, "choice": "3", "unsure": False, "response_time": 0.5})
    assert r.status_code == 201 and r.get_json()["saved"] is True
    assert r.headers["X-Frame-Options"] == "DENY"
    # refusals on the lean path: the same JSON errors as through Flask
    replay = api.vote({"item_id": item_id, "choice": "3", "unsure": False, "response_time": 0.5})
    assert replay.status_code == 409 and "already voted" in replay.get_json()["error"]
    bad = client.post(
        "/api/vote",
        data=b"{",
        content_type="application/json",
        headers={"X-Annotator-Token": token},
    )
    assert (
        bad.status_code == 400 and bad.get_json()["error"] == "the request body is not valid JSON"
    )
    wrong_type = client.post(
        "/api/vote", data=b"{}", content_type="text/plain", headers={"X-Annotator-Token": token}
    )
    assert wrong_type.status_code == 400 and "Content-Type" in wrong_type.get_json()["error"]
    other_host = client.get(
        "/api/next", headers={"X-Annotator-Token": token, "Host": "evil.example"}
    )
    assert other_host.status_code == 400
    assert count_votes(engine) == 1


def test_vote_and_next_item_commit_in_one_transaction(engine, client):
    _, token = store.add_annotator(engine)
    api = Api(client, token)
    item_id = api.next().get_json()["item"]["item_id"]
    commits = []

    def on_commit(conn):
        commits.append(conn)

    event.listen(engine, "commit", on_commit)
    try:
        r = api.vote({"item_id": item_id, "choice": "3", "unsure": False, "response_time": 0.5})
    finally:
        event.remove(engine, "commit", on_commit)
    assert r.status_code == 201 and r.get_json()["item"]["item_id"] != item_id
    # one write transaction, which also read the next item's image
    assert len(commits) == 1, len(commits)
    with engine.begin() as conn:
        open_items = (
            conn.execute(
                select(db.assignments.c.item_id).where(db.assignments.c.completed_at.is_(None))
            )
            .scalars()
            .all()
        )
    assert open_items == [r.get_json()["item"]["item_id"]]
