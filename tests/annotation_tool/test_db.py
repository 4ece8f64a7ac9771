"""Schema creation, ordered migrations, WAL mode and the database's own constraints."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import IntegrityError

from soft_label_audit.annotation_tool import db


def test_fresh_database_is_migrated_to_the_latest_version(tmp_path):
    engine = db.make_engine(tmp_path / "a.db")
    assert db.current_version(engine) == 0
    assert db.migrate(engine) == [m[0] for m in db.MIGRATIONS]
    assert db.current_version(engine) == db.LATEST_VERSION
    assert db.migrate(engine) == []  # idempotent
    with engine.begin() as conn:
        versions = conn.execute(select(db.schema_version.c.version)).scalars().all()
    assert versions == [m[0] for m in db.MIGRATIONS]


def test_migrated_schema_matches_the_table_definitions_used_by_queries(tmp_path):
    engine = db.open_database(tmp_path / "a.db")
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) == set(db.metadata.tables)
    for name, table in db.metadata.tables.items():
        assert [c["name"] for c in inspector.get_columns(name)] == [c.name for c in table.columns]


def test_migrations_are_numbered_in_order():
    numbers = [m[0] for m in db.MIGRATIONS]
    assert numbers == list(range(1, len(numbers) + 1))


def test_database_newer_than_the_code_is_refused(tmp_path):
    engine = db.open_database(tmp_path / "a.db")
    with engine.begin() as conn:
        conn.execute(
            insert(db.schema_version).values(
                version=db.LATEST_VERSION + 1, name="from the future", applied_at=time.time()
            )
        )
    with pytest.raises(db.SchemaTooNewError, match="newer"):
        db.migrate(engine)


def test_wal_and_foreign_keys_are_on(tmp_path):
    engine = db.open_database(tmp_path / "a.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    assert (tmp_path / "a.db-wal").exists()


def _seed(engine):
    with engine.begin() as conn:
        conn.execute(
            insert(db.items).values(
                item_id=1,
                source="mnist",
                split="train",
                original_label=3,
                image=bytes(784),
                is_attention_check=False,
            )
        )
        conn.execute(
            insert(db.annotators).values(
                annotator_id=1, pseudonym="ann_x", token_sha256="h", created_at=0.0, active=True
            )
        )


def _vote(**over):
    return {
        "item_id": 1,
        "annotator_id": 1,
        "choice": "3",
        "unsure": False,
        "response_time": 1.0,
        "server_elapsed": 1.0,
        "created_at": 0.0,
        **over,
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"choice": "10"},  # CHECK on choice
        {"item_id": 2},  # foreign key to items
        {"annotator_id": 9},  # foreign key to annotators
        {"response_time": -1.0},  # CHECK on response time
    ],
)
def test_database_rejects_bad_votes_itself(tmp_path, bad):
    engine = db.open_database(tmp_path / "a.db")
    _seed(engine)
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            conn.execute(insert(db.votes).values(**_vote(**bad)))


def test_unique_vote_per_item_and_annotator(tmp_path):
    engine = db.open_database(tmp_path / "a.db")
    _seed(engine)
    with engine.begin() as conn:
        conn.execute(insert(db.votes).values(**_vote()))
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            conn.execute(insert(db.votes).values(**_vote(choice="4")))
    with engine.begin() as conn:
        assert conn.execute(select(db.votes.c.choice)).scalars().all() == ["3"]


def test_image_must_be_784_bytes(tmp_path):
    engine = db.open_database(tmp_path / "a.db")
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            conn.execute(
                insert(db.items).values(
                    item_id=1, source="mnist", image=bytes(100), is_attention_check=False
                )
            )


def test_a_version_4_database_is_upgraded_with_its_own_check_seed(tmp_path, monkeypatch):
    from soft_label_audit.annotation_tool import store

    path = tmp_path / "v4.db"
    with monkeypatch.context() as m:
        m.setattr(db, "MIGRATIONS", db.MIGRATIONS[:4])
        engine = db.open_database(path)
        with engine.begin() as conn:
            conn.execute(insert(db.settings).values(key="votes_per_item", value="5"))
        engine.dispose()
    engine = db.open_database(path)
    assert db.current_version(engine) == db.LATEST_VERSION == 5
    with engine.begin() as conn:
        settings = store.read_settings(conn)
    assert settings.votes_per_item == 5 and settings.attention_seed > 0
    assert db.migrate(engine) == []  # the seed is drawn once
    with engine.begin() as conn:
        assert store._read_settings(conn).attention_seed == settings.attention_seed


# Another process's SQLite connection (plain sqlite3, no project import: a quick start) on the
# database named by argv[1]: it writes a settings row and then either closes its connection
# ("close": the last connection of the whole file, if SQLite's locks say so, checkpoints and
# deletes the -wal and -shm files) or ends without closing it ("exit", like a server stopped
# by SIGTERM: its commit stays in the -wal file).
_OTHER_PROCESS = """
import os, sys, sqlite3
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("INSERT INTO settings (key, value) VALUES (?, '1')", (sys.argv[2],))
if sys.argv[3] == "close":
    conn.close()
    sys.exit(0)
os._exit(0)
"""


def _other_process_writes(path, key: str, how: str) -> None:
    subprocess.run([sys.executable, "-c", _OTHER_PROCESS, str(path), key, how], check=True)


def test_opening_a_database_again_keeps_this_process_locks(tmp_path):
    """Regression (CI, test_two_annotators_in_two_browsers): the test process held the
    engines of `init` and `add-annotator` open when it opened the database again to check the
    votes; every vote of the restarted server was missing from what it read.

    Opening a SQLite file used to open and close it once more (to make it owner-only), and
    closing any descriptor of a file drops all of the process's POSIX locks on it, SQLite's
    too. Another process closing its last connection (``serve --workers`` disposes its engine
    before forking) then got the exclusive lock that proves it the last user, checkpointed and
    deleted the -wal and -shm files under this process, whose connections kept reading the
    deleted -shm: the writes made afterwards, in the new -wal, were invisible here."""
    path = tmp_path / "a.db"
    first = db.open_database(path)  # its pooled connection stays open, as CliRunner's do
    second = db.open_database(path)
    _other_process_writes(path, "k_closed", "close")
    _other_process_writes(path, "k_exited", "exit")
    for engine in (second, first, db.open_database(path)):
        with db.reading(engine) as conn:
            keys = set(conn.execute(select(db.settings.c.key)).scalars())
        assert {"k_closed", "k_exited"} <= keys
    # the -wal file holding the second commit is still the one SQLite wrote it to
    assert (tmp_path / "a.db-wal").exists()
