"""Several annotators voting at once against a real waitress server on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter

import pytest
from sqlalchemy import select
from waitress.server import create_server

from soft_label_audit.annotation_tool import db, store
from soft_label_audit.annotation_tool.web import create_app

N_ANNOTATORS = 6
N_ITEMS = 12
VOTES_PER_ITEM = 3


@pytest.fixture
def server(make_db):
    engine = make_db(
        n_study=N_ITEMS,
        n_checks=0,
        votes_per_item=VOTES_PER_ITEM,
        attention_every=1000,
        name="concurrent.db",
    )
    srv = create_server(create_app(engine), host="127.0.0.1", port=0, threads=8)
    stopping = threading.Event()

    def run() -> None:
        try:
            srv.run()
        except OSError:  # the socket map loses its server socket when closed mid-select
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield engine, srv.effective_port
    stopping.set()
    srv.close()
    srv.task_dispatcher.shutdown()
    thread.join(timeout=5)
    assert not thread.is_alive()


def request(port, method, path, token, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"X-Annotator-Token": token}
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = json.loads(response.read() or b"null")
    conn.close()
    return response.status, data


def test_concurrent_annotators_lose_and_duplicate_nothing(server):
    engine, port = server
    tokens = [store.add_annotator(engine)[1] for _ in range(N_ANNOTATORS)]
    accepted: dict[str, list[tuple[int, str]]] = {t: [] for t in tokens}
    errors: list[str] = []
    start = threading.Barrier(N_ANNOTATORS)

    def annotate(k: int, token: str) -> None:
        try:
            start.wait()
            status, body = request(port, "GET", "/api/next", token)
            if status != 200:
                errors.append(f"annotator {k}: first item {status} {body}")
                return
            while not body["done"]:
                item_id = body["item"]["item_id"]
                choice = str((item_id + k) % 10)
                status, body = request(
                    port,
                    "POST",
                    "/api/vote",
                    token,
                    {
                        "item_id": item_id,
                        "choice": choice,
                        "unsure": k % 2 == 0,
                        "response_time": 0.3,
                    },
                )
                if status != 201:
                    errors.append(f"annotator {k}: {status} {body}")
                    return
                accepted[token].append((item_id, choice))
        except Exception as exc:  # surfaced below; a thread must not die silently
            errors.append(f"annotator {k}: {exc!r}")

    threads = [threading.Thread(target=annotate, args=(k, t)) for k, t in enumerate(tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors

    with engine.begin() as conn:
        rows = conn.execute(
            select(db.votes.c.item_id, db.annotators.c.token_sha256, db.votes.c.choice).join(
                db.annotators, db.annotators.c.annotator_id == db.votes.c.annotator_id
            )
        ).all()
    stored = Counter((r.token_sha256, r.item_id, r.choice) for r in rows)
    sent = Counter(
        (store.hash_token(t), item, choice)
        for t, votes in accepted.items()
        for item, choice in votes
    )
    assert stored == sent  # every acknowledged vote is stored, nothing else is
    assert len(rows) == N_ITEMS * VOTES_PER_ITEM
    per_item = Counter(r.item_id for r in rows)
    assert set(per_item.values()) == {VOTES_PER_ITEM} and len(per_item) == N_ITEMS
    assert max(Counter((r.token_sha256, r.item_id) for r in rows).values()) == 1


def test_simultaneous_replays_store_one_vote(server):
    engine, port = server
    _, token = store.add_annotator(engine)
    status, body = request(port, "GET", "/api/next", token)
    vote = {
        "item_id": body["item"]["item_id"],
        "choice": "5",
        "unsure": False,
        "response_time": 0.3,
    }
    n = 8
    start = threading.Barrier(n)
    statuses: list[int] = []

    def send() -> None:
        start.wait()
        statuses.append(request(port, "POST", "/api/vote", token, vote)[0])

    threads = [threading.Thread(target=send) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses) == [201] + [409] * (n - 1)
    with engine.begin() as conn:
        assert len(conn.execute(select(db.votes)).all()) == 1
