"""One test (or a few) per defect found by the attack-and-load test of the annotation tool.

Each failed on the tool as it was before the fix: a large body read before the 403, 500s on
out-of-range numbers, the token in error logs, "nothing was saved" after a saved vote, a
revoked annotator's reservation holding an item, a non-loopback bind without consent, any
Host header, 100 idle sockets blocking everyone, zero response times, annotators failing
every attention check exported, and read-only requests waiting for the write lock.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import urllib.request

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from soft_label_audit.annotation_tool import db, store
from soft_label_audit.annotation_tool.cli import main
from soft_label_audit.annotation_tool.web import create_app

from ..conftest import PROJECT_ROOT
from .conftest import Api, count_votes, db_arg, free_port


def raw_exchange(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
            if b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


# ------------------------------------------------------------ 1. body size before upload


def test_large_body_without_token_is_refused_before_it_is_uploaded(served):
    server, _ = served()
    headers = (
        b"POST /api/vote HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
    )
    start = time.monotonic()
    answer = raw_exchange(server.port, headers + b"{" * 1024, timeout=10)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - start < 10


# ------------------------------------------------------------ 2. no 500 on any input

NASTY_NUMBERS = [
    2**63,
    2**64,
    -(2**63) - 1,
    10**309,
    -1,
    2**31,
    1e308,
    -0.0,
    0,
    True,
    None,
    "1",
    [],
    {},
    1.5,
    float("1e-320"),
]
NASTY_CHOICES = ["3", 3, -1, 10, 2**70, "none", "", "\u0000", "x" * 300, None, [1], True]


def _fuzz_bodies(item_id: int) -> list[bytes]:
    rng = random.Random(13)
    bodies = []
    for iid, rt in itertools.product([item_id, *NASTY_NUMBERS], NASTY_NUMBERS):
        body = {
            "item_id": iid,
            "choice": rng.choice(NASTY_CHOICES),
            "unsure": rng.choice([True, False, 0, "no", None]),
            "response_time": rt,
        }
        if iid == item_id and rt in (-0.0, 0):
            body["choice"] = "3"  # a well-formed vote except for its zero response time
        bodies.append(json.dumps(body).encode())
    bodies += [
        b"[" * 4000,
        b"{" * 4000,
        b'{"item_id": ' + b"9" * 4000 + b"}",
        b'{"response_time": 1' + b"0" * 400 + b', "item_id": 1, "choice": "1"}',
        b"\xff\xfe\x00",
        b"",
        b"null",
        b"[]",
        b'"x"',
        b"1e999",
        b'{"a":' * 500,
    ]
    return bodies


def test_malformed_requests_get_4xx_never_500(engine, annotator):
    app = create_app(engine)
    app.testing = False  # a crash must surface as the 500 a client would see
    client = app.test_client()
    item_id = annotator.next().get_json()["item"]["item_id"]
    headers = {"X-Annotator-Token": annotator.token}
    statuses = []
    for body in _fuzz_bodies(item_id):
        r = client.post("/api/vote", data=body, content_type="application/json", headers=headers)
        statuses.append((r.status_code, body[:80]))
    for path in [
        f"/a/{annotator.token}/items/{2**63}.png",
        f"/a/{annotator.token}/items/-1.png",
        f"/a/{'x' * 5000}",
        "/a/%00",
        "/a/" + "9" * 400,
        f"/a/{annotator.token}/items/{10**30}.png",
        "/api/vote",
    ]:
        statuses.append((client.get(path, headers=headers).status_code, path[:80]))
    assert len(statuses) >= 200
    bad = [(s, b) for s, b in statuses if not 400 <= s < 500]
    assert not bad, bad[:10]
    assert count_votes(engine) == 0
    # the open item can still be answered properly
    r = annotator.vote({"item_id": item_id, "choice": "3", "unsure": False, "response_time": 0.5})
    assert r.status_code == 201


# ------------------------------------------------------------ 3. tokens never in logs


def test_token_is_not_logged_when_a_request_fails(engine, annotator, monkeypatch, caplog):
    app = create_app(engine)
    app.testing = False
    client = app.test_client()

    def broken(conn, token):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(store, "annotator_for_token", broken)
    with caplog.at_level(logging.DEBUG):
        assert client.get(f"/a/{annotator.token}").status_code == 500
        r = client.get("/api/next", headers={"X-Annotator-Token": annotator.token})
        assert r.status_code == 500
    logged = "\n".join(rec.getMessage() + (caplog.handler.format(rec)) for rec in caplog.records)
    assert "injected failure" in logged  # the failure is logged...
    assert annotator.token not in logged  # ...without the token


# ------------------------------------------------------------ 4. truthful errors


def test_vote_saved_but_next_item_failing_is_reported_as_saved(engine, annotator, monkeypatch):
    item_id = annotator.next().get_json()["item"]["item_id"]
    real_next = store._next_assignment_in

    def failing_next(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("injected: database locked"))

    monkeypatch.setattr(store, "_next_assignment_in", failing_next)
    r = annotator.vote({"item_id": item_id, "choice": "4", "unsure": False, "response_time": 0.5})
    body = r.get_json()
    assert count_votes(engine) == 1
    assert r.status_code == 201, body
    assert body["saved"] is True and "saved" in body["next_error"]
    assert "nothing was saved" not in json.dumps(body)
    monkeypatch.setattr(store, "_next_assignment_in", real_next)
    nxt = annotator.next().get_json()
    assert nxt["item"]["item_id"] != item_id and nxt["progress"]["done"] == 1


# ------------------------------------------------------------ 5. revocation frees work


def test_revoking_an_annotator_releases_their_reservation(make_db, tmp_path):
    engine = make_db(n_study=1, n_checks=0, votes_per_item=1, name="revoke.db")
    client = create_app(engine).test_client()
    (a, token_a), (_, token_b) = store.add_annotator(engine), store.add_annotator(engine)
    held = Api(client, token_a).next().get_json()["item"]["item_id"]
    assert Api(client, token_b).next().get_json()["done"] is True  # A holds the only item
    url = db_arg(engine)
    r = CliRunner().invoke(main, ["revoke", a.pseudonym, "--db", url])
    assert r.exit_code == 0, r.output
    body = Api(client, token_b).next().get_json()
    assert body["done"] is False and body["item"]["item_id"] == held
    assert Api(client, token_a).next().status_code == 403


# ------------------------------------------------------------ 6. safe exposure


def test_non_loopback_bind_needs_the_explicit_flag(tmp_path, make_db):
    engine = make_db(name="bind.db")
    url = db_arg(engine)
    cmd = [
        sys.executable,
        "-m",
        "soft_label_audit.annotation_tool",
        "serve",
        "--db",
        url,
        "--host",
        "0.0.0.0",
        "--port",
        str(free_port()),
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("serve --host 0.0.0.0 started serving without --allow-remote")
    assert done.returncode != 0 and "--allow-remote" in done.stderr
    done = subprocess.run(
        cmd + ["--allow-remote"], capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT
    )
    assert done.returncode != 0 and "--allowed-host" in done.stderr


def test_unknown_host_header_is_refused(engine, annotator):
    client = create_app(engine, allowed_hosts=["annotate.example.org"]).test_client()
    for host in ("evil.example", "annotate.example.org.evil.example", "127.0.0.1"):
        assert client.get(f"/a/{annotator.token}", headers={"Host": host}).status_code == 400
        r = client.get("/api/next", headers={"Host": host, "X-Annotator-Token": annotator.token})
        assert r.status_code == 400
    r = client.get(f"/a/{annotator.token}", headers={"Host": "annotate.example.org:443"})
    assert r.status_code == 200
    default = create_app(engine).test_client()  # loopback names only
    assert default.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert default.get("/", headers={"Host": "127.0.0.1:8050"}).status_code == 200


def test_idle_connections_do_not_block_other_annotators(served):
    server, _ = served()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(150)]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=10) as r:
            assert r.status == 200
    finally:
        for sock in idle:
            sock.close()


# ------------------------------------------------------------ 7. quality control by default


@pytest.mark.parametrize("rt", [0, 0.0, -0.0, 0.05])
def test_implausibly_fast_answers_are_refused(engine, annotator, rt):
    item_id = annotator.next().get_json()["item"]["item_id"]
    r = annotator.vote({"item_id": item_id, "choice": "1", "unsure": False, "response_time": rt})
    assert r.status_code == 400 and "response_time" in r.get_json()["error"]
    assert count_votes(engine) == 0


def test_annotators_failing_attention_checks_are_left_out_and_named(make_db, tmp_path):
    # max_fast_share=1: these votes come as fast as the test client sends them
    engine = make_db(
        n_study=6,
        n_checks=2,
        votes_per_item=2,
        attention_every=1,
        max_fast_share=1,
        name="quality.db",
    )
    client = create_app(engine).test_client()
    with engine.begin() as conn:
        checks = dict(
            conn.execute(
                select(db.items.c.item_id, db.items.c.expected_choice).where(
                    db.items.c.is_attention_check.is_(True)
                )
            ).all()
        )
    names = []
    for wrong in (True, False):
        annotator, token = store.add_annotator(engine)
        names.append(annotator.pseudonym)
        api = Api(client, token)
        for _ in range(4):  # study, check, study, check
            item_id = api.next().get_json()["item"]["item_id"]
            choice = "1"
            if item_id in checks:
                choice = "none" if wrong else checks[item_id]
            assert (
                api.vote(
                    {"item_id": item_id, "choice": choice, "unsure": False, "response_time": 0.5}
                ).status_code
                == 201
            )
    bad, good = names
    url = db_arg(engine)
    out = tmp_path / "votes.csv"
    r = CliRunner().invoke(main, ["export", "--db", url, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert set(pd.read_csv(out)["annotator_id"]) == {good}
    assert "left out (attention accuracy < 0.75 or no check answered" in r.output
    assert f"): {bad} (attention checks 0/2 correct)" in r.output
    r = CliRunner().invoke(main, ["status", "--db", url])
    assert f"excluded_annotators: {bad} (attention checks 0/2 correct)" in r.output


# ------------------------------------------------------------ 8. reads never wait for writers


def test_read_only_requests_do_not_wait_for_the_write_lock(tmp_path, make_db, backend):
    if backend != "sqlite":
        pytest.skip("SQLite's database-wide write lock; PostgreSQL has row locks")
    engine = make_db(name="locked.db")
    _, token = store.add_annotator(engine)
    client = create_app(engine).test_client()
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing (e.g. a long export)
    result = {}

    def page() -> None:
        result["status"] = client.get(f"/a/{token}").status_code

    thread = threading.Thread(target=page, daemon=True)
    thread.start()
    thread.join(timeout=5)
    answered_while_locked = dict(result)
    holder.execute("ROLLBACK")
    holder.close()
    thread.join(timeout=60)
    assert answered_while_locked.get("status") == 200


# ------------------------------------------------------------ 9. issue 25: smaller defects


def test_sqlite_files_are_created_owner_only(tmp_path, monkeypatch):
    os.umask(0o022)  # the usual umask, under which files are created world-readable
    path = tmp_path / "private.db"
    engine = db.open_database(path)
    _, token = store.add_annotator(engine)  # a write: the -wal and -shm files exist now
    modes = {
        suffix: stat.S_IMODE(os.stat(f"{path}{suffix}").st_mode) for suffix in ("", "-wal", "-shm")
    }
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
    engine.dispose()
    # a database created world-readable by an older version is made owner-only on opening
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            os.chmod(f"{path}{suffix}", 0o644)
    db.open_database(path).dispose()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_head_of_api_next_changes_nothing(engine, client, annotator):
    r = client.head("/api/next", headers={"X-Annotator-Token": annotator.token})
    assert r.status_code == 405 and r.headers["Allow"] == "GET"
    with engine.begin() as conn:
        assert conn.execute(select(db.assignments)).all() == []
    # GET still hands out the item, and HEAD after it leaves it as it is
    shown = annotator.next().get_json()["item"]["item_id"]
    client.head("/api/next", headers={"X-Annotator-Token": annotator.token})
    with engine.begin() as conn:
        rows = conn.execute(select(db.assignments.c.item_id)).scalars().all()
    assert rows == [shown]


def test_token_is_redacted_when_the_error_page_itself_fails(engine, annotator, monkeypatch):
    from waitress.server import create_server

    from soft_label_audit.annotation_tool import web

    def broken_page(*args, **kwargs):
        raise RuntimeError("injected: the template cannot be rendered")

    monkeypatch.setattr(web, "render_template", broken_page)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    loggers = [logging.getLogger("waitress"), logging.getLogger(web.__name__)]
    for logger in loggers:
        logger.addHandler(handler)
    app = create_app(engine)
    srv = create_server(app, host="127.0.0.1", port=0, threads=1)
    stopping = threading.Event()

    def run() -> None:
        try:
            srv.run()
        except OSError:  # the socket map loses its server socket when closed mid-select
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        # the page of a forged token: the 403 page fails, then the 500 page fails
        answer = raw_exchange(
            srv.effective_port,
            f"GET /a/{annotator.token[::-1]} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
        )
        answer += raw_exchange(
            srv.effective_port,
            f"GET /a/{annotator.token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
        )
    finally:
        stopping.set()
        srv.close()
        srv.task_dispatcher.shutdown()
        thread.join(timeout=5)
        for logger in loggers:
            logger.removeHandler(handler)
    assert answer.startswith(b"HTTP/1.1 500")
    formatter = logging.Formatter()
    logged = "\n".join(formatter.format(r) for r in records)
    assert "injected: the template cannot be rendered" in logged
    assert "/a/<redacted>" in logged
    assert annotator.token not in logged and annotator.token[::-1] not in logged


def test_init_against_an_unreachable_postgres_prints_one_line(tmp_path, mnist_digits):
    from .conftest import make_study_items

    study, digits = tmp_path / "study.parquet", tmp_path / "digits.parquet"
    make_study_items(mnist_digits, 4).to_parquet(study)
    mnist_digits.to_parquet(digits)
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://annotator:secret@127.0.0.1:{port}/campaign"
    r = CliRunner().invoke(
        main, ["init", "--db", url, "--study-items", str(study), "--digits", str(digits)]
    )
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert f"127.0.0.1:{port}/campaign" in lines[0] and "annotator" in lines[0]
    assert "secret" not in lines[0]
    assert "start the PostgreSQL server there or correct --db" in lines[0]
