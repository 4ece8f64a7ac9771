"""The annotation tool's database: SQLite in WAL mode through SQLAlchemy Core.

The schema is created and migrated by the application itself: ``schema_version`` records
every migration applied, and :data:`MIGRATIONS` lists them in order. A migration runs in one
transaction together with its version row, so a crash mid-migration leaves the previous
version intact. The :class:`~sqlalchemy.Table` objects below mirror the schema after the last
migration and are what every query is built from (never by formatting SQL strings).

Every transaction starts with ``BEGIN IMMEDIATE``: a writer takes SQLite's write lock before
it reads, so two requests can never both read "item has 2 of 3 votes" and both write the
third. Other writers wait on the lock (``busy_timeout``) instead of failing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    event,
    select,
)

#: seconds a writer waits for SQLite's write lock before giving up
BUSY_TIMEOUT_S = 30.0

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("name", String, nullable=False),
    Column("applied_at", Float, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", String, nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("item_id", Integer, primary_key=True, autoincrement=False),
    Column("source", String, nullable=False),
    Column("split", String),
    Column("original_label", Integer),
    Column("image", LargeBinary, nullable=False),
    Column("is_attention_check", Boolean, nullable=False),
    Column("expected_choice", String),
)

annotators = Table(
    "annotators",
    metadata,
    Column("annotator_id", Integer, primary_key=True),
    Column("pseudonym", String, nullable=False, unique=True),
    Column("token_sha256", String, nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("active", Boolean, nullable=False),
)

assignments = Table(
    "assignments",
    metadata,
    Column("assignment_id", Integer, primary_key=True),
    Column("item_id", Integer, ForeignKey("items.item_id"), nullable=False),
    Column("annotator_id", Integer, ForeignKey("annotators.annotator_id"), nullable=False),
    Column("shown_at", Float, nullable=False),
    Column("completed_at", Float),
    UniqueConstraint("item_id", "annotator_id", name="uq_assignment_item_annotator"),
)

votes = Table(
    "votes",
    metadata,
    Column("vote_id", Integer, primary_key=True),
    Column("item_id", Integer, ForeignKey("items.item_id"), nullable=False),
    Column("annotator_id", Integer, ForeignKey("annotators.annotator_id"), nullable=False),
    Column("choice", String, nullable=False),
    Column("unsure", Boolean, nullable=False),
    Column("response_time", Float, nullable=False),
    Column("server_elapsed", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("item_id", "annotator_id", name="uq_vote_item_annotator"),
)

#: (version, name, DDL statements), applied in order; never edit a released migration,
#: append a new one.
MIGRATIONS: Sequence[tuple[int, str, Sequence[str]]] = (
    (
        1,
        "initial schema",
        (
            """CREATE TABLE settings (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL
            )""",
            """CREATE TABLE items (
                item_id INTEGER PRIMARY KEY,
                source TEXT NOT NULL,
                split TEXT,
                original_label INTEGER CHECK (original_label BETWEEN 0 AND 9),
                image BLOB NOT NULL CHECK (length(image) = 784),
                is_attention_check BOOLEAN NOT NULL,
                expected_choice TEXT
            )""",
            """CREATE TABLE annotators (
                annotator_id INTEGER PRIMARY KEY,
                pseudonym TEXT NOT NULL UNIQUE,
                token_sha256 TEXT NOT NULL UNIQUE,
                created_at REAL NOT NULL,
                active BOOLEAN NOT NULL
            )""",
            """CREATE TABLE assignments (
                assignment_id INTEGER PRIMARY KEY,
                item_id INTEGER NOT NULL REFERENCES items(item_id),
                annotator_id INTEGER NOT NULL REFERENCES annotators(annotator_id),
                shown_at REAL NOT NULL,
                completed_at REAL,
                CONSTRAINT uq_assignment_item_annotator UNIQUE (item_id, annotator_id)
            )""",
            """CREATE TABLE votes (
                vote_id INTEGER PRIMARY KEY,
                item_id INTEGER NOT NULL REFERENCES items(item_id),
                annotator_id INTEGER NOT NULL REFERENCES annotators(annotator_id),
                choice TEXT NOT NULL
                    CHECK (choice IN ('0','1','2','3','4','5','6','7','8','9','none')),
                unsure BOOLEAN NOT NULL,
                response_time REAL NOT NULL CHECK (response_time >= 0),
                server_elapsed REAL NOT NULL,
                created_at REAL NOT NULL,
                CONSTRAINT uq_vote_item_annotator UNIQUE (item_id, annotator_id)
            )""",
            "CREATE INDEX ix_votes_item ON votes (item_id)",
            "CREATE INDEX ix_assignments_annotator ON assignments (annotator_id, completed_at)",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1][0]


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer version of the tool than this one."""


def make_engine(db_path: str | Path) -> Engine:
    """A SQLAlchemy engine on the SQLite file ``db_path`` (created when missing).

    Pragmas per connection: WAL journal (readers never block the writer), ``synchronous=FULL``
    (a committed vote survives a crash of the process or the machine), foreign keys on, and a
    busy timeout so concurrent writers queue instead of failing.
    """
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        f"sqlite:///{db_path}",
        connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every test
        # SQLAlchemy, not the sqlite3 module, emits BEGIN (see the SQLite dialect docs).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover - exercised by every test
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def current_version(engine: Engine) -> int:
    """The schema version of the database (0 for an empty one)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        version = conn.execute(select(schema_version.c.version).order_by(
            schema_version.c.version.desc()).limit(1)).scalar()
    return int(version or 0)


def migrate(engine: Engine) -> list[int]:
    """Apply every migration newer than the database's version; return the versions applied.

    Each migration and its ``schema_version`` row commit together. A database newer than this
    code raises :class:`SchemaTooNewError` rather than being touched.
    """
    version = current_version(engine)
    if version > LATEST_VERSION:
        raise SchemaTooNewError(
            f"database schema version {version} is newer than this tool's {LATEST_VERSION}; "
            "upgrade the tool instead of downgrading the database"
        )
    applied = []
    for number, name, statements in MIGRATIONS:
        if number <= version:
            continue
        with engine.begin() as conn:
            # re-check under the write lock: another process may have migrated meanwhile
            done = conn.execute(
                select(schema_version.c.version).where(schema_version.c.version == number)
            ).first()
            if done:
                continue
            for statement in statements:
                conn.exec_driver_sql(statement)
            conn.execute(
                schema_version.insert().values(version=number, name=name, applied_at=time.time())
            )
        applied.append(number)
    return applied


def open_database(db_path: str | Path) -> Engine:
    """Engine on ``db_path`` with the schema migrated to the latest version."""
    engine = make_engine(db_path)
    migrate(engine)
    return engine
