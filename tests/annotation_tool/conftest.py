"""Fixtures of the annotation tool tests: small item sets made of real MNIST images.

``make_db`` (and everything built on it: ``engine``, ``client``, ``annotator``) runs each test
twice: on a SQLite file and on a PostgreSQL database of a server the session starts itself
from the machine's binaries (marker ``postgres``; ``pytest -m postgres`` runs those alone).
Without PostgreSQL binaries the postgres runs are skipped, saying so; with them, a server
that fails to start is an error.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from soft_label_audit.annotation_tool import db, store
from soft_label_audit.annotation_tool.item_sets import build_annotation_items
from soft_label_audit.annotation_tool.local_postgres import LocalPostgres, find_bin_dir
from soft_label_audit.annotation_tool.web import create_app
from soft_label_audit.data_sources.tables import images_to_column

from ..conftest import PROJECT_ROOT

#: MNIST training images used as the `digits` table of the tests (ids 0..N_DIGITS-1)
N_DIGITS = 600
#: the attention-check seed of the tests' databases
ATTENTION_SEED = 20261201


@pytest.fixture(scope="session")
def mnist_digits(mnist_arrays) -> pd.DataFrame:
    """A `digits` table of the first N_DIGITS real MNIST training images."""
    m = mnist_arrays
    return pd.DataFrame(
        {
            "item_id": np.arange(N_DIGITS, dtype=np.int64),
            "source": "mnist",
            "original_label": m["train_labels"][:N_DIGITS].astype(np.int64),
            "image": images_to_column(m["train_images"][:N_DIGITS]),
        }
    )


def make_study_items(digits: pd.DataFrame, n: int) -> pd.DataFrame:
    study = digits.iloc[:n][["item_id", "source", "original_label"]].copy()
    study["split"] = np.array(["train", "val", "test"])[np.arange(n) % 3]
    return study


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the session (fsync off: nothing to protect)."""
    if find_bin_dir() is None:
        pytest.skip(
            "PostgreSQL server binaries not found (Debian: apt-get install -y "
            "postgresql); the postgres variants of the annotation tool tests need them"
        )
    server = LocalPostgres(durable=False).start()
    yield server
    server.stop()


_DB_NUMBER = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request):
    return request.param


@pytest.fixture
def db_url(request, backend, tmp_path):
    """Factory: the URL (or SQLite path) of a new, empty database named after ``name``."""
    created = []

    def _url(name="annotation.db") -> str:
        if backend == "sqlite":
            return str(tmp_path / name)
        server = request.getfixturevalue("postgres_server")
        url = server.create_database(f"t{next(_DB_NUMBER)}_{name.split('.')[0]}")
        created.append(url)
        return url

    return _url


@pytest.fixture
def make_db(db_url, mnist_digits):
    """Factory: a migrated database holding ``n_study`` study items and ``n_checks`` checks."""
    engines = []

    def _make(n_study=6, n_checks=2, name="annotation.db", **settings):
        engine = db.open_database(db_url(name))
        engines.append(engine)
        items = build_annotation_items(
            make_study_items(mnist_digits, n_study), mnist_digits, n_attention_checks=n_checks
        )
        store.insert_items(engine, items)
        # the attention-check positions of a test do not depend on the random seed a new
        # database draws
        store.write_settings(engine, **{"attention_seed": ATTENTION_SEED, **settings})
        return engine

    yield _make
    for engine in engines:
        engine.dispose()


def db_arg(engine) -> str:
    """What ``--db`` takes for this engine's database: the SQLite file path, or the URL."""
    if engine.dialect.name == "sqlite":
        return engine.url.database
    return engine.url.render_as_string(hide_password=False)


def reopen(engine):
    """A second engine on the same database, as another process would open it."""
    return db.open_database(engine.url.render_as_string(hide_password=False))


@pytest.fixture
def engine(make_db):
    return make_db(n_study=6, n_checks=2, votes_per_item=2, attention_every=100)


@pytest.fixture
def client(engine):
    app = create_app(engine)
    app.testing = True
    return app.test_client()


def count_votes(engine) -> int:
    with engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(db.votes)).scalar_one()


class Api:
    """The annotator API through Flask's test client, as one annotator."""

    def __init__(self, client, token: str):
        self.client, self.token = client, token

    def next(self):
        return self.client.get("/api/next", headers={"X-Annotator-Token": self.token})

    def vote(self, body, **kwargs):
        return self.client.post(
            "/api/vote", json=body, headers={"X-Annotator-Token": self.token}, **kwargs
        )

    def vote_current(self, choice="3", unsure=False, response_time=0.5):
        item = self.next().get_json()["item"]
        body = {
            "item_id": item["item_id"],
            "choice": choice,
            "unsure": unsure,
            "response_time": response_time,
        }
        return item["item_id"], self.vote(body)


@pytest.fixture
def annotator(engine, client):
    _, token = store.add_annotator(engine)
    return Api(client, token)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """``python -m soft_label_audit.annotation_tool serve`` in a subprocess, as documented."""

    def __init__(self, db_path: str, tmp_path: Path, *extra: str):
        self.port = free_port()
        self.log = tmp_path / f"serve-{self.port}.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "soft_label_audit.annotation_tool",
                "serve",
                "--db",
                db_path,
                "--port",
                str(self.port),
                *extra,
            ],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer: {self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def served(make_db, backend, tmp_path):
    """Factory: a served database (file or PostgreSQL URL); stopped at the end."""
    servers = []

    def _serve(*extra: str, n_study: int = 4) -> tuple[Served, object]:
        engine = make_db(n_study=n_study, n_checks=1, votes_per_item=2, name="served.db")
        server = Served(db_arg(engine), tmp_path, *extra)
        servers.append(server)
        return server, engine

    yield _serve
    for server in servers:
        server.stop()
