"""``serve --workers N``: several server processes on one port, and the SQLite write lock
they take turns through (:mod:`soft_label_audit.annotation_tool.serving`)."""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from soft_label_audit.annotation_tool import db, store

from ..conftest import PROJECT_ROOT

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="--workers needs os.fork")
#: process handling does not depend on the database: these run on SQLite only
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def answers(port: int) -> bool:
    """Whether an HTTP server answers on the port (a refused connection, or a connection
    that yields no HTTP answer, e.g. TCP's self-connect to a free port, means no)."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/")
        conn.getresponse().read()
        conn.close()
        return True
    except (OSError, http.client.HTTPException):
        return False


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def vote_until_done(port: int, token: str, acknowledged: list, errors: list) -> None:
    """One annotator on one keep-alive connection: vote on every item shown until done."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"X-Annotator-Token": token, "Content-Type": "application/json"}
    try:
        conn.request("GET", "/api/next", headers=headers)
        body = json.loads(conn.getresponse().read())
        while not body["done"]:
            item_id = body["item"]["item_id"]
            vote = {"item_id": item_id, "choice": "1", "unsure": False, "response_time": 0.5}
            conn.request("POST", "/api/vote", body=json.dumps(vote), headers=headers)
            response = conn.getresponse()
            body = json.loads(response.read())
            if response.status != 201:
                errors.append((response.status, body))
                return
            acknowledged.append((token, item_id, body["vote_id"]))
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(repr(exc))
    finally:
        conn.close()


def all_vote_until_done(port: int, tokens: list[str]) -> tuple[list, list]:
    """Every annotator at once, each in a thread: (acknowledged votes, errors)."""
    acknowledged, errors = [], []
    threads = [
        threading.Thread(target=vote_until_done, args=(port, t, acknowledged, errors))
        for t in tokens
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return acknowledged, errors


def test_workers_share_the_port_and_lose_nothing(served):
    server, engine = served("--workers", "2", n_study=40)
    workers = children_of(server.proc.pid)
    assert len(workers) == 2, workers
    tokens = [store.add_annotator(engine)[1] for _ in range(6)]
    acknowledged, errors = all_vote_until_done(server.port, tokens)
    assert not errors, errors
    with engine.connect() as conn:
        stored = conn.execute(select(db.votes.c.vote_id, db.votes.c.item_id)).all()
        checks = set(
            conn.execute(
                select(db.items.c.item_id).where(db.items.c.is_attention_check.is_(True))
            ).scalars()
        )
    assert sorted(v for _, _, v in acknowledged) == sorted(v for v, _ in stored)
    per_item = Counter(item for _, item in stored if item not in checks)
    assert len(per_item) == 40 and set(per_item.values()) == {2}  # every item, to its quota
    assert children_of(server.proc.pid) == workers  # no worker died on the way


@SQLITE_ONLY
def test_kill_9_of_the_server_takes_its_workers_down(served):
    server, _ = served("--workers", "2")
    workers = children_of(server.proc.pid)
    assert len(workers) == 2
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)
    assert wait_until(lambda: not any(alive(pid) for pid in workers)), "orphaned workers"
    assert wait_until(lambda: not answers(server.port)), "something still serves the port"


@SQLITE_ONLY
def test_sigterm_stops_the_server_and_every_worker(served):
    server, _ = served("--workers", "3")
    workers = children_of(server.proc.pid)
    assert len(workers) == 3
    server.proc.terminate()
    assert server.proc.wait(timeout=20) == 0
    assert wait_until(lambda: not any(alive(pid) for pid in workers))


SUPERVISED = """
import os, sys, time
from soft_label_audit.annotation_tool import serving

marks, mode = sys.argv[1], sys.argv[2]
serving.MIN_UPTIME_S = 0.3


def run(index):
    n = len(os.listdir(marks))
    open(os.path.join(marks, str(n)), "w").close()
    if mode == "fails at start":
        raise RuntimeError("cannot open the database")
    if n == 0:  # the first start crashes after its start-up window, the next one serves
        time.sleep(0.6)
        os._exit(7)
    time.sleep(60)


try:
    serving.supervise(run, 1, log=lambda m: print(m, flush=True))
except serving.WorkerFailed as exc:
    print("failed:", exc, flush=True)
    sys.exit(2)
"""


def run_supervised(tmp_path: Path, mode: str) -> subprocess.Popen:
    script = tmp_path / "supervised.py"
    script.write_text(textwrap.dedent(SUPERVISED))
    marks = tmp_path / "marks"
    marks.mkdir()
    return subprocess.Popen(
        [sys.executable, str(script), str(marks), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=PROJECT_ROOT,
    )


def test_a_crashed_worker_is_started_again(tmp_path):
    proc = run_supervised(tmp_path, "crashes later")
    assert wait_until(lambda: len(list((tmp_path / "marks").iterdir())) == 2, timeout=20)
    proc.terminate()
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "worker 0 exited with status 7; starting it again" in out


def test_a_worker_failing_at_start_stops_the_server_with_the_reason(tmp_path):
    proc = run_supervised(tmp_path, "fails at start")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, out
    assert "cannot open the database" in out
    assert "failed: worker 0 exited with status 1 right after its start" in out
    assert len(list((tmp_path / "marks").iterdir())) == 1  # not started again and again


def test_sqlite_writers_wait_for_the_file_write_lock(tmp_path):
    # SQLite's: PostgreSQL orders writers itself
    engine = db.open_database(tmp_path / "locked.db", shared_writes=True)
    ran = threading.Event()
    fd = os.open(engine.url.database + "-writelock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process's writer holds it
        writer = threading.Thread(target=db.write, args=(engine, lambda conn: ran.set()))
        writer.start()
        assert not ran.wait(0.5), "a write ran while another process held the write lock"
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert ran.wait(10)
        writer.join(timeout=10)
    finally:
        os.close(fd)


@SQLITE_ONLY
def test_queued_requests_are_not_logged_one_by_one(served):
    """waitress warned "Task queue depth is N" on nearly every request under load (a fifth of
    the server's CPU in the load benchmark, under the lock its threads take work under)."""
    server, engine = served("--threads", "1", n_study=30)
    tokens = [store.add_annotator(engine)[1] for _ in range(6)]
    acknowledged, errors = all_vote_until_done(server.port, tokens)
    assert not errors and len(acknowledged) >= 60
    assert "Task queue depth" not in server.log.read_text()
