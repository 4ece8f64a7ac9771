"""The annotation tool's rules, on top of the database in :mod:`.db`.

* Annotators are known by the SHA-256 of their random token; the token itself is printed
  once by ``add-annotator`` and never stored. Exports name annotators by a pseudonym.
* Assignment: an annotator is shown one item at a time (an *assignment*). Reloading the page
  or restarting the server shows the same open assignment again, so work resumes where it
  stopped. A study item is handed out until ``votes + live reservations`` reaches
  ``votes_per_item``, where an open assignment of an *active* annotator is live for
  ``lease_seconds`` after it was shown; revoking an annotator releases their reservation.
  Items closest to completion go first, then a fixed shuffled order that starts at a
  different place for each annotator; the ``(item, annotator)`` unique constraints mean
  nobody sees an item twice.
* The queue is read through counters kept in the same transactions as the rows they count:
  ``items.n_assigned`` (assignments of the item, open or completed) and the annotator's
  ``n_study_done``/``n_checks_done``. The next item is one index seek on
  ``(is_attention_check, n_assigned, shuffle_key)``; an item whose count includes lapsed
  reservations is found through the index of open assignments.
* Attention checks: one in every block of ``attention_every`` study votes, at a position
  drawn per annotator and block from the database's secret ``attention_seed``
  (:func:`check_due_after`), the check itself drawn from those the annotator has not seen;
  once they have seen every check, no more study items. Checks have no quota and are
  indistinguishable from study items in the API.
* A vote is accepted only for the annotator's open assignment, once, in one transaction
  together with closing that assignment. Client-measured response times must be at least
  ``min_response_time`` and at most the time the server saw pass since the item was shown;
  the server's own measurement is stored beside it (``server_elapsed``).
* Quality control (:class:`QualityRules`), over each annotator's whole session: the export
  leaves out annotators whose attention-check accuracy is below ``min_attention_accuracy``
  or who answered no check, and those more of whose votes than ``max_fast_share`` the
  server saw answered in under ``min_response_time``; ``status`` and the export name them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import re
import secrets
import time
import weakref
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from soft_label_audit.annotation_tool import db
from soft_label_audit.columns import CHOICES

if TYPE_CHECKING:  # pandas and numpy serve the export only: `serve` starts without them
    import pandas as pd

#: export columns: the `raw_annotations` contract (architecture.md) with response_time
RAW_ANNOTATION_COLUMNS = ("item_id", "annotator_id", "choice", "unsure", "response_time")
ATTENTION_COLUMNS = (
    "annotator_id",
    "item_id",
    "expected_choice",
    "choice",
    "correct",
    "unsure",
    "response_time",
    "server_response_time",
)
#: every vote, study items and attention checks, with both times and why it is left out of
#: ``raw_annotations`` (empty when it is in it)
ALL_VOTE_COLUMNS = (
    "vote_id",
    "item_id",
    "annotator_id",
    "choice",
    "unsure",
    "response_time",
    "server_response_time",
    "fast",
    "is_attention_check",
    "expected_choice",
    "left_out",
)
#: seconds by which a client-measured response time may exceed what the server measured
RESPONSE_TIME_TOLERANCE_S = 2.0
#: no response time above this is plausible (a day); larger numbers are refused at parsing
MAX_RESPONSE_TIME_S = 86_400.0
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
VOTE_FIELDS = frozenset({"item_id", "choice", "unsure", "response_time"})


@dataclass(frozen=True)
class Settings:
    """Study settings, stored in the database's ``settings`` table."""

    votes_per_item: int = 3
    attention_every: int = 10
    max_items_per_annotator: int = 0  # 0: no cap
    lease_seconds: float = 900.0
    #: seconds; nobody reads a digit in less. A vote whose client-reported time is shorter
    #: is refused; a vote the server itself saw answered faster (from handing out the item
    #: to receiving the vote) is stored and counted as *fast* (see ``max_fast_share``)
    min_response_time: float = 0.25
    #: the export leaves out annotators whose attention-check accuracy is below this
    min_attention_accuracy: float = 0.75
    #: the export leaves out annotators more of whose votes than this share were fast
    max_fast_share: float = 0.1
    #: secret seed of the attention-check positions and draws (a random one is stored in
    #: each database by migration 5)
    attention_seed: int = 0

    def validated(self) -> Settings:
        if self.votes_per_item < 1:
            raise ValueError("votes_per_item must be at least 1")
        if self.attention_every < 1:
            raise ValueError("attention_every must be at least 1")
        if self.max_items_per_annotator < 0:
            raise ValueError("max_items_per_annotator must be 0 (no cap) or positive")
        if not self.lease_seconds > 0:
            raise ValueError("lease_seconds must be positive")
        if not 0 <= self.min_response_time < MAX_RESPONSE_TIME_S:
            raise ValueError(f"min_response_time must be in [0, {MAX_RESPONSE_TIME_S:g}) s")
        if not 0 <= self.min_attention_accuracy <= 1:
            raise ValueError("min_attention_accuracy must be in [0, 1]")
        if not 0 <= self.max_fast_share <= 1:
            raise ValueError("max_fast_share must be in [0, 1]")
        return self


class VoteRejected(Exception):
    """A request the server refuses; ``status`` is the HTTP status, ``message`` says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Annotator:
    annotator_id: int
    pseudonym: str


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


@dataclass(frozen=True)
class Assignment:
    item_id: int
    shown_at: float
    #: the item's image (raw 28x28 bytes), read in the transaction that handed it out
    image: bytes | None = dataclasses.field(default=None, compare=False, repr=False)


# --------------------------------------------------------------------------- settings


#: seconds the settings (and the number of attention checks) read by a process stay cached:
#: a change made by ``init`` in another process applies within this time
SETTINGS_TTL_S = 1.0
_CACHE: weakref.WeakKeyDictionary[Engine, dict[str, tuple[float, Any]]] = (
    weakref.WeakKeyDictionary()
)


def _cached(conn: Connection, name: str, load) -> Any:
    entries = _CACHE.get(conn.engine)
    if entries is None:
        entries = _CACHE.setdefault(conn.engine, {})
    hit = entries.get(name)
    now = time.monotonic()
    if hit is not None and now - hit[0] < SETTINGS_TTL_S:
        return hit[1]
    value = load()
    entries[name] = (now, value)
    return value


def read_settings(conn: Connection) -> Settings:
    return _cached(conn, "settings", lambda: _read_settings(conn))


def _read_settings(conn: Connection) -> Settings:
    stored = dict(conn.execute(select(db.settings.c.key, db.settings.c.value)).all())
    defaults = Settings()
    values = {}
    for field, default in asdict(defaults).items():
        values[field] = type(default)(stored[field]) if field in stored else default
    return Settings(**values)


def write_settings(engine: Engine, **changes: Any) -> Settings:
    """Update the given settings (None values are ignored); returns the settings in force."""
    _CACHE.clear()
    with engine.begin() as conn:
        current = asdict(_read_settings(conn))
        unknown = set(changes) - set(current)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}")
        current.update({k: v for k, v in changes.items() if v is not None})
        new = Settings(**current).validated()
        for key, value in asdict(new).items():
            conn.execute(db.settings.delete().where(db.settings.c.key == key))
            conn.execute(insert(db.settings).values(key=key, value=str(value)))
        recount_open_items(conn, new.votes_per_item)
    _CACHE.clear()
    return new


# --------------------------------------------------------------------------- items


def shuffle_key(item_id: int) -> int:
    """The item's place in the shuffled order (the same formula as migration 2)."""
    return (int(item_id) * db.SHUFFLE_MULTIPLIER) % db.SHUFFLE_MODULUS


def insert_items(engine: Engine, frame: pd.DataFrame) -> dict[str, int]:
    """Insert the rows of an item table (see :mod:`.item_sets`) that are not there yet.

    Items already in the database are left as they are (their votes refer to them), so
    ``init`` can be re-run. Returns counts of ``added`` and ``kept`` items.
    """
    import pandas as pd

    rows = []
    for r in frame.itertuples(index=False):
        item_id = int(r.item_id)
        if not 0 <= item_id <= db.MAX_ITEM_ID:
            raise ValueError(f"item table: item_id {item_id} outside 0..{db.MAX_ITEM_ID}")
        split = r.split
        rows.append(
            {
                "item_id": item_id,
                "source": str(r.source),
                "split": None
                if split is None or (isinstance(split, float) and math.isnan(split))
                else str(split),
                "original_label": None if pd.isna(r.original_label) else int(r.original_label),
                "image": bytes(r.image),
                "is_attention_check": bool(r.is_attention_check),
                "expected_choice": None if r.expected_choice is None else str(r.expected_choice),
                "n_assigned": 0,
                "shuffle_key": shuffle_key(item_id),
            }
        )
    _CACHE.clear()
    with engine.begin() as conn:
        existing = set(conn.execute(select(db.items.c.item_id)).scalars())
        new_rows = [r for r in rows if r["item_id"] not in existing]
        if new_rows:
            conn.execute(insert(db.items), new_rows)
        recount_open_items(conn, _read_settings(conn).votes_per_item)
    return {"added": len(new_rows), "kept": len(rows) - len(new_rows)}


def item_image(conn: Connection, item_id: int) -> bytes | None:
    row = db.run(conn, Q_IMAGE, {"item": item_id}).fetchone()
    return None if row is None else bytes(row[0])


# --------------------------------------------------------------------------- statements
# The statements of the vote path, built once: building a Core statement costs more than
# running it on SQLite. Values come in as bound parameters.

_an, _a, _it, _v = db.annotators, db.assignments, db.items, db.votes
_MINE = db.assignments.alias("mine")
_NOT_MINE = ~(
    select(_MINE.c.assignment_id)
    .where(_MINE.c.item_id == _it.c.item_id, _MINE.c.annotator_id == bindparam("me"))
    .correlate(_it)
    .exists()
)
Q_IMAGE = select(_it.c.image).where(_it.c.item_id == bindparam("item"))
Q_TOKEN = select(_an.c.annotator_id, _an.c.pseudonym).where(
    _an.c.token_sha256 == bindparam("sha"), _an.c.active.is_(True)
)
Q_LOCK_ME = (
    select(_an.c.active, _an.c.n_study_done, _an.c.n_checks_done)
    .where(_an.c.annotator_id == bindparam("me"))
    .with_for_update()
)
Q_OPEN = (
    select(_a.c.assignment_id, _a.c.item_id, _a.c.shown_at, _it.c.is_attention_check)
    .join(_it, _it.c.item_id == _a.c.item_id)
    .where(_a.c.annotator_id == bindparam("me"), _a.c.completed_at.is_(None))
)
# Item rows are locked FOR NO KEY UPDATE (``key_share=True``) on PostgreSQL: that lock
# serializes reservers of an item, but does not conflict with the FOR KEY SHARE lock that
# a vote or an assignment takes on the item it references. With FOR UPDATE, an annotator
# whose transaction has just voted on an item would hide it from every other annotator's
# SKIP LOCKED seek until that transaction ends.
Q_SEEK = {
    upper: (
        select(_it.c.item_id)
        .where(
            _it.c.is_attention_check.is_(False),
            _it.c.n_assigned == bindparam("level"),
            (_it.c.shuffle_key < bindparam("offset"))
            if upper
            else (_it.c.shuffle_key >= bindparam("offset")),
            _NOT_MINE,
        )
        .order_by(_it.c.shuffle_key)
        .limit(1)
        .with_for_update(skip_locked=True, key_share=True)
    )
    for upper in (False, True)
}
Q_FREE = select(db.queue_counts.c.value).where(db.queue_counts.c.name == db.OPEN_STUDY_ITEMS)
Q_COUNT_FREE = (
    select(func.count())
    .select_from(_it)
    .where(_it.c.is_attention_check.is_(False), _it.c.n_assigned < bindparam("quota"))
)
S_FREE_ADD = (
    update(db.queue_counts)
    .where(db.queue_counts.c.name == db.OPEN_STUDY_ITEMS)
    .values(value=db.queue_counts.c.value + bindparam("delta"))
)
_oa = db.open_item_assignees
# the annotator's assignments of items still open to others: one index range, however many
# items the annotator has done
Q_MINE_FREE = select(func.count()).select_from(_oa).where(_oa.c.annotator_id == bindparam("me"))
S_ITEM_CLOSED = _oa.delete().where(_oa.c.item_id == bindparam("item"))
S_ITEM_REOPENED = insert(_oa).from_select(
    ["item_id", "annotator_id"],
    select(_a.c.item_id, _a.c.annotator_id).where(
        _a.c.item_id == bindparam("item"), _a.c.annotator_id != bindparam("me")
    ),
)
S_OPEN_ASSIGNEE = insert(_oa).values(item_id=bindparam("item"), annotator_id=bindparam("me"))
S_OPEN_ASSIGNEE_GONE = _oa.delete().where(
    _oa.c.item_id == bindparam("item"), _oa.c.annotator_id == bindparam("me")
)
Q_N_CHECKS = select(func.count()).select_from(_it).where(_it.c.is_attention_check.is_(True))
Q_N_STUDY = select(func.count()).select_from(_it).where(_it.c.is_attention_check.is_(False))
S_RESERVE = insert(_a).values(
    item_id=bindparam("item"), annotator_id=bindparam("me"), shown_at=bindparam("now")
)
S_COUNT_UP = (
    update(_it)
    .where(_it.c.item_id == bindparam("item"))
    .values(n_assigned=_it.c.n_assigned + 1)
    .returning(_it.c.n_assigned, _it.c.is_attention_check)
)
S_COUNT_DOWN = (
    update(_it)
    .where(_it.c.item_id == bindparam("item"))
    .values(n_assigned=_it.c.n_assigned - 1)
    .returning(_it.c.n_assigned, _it.c.is_attention_check)
)
# the attention checks this annotator has not been given yet
Q_UNSEEN_CHECKS = (
    select(_it.c.item_id)
    .where(_it.c.is_attention_check.is_(True), _NOT_MINE)
    .order_by(_it.c.item_id)
)
_LIVE, _LAPSED = db.assignments.alias("live"), db.assignments.alias("lapsed")


def _taken_expr(item: Any) -> Any:
    """Votes on ``item`` plus the live (open, shown since ``:since``) reservations of other
    active annotators, as one SQL expression: read in one statement, so under one snapshot
    (a vote commits its vote row and the closing of its reservation together: two
    statements could see neither)."""
    votes_n = select(func.count()).select_from(_v).where(_v.c.item_id == item).scalar_subquery()
    live_n = (
        select(func.count())
        .select_from(_LIVE.join(_an, _an.c.annotator_id == _LIVE.c.annotator_id))
        .where(
            _LIVE.c.item_id == item,
            _LIVE.c.completed_at.is_(None),
            _LIVE.c.shown_at >= bindparam("since"),
            _LIVE.c.annotator_id != bindparam("me"),
            _an.c.active.is_(True),
        )
        .scalar_subquery()
    )
    return votes_n + live_n


Q_TAKEN = select(_taken_expr(bindparam("item")))
Q_LOCK_ITEM = (
    select(_it.c.item_id).where(_it.c.item_id == bindparam("item")).with_for_update(key_share=True)
)
Q_LOCK_ITEM_SKIP = (
    select(_it.c.item_id)
    .where(_it.c.item_id == bindparam("item"))
    .with_for_update(key_share=True, skip_locked=True)
)
#: most items with lapsed reservations one look-up considers
LAPSED_CANDIDATES = 20
# study items held by a lapsed reservation that this annotator was never given and that
# still need a vote as of this statement's snapshot (re-checked under the item's lock)
Q_LAPSED = (
    select(_LAPSED.c.item_id)
    .join(_it, _it.c.item_id == _LAPSED.c.item_id)
    .where(
        _LAPSED.c.completed_at.is_(None),
        _LAPSED.c.shown_at < bindparam("since"),
        _it.c.is_attention_check.is_(False),
        _NOT_MINE,
        _taken_expr(_LAPSED.c.item_id) < bindparam("quota"),
    )
    .distinct()
    .order_by(_LAPSED.c.item_id)
    .limit(LAPSED_CANDIDATES)
)
# the voted item, the annotator's earlier vote on it and their open assignment of it, in one
# statement: (is_attention_check, vote_id or None, assignment_id or None, shown_at or None)
Q_VOTE_TARGET = (
    select(
        _it.c.is_attention_check,
        select(_v.c.vote_id)
        .where(_v.c.item_id == _it.c.item_id, _v.c.annotator_id == bindparam("me"))
        .correlate(_it)
        .scalar_subquery(),
        _a.c.assignment_id,
        _a.c.shown_at,
    )
    .select_from(
        _it.outerjoin(
            _a,
            (_a.c.item_id == _it.c.item_id)
            & (_a.c.annotator_id == bindparam("me"))
            & _a.c.completed_at.is_(None),
        )
    )
    .where(_it.c.item_id == bindparam("item"))
    # the voted item's row, locked (PostgreSQL) before anything else of the vote is read: a
    # vote and a reserver of the same item take turns, so a vote can never commit between
    # a reserver's count and its reservation
    .with_for_update(key_share=True, of=_it)
)
S_VOTE = (
    insert(_v)
    .values(
        item_id=bindparam("item"),
        annotator_id=bindparam("me"),
        choice=bindparam("choice"),
        unsure=bindparam("unsure"),
        response_time=bindparam("rt"),
        server_elapsed=bindparam("elapsed"),
        created_at=bindparam("now"),
    )
    .returning(_v.c.vote_id)
)
S_COMPLETE = (
    update(_a).where(_a.c.assignment_id == bindparam("aid")).values(completed_at=bindparam("now"))
)
S_DONE_UP = {
    column: (
        update(_an).where(_an.c.annotator_id == bindparam("me")).values({column: _an.c[column] + 1})
    )
    for column in ("n_study_done", "n_checks_done")
}


def _count_moved(conn: Connection, stmt: Any, item_id: int, quota: int, annotator_id: int) -> None:
    """Move ``items.n_assigned`` of one item by one and keep in step what follows from it:
    the count of open study items (fewer than ``quota`` assignments) and
    ``open_item_assignees``. ``S_COUNT_UP``: ``annotator_id`` has just been given the item
    (their assignment row exists); ``S_COUNT_DOWN``: their assignment of it is being removed
    (before or after its row is deleted). The UPDATE locks the item's row first."""
    n_assigned, is_check = db.run(conn, stmt, {"item": item_id}).fetchone()
    if is_check:
        return
    keys = {"item": item_id, "me": annotator_id}
    if stmt is S_COUNT_UP:
        if n_assigned < quota:
            db.run(conn, S_OPEN_ASSIGNEE, keys)
        elif n_assigned == quota:  # now full: nobody else is given it
            db.run(conn, S_FREE_ADD, {"delta": -1})
            db.run(conn, S_ITEM_CLOSED, keys)
    elif n_assigned == quota - 1:  # open again, for everyone but the leaving annotator
        db.run(conn, S_FREE_ADD, {"delta": 1})
        db.run(conn, S_ITEM_REOPENED, keys)
    elif n_assigned < quota - 1:
        db.run(conn, S_OPEN_ASSIGNEE_GONE, keys)


def recount_open_items(conn: Connection, quota: int) -> None:
    """Recount the open study items and their assignees (after new items or a new
    ``votes_per_item``)."""
    n_open = conn.execute(Q_COUNT_FREE, {"quota": quota}).scalar_one()
    conn.execute(db.queue_counts.delete().where(db.queue_counts.c.name == db.OPEN_STUDY_ITEMS))
    conn.execute(insert(db.queue_counts).values(name=db.OPEN_STUDY_ITEMS, value=int(n_open)))
    conn.execute(_oa.delete())
    conn.execute(
        insert(_oa).from_select(
            ["item_id", "annotator_id"],
            select(_a.c.item_id, _a.c.annotator_id)
            .join(_it, _it.c.item_id == _a.c.item_id)
            .where(_it.c.is_attention_check.is_(False), _it.c.n_assigned < quota),
        )
    )


# --------------------------------------------------------------------------- annotators


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_annotator(engine: Engine) -> tuple[Annotator, str]:
    """Create an annotator with a fresh random token; returns it and the token (shown once)."""
    token = secrets.token_urlsafe(24)
    with engine.begin() as conn:
        while True:
            pseudonym = f"ann_{secrets.token_hex(4)}"
            taken = conn.execute(
                select(db.annotators.c.annotator_id).where(db.annotators.c.pseudonym == pseudonym)
            ).first()
            if not taken:
                break
        annotator_id = conn.execute(
            insert(db.annotators).values(
                pseudonym=pseudonym,
                token_sha256=hash_token(token),
                created_at=time.time(),
                active=True,
                n_study_done=0,
                n_checks_done=0,
            )
        ).inserted_primary_key[0]
    return Annotator(int(annotator_id), pseudonym), token


def annotator_for_token(conn: Connection, token: str | None) -> Annotator | None:
    """The active annotator holding ``token``, or None (unknown, malformed or revoked)."""
    if not token or not TOKEN_PATTERN.match(token):
        return None
    row = db.run(conn, Q_TOKEN, {"sha": hash_token(token)}).fetchone()
    return Annotator(int(row[0]), row[1]) if row else None


def find_annotator(engine: Engine, token: str | None) -> Annotator | None:
    """:func:`annotator_for_token` in a read transaction of its own."""
    if not token or not TOKEN_PATTERN.match(token):
        return None
    with db.reading(engine) as conn:
        return annotator_for_token(conn, token)


def revoke(engine: Engine, pseudonym: str) -> int | None:
    """Deactivate an annotator and release their open reservation (their votes stay).

    Returns the number of reservations released, or None when no annotator has that name.
    """
    an, a = db.annotators, db.assignments

    def job(conn: Connection) -> int | None:
        quota = read_settings(conn).votes_per_item
        row = conn.execute(
            select(an.c.annotator_id).where(an.c.pseudonym == pseudonym).with_for_update()
        ).first()
        if row is None:
            return None
        conn.execute(update(an).where(an.c.annotator_id == row.annotator_id).values(active=False))
        open_items = (
            conn.execute(
                select(a.c.item_id).where(
                    a.c.annotator_id == row.annotator_id, a.c.completed_at.is_(None)
                )
            )
            .scalars()
            .all()
        )
        for item_id in open_items:
            _count_moved(conn, S_COUNT_DOWN, item_id, quota, row.annotator_id)
        conn.execute(
            a.delete().where(a.c.annotator_id == row.annotator_id, a.c.completed_at.is_(None))
        )
        return len(open_items)

    return db.write(engine, job)


@dataclass(frozen=True)
class _Me:
    annotator_id: int
    n_study_done: int
    n_checks_done: int


def _lock_me(conn: Connection, annotator: Annotator) -> _Me:
    """Lock the annotator's row (PostgreSQL; SQLite's write lock covers it) and re-check
    that they are still active: a revoke may have committed since the token was looked up."""
    row = db.run(conn, Q_LOCK_ME, {"me": annotator.annotator_id}).fetchone()
    if row is None or not row[0]:
        raise VoteRejected(403, "unknown or revoked annotator token")
    return _Me(annotator.annotator_id, int(row[1]), int(row[2]))


# --------------------------------------------------------------------------- assignment


def _taken_by_others(
    conn: Connection, item_id: int, annotator_id: int, now: float, s: Settings
) -> int:
    """Votes on the item plus live (unexpired, open) reservations of other active annotators,
    in one statement (:func:`_taken_expr`). The caller holds the item's row lock."""
    params = {"item": item_id, "me": annotator_id, "since": now - s.lease_seconds}
    return int(db.run(conn, Q_TAKEN, params).fetchone()[0])


@functools.lru_cache(maxsize=65_536)
def _annotator_offset(annotator_id: int) -> int:
    """Where the annotator's walk through the shuffled order starts."""
    digest = hashlib.sha256(f"annotator:{annotator_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % db.SHUFFLE_MODULUS


def _draw(seed: int, *key: object) -> int:
    """A reproducible pseudo-random 64-bit number for ``key`` under the study's secret seed."""
    digest = hashlib.sha256(":".join(map(str, (seed, *key))).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def check_due_after(s: Settings, annotator_id: int, k: int) -> int:
    """The number of study votes after which the annotator's ``k``-th attention check
    (0-based) is due: one check in every block of ``attention_every`` study votes, at a
    position drawn per annotator and block, so ``k * attention_every + 1`` to
    ``(k + 1) * attention_every``."""
    return (
        k * s.attention_every
        + 1
        + _draw(s.attention_seed, "at", annotator_id, k) % (s.attention_every)
    )


def _check_due(s: Settings, me: _Me) -> bool:
    return me.n_study_done >= check_due_after(s, me.annotator_id, me.n_checks_done)


def _next_check(conn: Connection, me: _Me, s: Settings) -> int | None:
    """An attention check the annotator has not been given, drawn at random (seeded per
    annotator and check) from those left; None when they have all been given."""
    unseen = [row[0] for row in db.run(conn, Q_UNSEEN_CHECKS, {"me": me.annotator_id})]
    if not unseen:
        return None
    return int(
        unseen[_draw(s.attention_seed, "pick", me.annotator_id, me.n_checks_done) % len(unseen)]
    )


#: PostgreSQL: seconds a look-up for the next study item may spend waiting for items other
#: transactions hold locked (it then answers 503: retry), and its longest single pause
SKIPPED_WAIT_S = 0.5
SKIPPED_PAUSE_S = 0.02


class QueueBusy(VoteRejected):
    """Every item this annotator could get is being handed out by other transactions."""

    def __init__(self) -> None:
        super().__init__(503, "the next item is being handed out; please retry in a moment")


class _WouldWait(Exception):
    """The look-up would have to wait for skipped items, and its caller holds a lock that
    others may be waiting for (a vote's item): it picks the next item after its commit."""


def _next_study(
    conn: Connection, me: _Me, s: Settings, now: float, wait: bool = True
) -> int | None:
    """The next study item for the annotator, locked (PostgreSQL) for the caller to reserve.

    Fast path: items whose assignment count is below the quota, fullest first; within a
    count, the shuffled order from the annotator's offset (wrapping round). The count
    includes lapsed reservations, so it never under-counts: an item it yields is free. Items
    held only by lapsed reservations are then looked up (one statement) and each checked
    exactly under its lock.

    Locks (PostgreSQL): every item lock taken here is ``SKIP LOCKED``, so this never waits
    for a lock while it holds another item's (the only waits for an item lock are a voter's
    on its voted item and an annotator's on their own open item, each taken before any
    other item lock): no deadlock can form. Skipped items may still need a vote once their
    holders commit, so the look-up is repeated, for :data:`SKIPPED_WAIT_S` at most, and
    then answered with :class:`QueueBusy` rather than "done" too early. A transaction only
    waits holding no item lock another one could want: a lapsed item found full is
    released at once (its lock was taken in a savepoint), and a vote's transaction, which
    holds its item, raises :class:`_WouldWait` (``wait=False``) instead of waiting.
    """
    offset = _annotator_offset(me.annotator_id)
    postgres = conn.dialect.name == "postgresql"
    waited, attempt = 0.0, 0
    while True:
        for level in range(s.votes_per_item - 1, -1, -1):
            for upper in (False, True):
                row = db.run(
                    conn, Q_SEEK[upper], {"level": level, "offset": offset, "me": me.annotator_id}
                ).fetchone()
                if row is not None:
                    return int(row[0])
        since = now - s.lease_seconds
        lapsed = [
            int(row[0])
            for row in db.run(
                conn, Q_LAPSED, {"since": since, "me": me.annotator_id, "quota": s.votes_per_item}
            )
        ]
        skipped = False
        for item_id in lapsed:
            try:
                return db.in_savepoint(conn, lambda c, i=item_id: _lock_if_free(c, i, me, s, now))
            except _Locked:
                skipped = True  # another transaction is reserving it or voting on it
            except _Full:
                pass  # the savepoint's rollback released its lock
        # SKIP LOCKED passed over items other transactions hold; one of them may still need
        # a vote once they commit (each statement sees the newest commits)
        if not postgres or (not skipped and _available_study(conn, me) == 0):
            return None
        if not wait:
            raise _WouldWait()
        if waited >= SKIPPED_WAIT_S:
            raise QueueBusy()
        attempt += 1
        pause = min(0.002 * attempt, SKIPPED_PAUSE_S, SKIPPED_WAIT_S - waited)
        time.sleep(pause)
        waited += pause


class _Locked(Exception):
    pass


class _Full(Exception):
    pass


def _lock_if_free(conn: Connection, item_id: int, me: _Me, s: Settings, now: float) -> int:
    """Lock a lapsed-reservation item (SKIP LOCKED) and return it if it still needs a vote;
    raises :class:`_Locked` or :class:`_Full` (run it in a savepoint: its rollback releases
    the lock of a full item)."""
    if db.run(conn, Q_LOCK_ITEM_SKIP, {"item": item_id}).fetchone() is None:
        raise _Locked()
    if _taken_by_others(conn, item_id, me.annotator_id, now, s) >= s.votes_per_item:
        raise _Full()
    return item_id


def _available_study(conn: Connection, me: _Me) -> int:
    """Study items not yet fully reserved that this annotator has not been given."""
    free = db.run(conn, Q_FREE).fetchone()[0]
    mine = db.run(conn, Q_MINE_FREE, {"me": me.annotator_id}).fetchone()[0]
    return int(free - mine)


def _progress(conn: Connection, me: _Me, s: Settings, open_is_check: bool | None) -> Progress:
    """Items done, and how many this annotator will have done when nothing is left.

    ``open_is_check`` is None without an open assignment. Computed from counters (the open
    study items are counted in ``queue_counts``) and the annotator's own assignments, never
    by reading the item table.
    """
    open_study = 1 if open_is_check is False else 0
    open_check = 1 if open_is_check is True else 0
    room = _available_study(conn, me)
    cap = s.max_items_per_annotator
    if cap:
        room = min(room, max(cap - me.n_study_done - open_study, 0))
    n_checks = _n_checks(conn)
    checks = me.n_checks_done + open_check
    if n_checks:  # study votes end where a check is due and none is left
        last = check_due_after(s, me.annotator_id, n_checks)
        room = min(room, max(last - me.n_study_done - open_study, 0))
    future_study = me.n_study_done + open_study + room
    while checks < n_checks and check_due_after(s, me.annotator_id, checks) <= future_study:
        checks += 1
    done = me.n_study_done + me.n_checks_done
    return Progress(done=done, total=max(future_study + checks, done))


def _n_checks(conn: Connection) -> int:
    """The number of attention-check items (cached like the settings)."""
    return int(_cached(conn, "n_checks", lambda: db.run(conn, Q_N_CHECKS).fetchone()[0]))


def _reserve(conn: Connection, me: _Me, s: Settings, item_id: int, now: float) -> None:
    db.run(conn, S_RESERVE, {"item": item_id, "me": me.annotator_id, "now": now})
    _count_moved(conn, S_COUNT_UP, item_id, s.votes_per_item, me.annotator_id)


def _with_image(conn: Connection, assignment: Assignment) -> Assignment:
    return dataclasses.replace(assignment, image=item_image(conn, assignment.item_id))


def _next_assignment_in(
    conn: Connection,
    annotator: Annotator,
    now: float | None,
    me: _Me | None = None,
    wait: bool = True,
) -> tuple[Assignment | None, Progress]:
    """The annotator's open assignment or a new one (with its image), and their progress.

    ``me``: the annotator's row as the caller's transaction left it, after a vote that closed
    their only open assignment (an annotator holds at most one); the row is then locked
    already and no open assignment is looked for.
    """
    assignment, progress = _pick_next_in(conn, annotator, now, me, wait)
    return (None if assignment is None else _with_image(conn, assignment)), progress


def _pick_next_in(
    conn: Connection, annotator: Annotator, now: float | None, me: _Me | None, wait: bool
) -> tuple[Assignment | None, Progress]:
    now = time.time() if now is None else now
    s = read_settings(conn)
    a = db.assignments
    if me is None:
        me = _lock_me(conn, annotator)
        open_row = db.run(conn, Q_OPEN, {"me": me.annotator_id}).fetchone()
    else:
        open_row = None
    if open_row is not None:
        assignment_id, open_item, shown_at, is_check = open_row
        if is_check or shown_at >= now - s.lease_seconds:
            return (
                Assignment(int(open_item), float(shown_at)),
                _progress(conn, me, s, bool(is_check)),
            )
        # the one item lock this transaction waits for, taken before any other item lock
        db.run(conn, Q_LOCK_ITEM, {"item": open_item})
        if _taken_by_others(conn, open_item, me.annotator_id, now, s) < s.votes_per_item:
            conn.execute(update(a).where(a.c.assignment_id == assignment_id).values(shown_at=now))
            return Assignment(int(open_item), now), _progress(conn, me, s, False)
        # others completed the item while this lease lapsed: hand out another
        conn.execute(a.delete().where(a.c.assignment_id == assignment_id))
        _count_moved(conn, S_COUNT_DOWN, open_item, s.votes_per_item, me.annotator_id)

    item_id, is_check = None, False
    if _n_checks(conn) and _check_due(s, me):
        # an attention check is due; once every check has been given, no more study items
        # either: no stretch of study votes goes without its check
        item_id = _next_check(conn, me, s)
        is_check = item_id is not None
    else:
        cap = s.max_items_per_annotator
        if not cap or me.n_study_done < cap:
            item_id = _next_study(conn, me, s, now, wait)
    if item_id is None:
        return None, _progress(conn, me, s, None)
    _reserve(conn, me, s, item_id, now)
    return Assignment(int(item_id), now), _progress(conn, me, s, is_check)


def next_assignment(
    engine: Engine, annotator: Annotator, now: float | None = None
) -> tuple[Assignment | None, Progress]:
    """The item the annotator should see now (creating the assignment), and their progress.

    Returns ``(None, progress)`` when nothing is left for this annotator. Raises
    :class:`VoteRejected` (403) when the annotator has been revoked meanwhile.
    """
    return db.write(engine, lambda conn: _next_assignment_in(conn, annotator, now))


def progress(engine: Engine, annotator: Annotator) -> Progress:
    with db.reading(engine) as conn:
        me = _lock_me(conn, annotator)
        open_row = conn.execute(
            select(db.items.c.is_attention_check)
            .join(db.assignments, db.assignments.c.item_id == db.items.c.item_id)
            .where(
                db.assignments.c.annotator_id == me.annotator_id,
                db.assignments.c.completed_at.is_(None),
            )
        ).first()
        is_check = None if open_row is None else bool(open_row.is_attention_check)
        return _progress(conn, me, read_settings(conn), is_check)


# --------------------------------------------------------------------------- votes


def parse_vote(payload: Any) -> dict[str, Any]:
    """Validate a vote's JSON body; raises :class:`VoteRejected` (400) naming the field.

    Every number is bounded here, before it reaches the database: ``item_id`` in
    0..:data:`db.MAX_ITEM_ID`, ``response_time`` positive and at most
    :data:`MAX_RESPONSE_TIME_S` (an integer of any size, or -0.0, is refused, not converted).
    """
    if not isinstance(payload, dict):
        raise VoteRejected(400, "the request body must be a JSON object")
    unknown = set(payload) - VOTE_FIELDS
    if unknown:
        shown = sorted(str(k)[:40] for k in unknown)[:5]
        raise VoteRejected(400, f"unknown field(s) {shown}")
    item_id = payload.get("item_id")
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise VoteRejected(400, "item_id must be an integer")
    if not 0 <= item_id <= db.MAX_ITEM_ID:
        raise VoteRejected(400, f"item_id must be an integer in 0..{db.MAX_ITEM_ID}")
    choice = payload.get("choice")
    if isinstance(choice, int) and not isinstance(choice, bool) and -1 <= choice <= 10:
        choice = str(choice)
    if not isinstance(choice, str) or choice not in CHOICES:
        raise VoteRejected(
            400, f"choice must be one of {', '.join(CHOICES)}; got {str(choice)[:40]!r}"
        )
    unsure = payload.get("unsure", False)
    if not isinstance(unsure, bool):
        raise VoteRejected(400, "unsure must be true or false")
    rt = payload.get("response_time")
    if (
        isinstance(rt, bool)
        or not isinstance(rt, int | float)
        or not 0 < rt <= MAX_RESPONSE_TIME_S  # also False for NaN and huge integers
    ):
        raise VoteRejected(
            400, f"response_time must be a number of seconds in (0, {MAX_RESPONSE_TIME_S:g}]"
        )
    return {"item_id": item_id, "choice": choice, "unsure": unsure, "response_time": float(rt)}


def _record_vote_in(
    conn: Connection, annotator: Annotator, vote: dict[str, Any], now: float | None
) -> tuple[int, _Me]:
    """Store the vote; returns its id and the annotator's row as it is now."""
    now = time.time() if now is None else now
    s = read_settings(conn)
    if vote["response_time"] < s.min_response_time:
        raise VoteRejected(
            400,
            f"response_time {vote['response_time']:.3f} s is shorter than the "
            f"{s.min_response_time:g} s an answer takes at least",
        )
    me = _lock_me(conn, annotator)
    keys = {"item": vote["item_id"], "me": me.annotator_id}
    target = db.run(conn, Q_VOTE_TARGET, keys).fetchone()
    if not target:
        raise VoteRejected(404, f"unknown item {vote['item_id']}")
    is_check, previous, assignment_id, shown_at = bool(target[0]), *target[1:]
    if previous is not None:
        raise VoteRejected(
            409,
            f"you already voted on item {vote['item_id']}; a vote cannot be repeated or changed",
        )
    if assignment_id is None:
        raise VoteRejected(409, f"item {vote['item_id']} is not the item currently shown to you")
    elapsed = now - shown_at
    # the item's row is locked (Q_VOTE_TARGET): nobody is given it until this commits, and
    # those given it before are counted here; a lease that lapsed (by this clock or by the
    # reserver's) may have let the item go to enough others
    if not is_check and (
        _taken_by_others(conn, vote["item_id"], me.annotator_id, now, s) >= s.votes_per_item
    ):
        raise VoteRejected(
            409,
            f"item {vote['item_id']} was reserved for you for {s.lease_seconds:g} s "
            "only, and other annotators have completed it meanwhile",
        )
    if vote["response_time"] > elapsed + RESPONSE_TIME_TOLERANCE_S:
        raise VoteRejected(
            400,
            f"response_time {vote['response_time']:.3f} s exceeds the {elapsed:.3f} s "
            "since the server showed the item",
        )
    (vote_id,) = db.run(
        conn,
        S_VOTE,
        {
            **keys,
            "choice": vote["choice"],
            "unsure": vote["unsure"],
            "rt": vote["response_time"],
            "elapsed": elapsed,
            "now": now,
        },
    ).fetchone()
    db.run(conn, S_COMPLETE, {"aid": assignment_id, "now": now})
    db.run(conn, S_DONE_UP["n_checks_done" if is_check else "n_study_done"], keys)
    if is_check:
        me = dataclasses.replace(me, n_checks_done=me.n_checks_done + 1)
    else:
        me = dataclasses.replace(me, n_study_done=me.n_study_done + 1)
    return int(vote_id), me


@dataclass(frozen=True)
class VoteOutcome:
    """A stored vote, and the annotator's next item and progress as of the same transaction;
    ``next_error`` names the failure when the next item could not be picked (the vote is
    stored all the same, and ``assignment`` and ``progress`` are None)."""

    vote_id: int
    assignment: Assignment | None
    progress: Progress | None
    next_error: str | None = None


def record_vote_and_next(
    engine: Engine, annotator: Annotator, payload: Any, now: float | None = None
) -> VoteOutcome:
    """Store one vote and pick the annotator's next item, in one transaction (one commit).

    Refusals are those of :func:`record_vote`. Picking the next item runs in a savepoint:
    if it fails, only that part is rolled back and the vote commits, so the answer can say
    truthfully that the vote is saved. Where the next item would have to wait for items
    other transactions hold (PostgreSQL), the vote commits first, releasing its item, and
    the next item is picked in a transaction of its own.
    """
    vote = parse_vote(payload)

    def job(conn: Connection) -> VoteOutcome | int:
        vote_id, me = _record_vote_in(conn, annotator, vote, now)
        try:
            assignment, progress = db.in_savepoint(
                conn, lambda c: _next_assignment_in(c, annotator, now, me, wait=False)
            )
        except _WouldWait:
            return vote_id
        except Exception as exc:  # the vote stands; the client asks for its item again
            return VoteOutcome(vote_id, None, None, type(exc).__name__)
        return VoteOutcome(vote_id, assignment, progress)

    try:
        outcome = db.write(engine, job)
    except IntegrityError as exc:  # a concurrent replay got there first
        raise VoteRejected(409, f"you already voted on item {vote['item_id']}") from exc
    if isinstance(outcome, VoteOutcome):
        return outcome
    try:  # the vote is committed (its id is `outcome`)
        assignment, progress = next_assignment(engine, annotator, now)
    except Exception as exc:  # noqa: BLE001 - reported with the saved vote
        return VoteOutcome(outcome, None, None, type(exc).__name__)
    return VoteOutcome(outcome, assignment, progress)


def record_vote(
    engine: Engine, annotator: Annotator, payload: Any, now: float | None = None
) -> int:
    """Store one vote in one transaction; returns its ``vote_id`` once it is committed.

    Raises :class:`VoteRejected`: 400 for a malformed body or an implausible response time,
    403 for an annotator revoked meanwhile, 404 for an unknown item, 409 for a replay (a vote
    already exists) or an item that is not the annotator's open assignment. A rejected vote
    changes nothing.
    """
    vote = parse_vote(payload)
    try:
        return db.write(engine, lambda conn: _record_vote_in(conn, annotator, vote, now)[0])
    except IntegrityError as exc:  # a concurrent replay got there first
        raise VoteRejected(409, f"you already voted on item {vote['item_id']}") from exc


# --------------------------------------------------------------------------- export and status


@dataclass(frozen=True)
class QualityRules:
    """What the export leaves out, per annotator, over their whole session.

    * ``min_attention_accuracy`` (0 turns the rule off): where the study has attention
      checks, an annotator is left out when they answered none, or when the share of all
      the checks they answered that they got right is below this.
    * ``max_fast_share`` (1 turns the rule off): a vote is *fast* when the server measured
      less than ``min_response_time`` between handing out the item and receiving the vote
      (``server_response_time``; the client's own ``response_time`` is not trusted for
      this); an annotator more of whose votes (study items and checks) than this share were
      fast is left out.
    """

    min_attention_accuracy: float
    max_fast_share: float
    min_response_time: float

    @classmethod
    def of(
        cls, s: Settings, min_attention_accuracy: float | None, max_fast_share: float | None
    ) -> QualityRules:
        return cls(
            s.min_attention_accuracy
            if min_attention_accuracy is None
            else float(min_attention_accuracy),
            s.max_fast_share if max_fast_share is None else float(max_fast_share),
            s.min_response_time,
        )


_VOTE_FRAME_COLUMNS = (
    "vote_id",
    "item_id",
    "annotator_id",
    "choice",
    "unsure",
    "response_time",
    "server_response_time",
    "is_attention_check",
    "expected_choice",
)


def _vote_frame(conn: Connection) -> pd.DataFrame:
    """Every vote, in vote order, annotators by pseudonym, with both response times."""
    import pandas as pd

    v, an, it = db.votes, db.annotators, db.items
    rows = conn.execute(
        select(
            v.c.vote_id,
            v.c.item_id,
            an.c.pseudonym,
            v.c.choice,
            v.c.unsure,
            v.c.response_time,
            v.c.server_elapsed,
            it.c.is_attention_check,
            it.c.expected_choice,
        )
        .join(an, an.c.annotator_id == v.c.annotator_id)
        .join(it, it.c.item_id == v.c.item_id)
        .order_by(v.c.vote_id)
    ).all()
    frame = pd.DataFrame(rows, columns=list(_VOTE_FRAME_COLUMNS))
    return frame.astype(
        {
            "vote_id": "int64",
            "item_id": "int64",
            "annotator_id": "str",
            "choice": "str",
            "unsure": "bool",
            "response_time": "float64",
            "server_response_time": "float64",
            "is_attention_check": "bool",
        }
    )


def _annotator_quality(
    conn: Connection, votes: pd.DataFrame, rules: QualityRules, study_has_checks: bool
) -> pd.DataFrame:
    """Per annotator (by pseudonym): active, study votes, attention checks answered and
    right, accuracy, fast votes and their share, whether kept, and why not."""
    import numpy as np
    import pandas as pd

    an = db.annotators
    rows = conn.execute(select(an.c.pseudonym, an.c.active).order_by(an.c.annotator_id)).all()
    names = pd.Series([r.pseudonym for r in rows], dtype="str")
    checks = votes[votes["is_attention_check"]]
    fast = votes["server_response_time"] < rules.min_response_time

    def per_annotator(values: pd.Series) -> pd.Series:
        return names.map(values).fillna(0).astype("int64")

    frame = pd.DataFrame(
        {
            "annotator_id": names,
            "active": pd.Series([bool(r.active) for r in rows], dtype="bool"),
            "n_votes": per_annotator(
                votes.loc[~votes["is_attention_check"], "annotator_id"].value_counts()
            ),
            "n_attention_checks": per_annotator(checks["annotator_id"].value_counts()),
            "n_correct": per_annotator(
                checks.loc[
                    checks["choice"] == checks["expected_choice"], "annotator_id"
                ].value_counts()
            ),
            "n_fast": per_annotator(votes.loc[fast, "annotator_id"].value_counts()),
        }
    )
    n_all = frame["n_votes"] + frame["n_attention_checks"]
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["attention_accuracy"] = (
            frame["n_correct"] / frame["n_attention_checks"].where(frame["n_attention_checks"] > 0)
        ).astype("float64")
        frame["fast_share"] = (frame["n_fast"] / n_all.where(n_all > 0)).astype("float64")
    reasons = []
    for r in frame.itertuples(index=False):
        why = []
        if rules.min_attention_accuracy > 0 and study_has_checks:
            if r.n_attention_checks == 0:
                why.append("no attention check answered")
            elif r.attention_accuracy < rules.min_attention_accuracy:
                why.append(f"attention checks {r.n_correct}/{r.n_attention_checks} correct")
        if r.fast_share > rules.max_fast_share:
            why.append(
                f"{r.n_fast} of {r.n_votes + r.n_attention_checks} votes under "
                f"{rules.min_response_time:g} s on the server's clock"
            )
        reasons.append("; ".join(why))
    frame["left_out"] = pd.Series(reasons, dtype="str")
    frame["kept"] = frame["left_out"] == ""
    return frame


def export_frames(
    engine: Engine,
    min_attention_accuracy: float | None = None,
    max_fast_share: float | None = None,
) -> dict[str, Any]:
    """The votes as tables:

    * ``raw_annotations``: study items only, the contract's columns (the annotation
      pipeline refuses any other column), votes of the annotators kept;
    * ``attention_checks``: one row per attention-check vote, both response times;
    * ``all_votes``: every vote (study items and checks, kept or not) with the client's
      ``response_time``, the server's ``server_response_time``, whether it was fast, and
      why its annotator is left out (empty when kept);
    * ``annotators``: per annotator, see :func:`_annotator_quality`;
    * ``rules``: the :class:`QualityRules` applied (the study's settings unless overridden).
    """
    with db.reading(engine) as conn:
        s = read_settings(conn)
        rules = QualityRules.of(s, min_attention_accuracy, max_fast_share)
        votes = _vote_frame(conn)
        quality = _annotator_quality(
            conn, votes, rules, bool(conn.execute(Q_N_CHECKS).scalar_one())
        )
    left_out = votes["annotator_id"].map(dict(zip(quality["annotator_id"], quality["left_out"])))
    all_votes = votes.assign(
        fast=votes["server_response_time"] < rules.min_response_time,
        left_out=left_out.fillna("").astype("str"),
    )
    checks = all_votes[all_votes["is_attention_check"]].copy()
    checks["correct"] = checks["choice"] == checks["expected_choice"]
    kept = all_votes[~all_votes["is_attention_check"] & (all_votes["left_out"] == "")]
    summary = quality[
        [
            "annotator_id",
            "n_votes",
            "n_attention_checks",
            "attention_accuracy",
            "n_fast",
            "fast_share",
            "kept",
            "left_out",
        ]
    ]
    return {
        "raw_annotations": kept[list(RAW_ANNOTATION_COLUMNS)].reset_index(drop=True),
        "attention_checks": checks[list(ATTENTION_COLUMNS)].reset_index(drop=True),
        "all_votes": all_votes[list(ALL_VOTE_COLUMNS)].reset_index(drop=True),
        "annotators": summary,
        "rules": rules,
    }


def n_study_items(conn: Connection) -> int:
    return conn.execute(Q_N_STUDY).scalar_one()


def study_status(engine: Engine) -> dict[str, Any]:
    """Counts for the ``status`` command, the settings, and the annotators the export leaves
    out under the study's rules (:class:`QualityRules`), with the reason."""
    it = db.items
    with db.reading(engine) as conn:
        s = read_settings(conn)
        n_items = n_study_items(conn)
        n_checks = conn.execute(Q_N_CHECKS).scalar_one()
        per_item = (
            select(db.votes.c.item_id, func.count().label("n"))
            .join(it, it.c.item_id == db.votes.c.item_id)
            .where(it.c.is_attention_check.is_(False))
            .group_by(db.votes.c.item_id)
            .subquery()
        )
        n_complete = conn.execute(
            select(func.count()).select_from(per_item).where(per_item.c.n >= s.votes_per_item)
        ).scalar_one()
        n_votes = conn.execute(select(func.count()).select_from(db.votes)).scalar_one()
        n_open = conn.execute(
            select(func.count())
            .select_from(db.assignments)
            .where(db.assignments.c.completed_at.is_(None))
        ).scalar_one()
        version = conn.execute(select(func.max(db.schema_version.c.version))).scalar_one()
        rules = QualityRules.of(s, None, None)
        quality = _annotator_quality(conn, _vote_frame(conn), rules, bool(n_checks))
    excluded = quality[~quality["kept"]]
    return {
        "schema_version": version,
        "study_items": n_items,
        "attention_checks": n_checks,
        "complete_items": n_complete,
        "votes": n_votes,
        "open_reservations": n_open,
        "annotators": len(quality),
        "active_annotators": int(quality["active"].sum()),
        **asdict(s),
        "excluded_annotators": ", ".join(
            f"{r.annotator_id} ({r.left_out})" for r in excluded.itertuples(index=False)
        )
        or "none",
    }
