"""The annotation tool's rules, on top of the database in :mod:`.db`.

* Annotators are known by the SHA-256 of their random token; the token itself is printed
  once by ``add-annotator`` and never stored. Exports name annotators by a pseudonym.
* Assignment: an annotator is shown one item at a time (an *assignment*). Reloading the page
  or restarting the server shows the same open assignment again, so work resumes where it
  stopped. A study item is handed out until ``votes + live assignments`` reaches
  ``votes_per_item``, where an open assignment is live for ``lease_seconds`` after it was
  shown. Items closest to completion go first, then a per-annotator pseudo-random order; the
  ``(item, annotator)`` unique constraints mean nobody sees an item twice.
* Attention checks: after every ``attention_every`` study votes, one unseen attention check
  is due. They have no quota and are indistinguishable from study items in the API.
* A vote is accepted only for the annotator's open assignment, once, in one transaction
  together with closing that assignment. Client-measured response times are checked against
  the time the server saw pass since the item was shown.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from soft_label_audit.annotation_tool import db
from soft_label_audit.columns import CHOICES

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
)
#: seconds by which a client-measured response time may exceed what the server measured
RESPONSE_TIME_TOLERANCE_S = 2.0
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


@dataclass(frozen=True)
class Settings:
    """Study settings, stored in the database's ``settings`` table."""

    votes_per_item: int = 3
    attention_every: int = 10
    max_items_per_annotator: int = 0  # 0: no cap
    lease_seconds: float = 900.0

    def validated(self) -> Settings:
        if self.votes_per_item < 1:
            raise ValueError("votes_per_item must be at least 1")
        if self.attention_every < 1:
            raise ValueError("attention_every must be at least 1")
        if self.max_items_per_annotator < 0:
            raise ValueError("max_items_per_annotator must be 0 (no cap) or positive")
        if not self.lease_seconds > 0:
            raise ValueError("lease_seconds must be positive")
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


# --------------------------------------------------------------------------- settings


def read_settings(conn: Connection) -> Settings:
    stored = dict(conn.execute(select(db.settings.c.key, db.settings.c.value)).all())
    defaults = Settings()
    values = {}
    for field, default in asdict(defaults).items():
        values[field] = type(default)(stored[field]) if field in stored else default
    return Settings(**values)


def write_settings(engine: Engine, **changes: Any) -> Settings:
    """Update the given settings (None values are ignored); returns the settings in force."""
    with engine.begin() as conn:
        current = asdict(read_settings(conn))
        unknown = set(changes) - set(current)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}")
        current.update({k: v for k, v in changes.items() if v is not None})
        new = Settings(**current).validated()
        for key, value in asdict(new).items():
            conn.execute(db.settings.delete().where(db.settings.c.key == key))
            conn.execute(insert(db.settings).values(key=key, value=str(value)))
    return new


# --------------------------------------------------------------------------- items


def insert_items(engine: Engine, frame: pd.DataFrame) -> dict[str, int]:
    """Insert the rows of an item table (see :mod:`.item_sets`) that are not there yet.

    Items already in the database are left as they are (their votes refer to them), so
    ``init`` can be re-run. Returns counts of ``added`` and ``kept`` items.
    """
    rows = [
        {
            "item_id": int(r.item_id),
            "source": str(r.source),
            "split": None if r.split is None or (isinstance(r.split, float) and math.isnan(r.split)) else str(r.split),
            "original_label": None if pd.isna(r.original_label) else int(r.original_label),
            "image": bytes(r.image),
            "is_attention_check": bool(r.is_attention_check),
            "expected_choice": None if r.expected_choice is None else str(r.expected_choice),
        }
        for r in frame.itertuples(index=False)
    ]
    with engine.begin() as conn:
        existing = set(conn.execute(select(db.items.c.item_id)).scalars())
        new_rows = [r for r in rows if r["item_id"] not in existing]
        if new_rows:
            conn.execute(insert(db.items), new_rows)
    return {"added": len(new_rows), "kept": len(rows) - len(new_rows)}


def item_image(conn: Connection, item_id: int) -> bytes | None:
    return conn.execute(select(db.items.c.image).where(db.items.c.item_id == item_id)).scalar()


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
            )
        ).inserted_primary_key[0]
    return Annotator(int(annotator_id), pseudonym), token


def annotator_for_token(conn: Connection, token: str | None) -> Annotator | None:
    """The active annotator holding ``token``, or None (unknown, malformed or revoked)."""
    if not token or not TOKEN_PATTERN.match(token):
        return None
    row = conn.execute(
        select(db.annotators.c.annotator_id, db.annotators.c.pseudonym).where(
            db.annotators.c.token_sha256 == hash_token(token), db.annotators.c.active.is_(True)
        )
    ).first()
    return Annotator(int(row.annotator_id), row.pseudonym) if row else None


# --------------------------------------------------------------------------- assignment


def _order_key(annotator_id: int, item_id: int) -> bytes:
    """A fixed pseudo-random order of items per annotator (no two annotators share it)."""
    return hashlib.sha256(f"{annotator_id}:{item_id}".encode()).digest()


@dataclass
class _State:
    """What the assignment rules need to know about one annotator, read in one transaction."""

    settings: Settings
    open: Any  # the open assignment row, or None
    open_is_check: bool
    done_study: int
    done_checks: int
    study_candidates: list[int]  # study items this annotator may be given now, in order
    unseen_checks: list[int]


def _read_state(conn: Connection, annotator: Annotator, now: float) -> _State:
    s = read_settings(conn)
    a, v, it = db.assignments, db.votes, db.items
    mine = conn.execute(
        select(a.c.assignment_id, a.c.item_id, a.c.shown_at, a.c.completed_at, it.c.is_attention_check)
        .join(it, it.c.item_id == a.c.item_id)
        .where(a.c.annotator_id == annotator.annotator_id)
    ).all()
    open_rows = [r for r in mine if r.completed_at is None]
    assigned = {r.item_id for r in mine}
    done_study = sum(1 for r in mine if r.completed_at is not None and not r.is_attention_check)
    done_checks = sum(1 for r in mine if r.completed_at is not None and r.is_attention_check)

    vote_counts = dict(
        conn.execute(select(v.c.item_id, func.count()).group_by(v.c.item_id)).all()
    )
    live = dict(
        conn.execute(
            select(a.c.item_id, func.count())
            .where(
                a.c.completed_at.is_(None),
                a.c.shown_at >= now - s.lease_seconds,
                a.c.annotator_id != annotator.annotator_id,
            )
            .group_by(a.c.item_id)
        ).all()
    )
    all_items = conn.execute(select(it.c.item_id, it.c.is_attention_check)).all()
    study_ids = [r.item_id for r in all_items if not r.is_attention_check]
    check_ids = [r.item_id for r in all_items if r.is_attention_check]

    taken = {i: vote_counts.get(i, 0) + live.get(i, 0) for i in study_ids}
    candidates = [i for i in study_ids if i not in assigned and taken[i] < s.votes_per_item]
    candidates.sort(key=lambda i: (-taken[i], _order_key(annotator.annotator_id, i)))
    unseen_checks = sorted(
        (i for i in check_ids if i not in assigned),
        key=lambda i: _order_key(annotator.annotator_id, i),
    )
    open_row = open_rows[0] if open_rows else None
    return _State(
        settings=s,
        open=open_row,
        open_is_check=bool(open_row.is_attention_check) if open_row else False,
        done_study=done_study,
        done_checks=done_checks,
        study_candidates=candidates,
        unseen_checks=unseen_checks,
    )


def _study_room(state: _State) -> int:
    """How many more study items this annotator may be given (cap minus done and open)."""
    cap = state.settings.max_items_per_annotator
    open_study = 1 if state.open is not None and not state.open_is_check else 0
    room = len(state.study_candidates)
    if cap:
        room = min(room, max(cap - state.done_study - open_study, 0))
    return room


def _progress(state: _State) -> Progress:
    done = state.done_study + state.done_checks
    open_study = 1 if state.open is not None and not state.open_is_check else 0
    open_check = 1 if state.open is not None and state.open_is_check else 0
    future_study = state.done_study + open_study + _study_room(state)
    checks_expected = min(
        state.done_checks + open_check + len(state.unseen_checks),
        future_study // state.settings.attention_every,
    )
    total = future_study + max(checks_expected, state.done_checks + open_check)
    return Progress(done=done, total=max(total, done))


def _taken_by_others(conn: Connection, item_id: int, annotator: Annotator, now: float, s: Settings) -> int:
    """Votes on the item plus live (unexpired, open) assignments of other annotators."""
    votes_now = conn.execute(
        select(func.count()).select_from(db.votes).where(db.votes.c.item_id == item_id)
    ).scalar_one()
    others_live = conn.execute(
        select(func.count()).select_from(db.assignments).where(
            db.assignments.c.item_id == item_id,
            db.assignments.c.completed_at.is_(None),
            db.assignments.c.shown_at >= now - s.lease_seconds,
            db.assignments.c.annotator_id != annotator.annotator_id,
        )
    ).scalar_one()
    return int(votes_now + others_live)


def next_assignment(
    engine: Engine, annotator: Annotator, now: float | None = None
) -> tuple[Assignment | None, Progress]:
    """The item the annotator should see now (creating the assignment), and their progress.

    Returns ``(None, progress)`` when nothing is left for this annotator.
    """
    with engine.begin() as conn:
        now = time.time() if now is None else now
        state = _read_state(conn, annotator, now)
        s = state.settings
        if state.open is not None:
            stale = not state.open_is_check and state.open.shown_at < now - s.lease_seconds
            if stale:
                taken = _taken_by_others(conn, state.open.item_id, annotator, now, s)
                if taken >= s.votes_per_item:
                    # others completed the item while this lease lapsed: hand out another
                    conn.execute(db.assignments.delete().where(
                        db.assignments.c.assignment_id == state.open.assignment_id))
                    state = _read_state(conn, annotator, now)
                else:
                    conn.execute(
                        update(db.assignments)
                        .where(db.assignments.c.assignment_id == state.open.assignment_id)
                        .values(shown_at=now)
                    )
                    return Assignment(int(state.open.item_id), now), _progress(state)
            else:
                return Assignment(int(state.open.item_id), float(state.open.shown_at)), _progress(state)

        check_due = (
            state.unseen_checks
            and state.done_study // s.attention_every > state.done_checks
        )
        if check_due:
            item_id = state.unseen_checks[0]
        elif _study_room(state) > 0:
            item_id = state.study_candidates[0]
        else:
            return None, _progress(state)
        conn.execute(
            insert(db.assignments).values(
                item_id=item_id, annotator_id=annotator.annotator_id, shown_at=now
            )
        )
        state = _read_state(conn, annotator, now)
        return Assignment(int(item_id), now), _progress(state)


def progress(engine: Engine, annotator: Annotator) -> Progress:
    with engine.begin() as conn:
        return _progress(_read_state(conn, annotator, time.time()))


# --------------------------------------------------------------------------- votes


def parse_vote(payload: Any) -> dict[str, Any]:
    """Validate a vote's JSON body; raises :class:`VoteRejected` (400) naming the field."""
    if not isinstance(payload, dict):
        raise VoteRejected(400, "the request body must be a JSON object")
    unknown = set(payload) - {"item_id", "choice", "unsure", "response_time"}
    if unknown:
        raise VoteRejected(400, f"unknown field(s) {sorted(unknown)}")
    item_id = payload.get("item_id")
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise VoteRejected(400, "item_id must be an integer")
    choice = payload.get("choice")
    if isinstance(choice, int) and not isinstance(choice, bool):
        choice = str(choice)
    if not isinstance(choice, str) or choice not in CHOICES:
        raise VoteRejected(
            400, f"choice must be one of {', '.join(CHOICES)}; got {payload.get('choice')!r}"
        )
    unsure = payload.get("unsure", False)
    if not isinstance(unsure, bool):
        raise VoteRejected(400, "unsure must be true or false")
    rt = payload.get("response_time")
    if isinstance(rt, bool) or not isinstance(rt, int | float) or not math.isfinite(rt) or rt < 0:
        raise VoteRejected(400, "response_time must be a finite, non-negative number of seconds")
    return {"item_id": item_id, "choice": choice, "unsure": unsure, "response_time": float(rt)}


def record_vote(
    engine: Engine, annotator: Annotator, payload: Any, now: float | None = None
) -> int:
    """Store one vote in one transaction; returns its ``vote_id``.

    Raises :class:`VoteRejected`: 400 for a malformed body or an impossible response time,
    404 for an unknown item, 409 for a replay (a vote already exists) or an item that is
    not the annotator's open assignment. A rejected vote changes nothing.
    """
    vote = parse_vote(payload)
    a, v = db.assignments, db.votes
    try:
        with engine.begin() as conn:
            now = time.time() if now is None else now
            exists = conn.execute(
                select(db.items.c.item_id, db.items.c.is_attention_check).where(
                    db.items.c.item_id == vote["item_id"])
            ).first()
            if not exists:
                raise VoteRejected(404, f"unknown item {vote['item_id']}")
            previous = conn.execute(
                select(v.c.vote_id).where(
                    v.c.item_id == vote["item_id"], v.c.annotator_id == annotator.annotator_id
                )
            ).first()
            if previous:
                raise VoteRejected(
                    409, f"you already voted on item {vote['item_id']}; a vote cannot be repeated or changed"
                )
            assignment = conn.execute(
                select(a.c.assignment_id, a.c.shown_at).where(
                    and_(
                        a.c.item_id == vote["item_id"],
                        a.c.annotator_id == annotator.annotator_id,
                        a.c.completed_at.is_(None),
                    )
                )
            ).first()
            if not assignment:
                raise VoteRejected(
                    409, f"item {vote['item_id']} is not the item currently shown to you"
                )
            elapsed = now - assignment.shown_at
            s = read_settings(conn)
            if elapsed > s.lease_seconds and not exists.is_attention_check:
                taken = _taken_by_others(conn, vote["item_id"], annotator, now, s)
                if taken >= s.votes_per_item:
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
            vote_id = conn.execute(
                insert(v).values(
                    item_id=vote["item_id"],
                    annotator_id=annotator.annotator_id,
                    choice=vote["choice"],
                    unsure=vote["unsure"],
                    response_time=vote["response_time"],
                    server_elapsed=elapsed,
                    created_at=now,
                )
            ).inserted_primary_key[0]
            conn.execute(
                update(a).where(a.c.assignment_id == assignment.assignment_id).values(completed_at=now)
            )
    except IntegrityError as exc:  # a concurrent replay got there first
        raise VoteRejected(409, f"you already voted on item {vote['item_id']}") from exc
    return int(vote_id)


# --------------------------------------------------------------------------- export and status


def export_frames(
    engine: Engine, min_attention_accuracy: float | None = None
) -> dict[str, pd.DataFrame]:
    """The votes as tables: ``raw_annotations`` (study items only, contract columns),
    ``attention_checks`` (one row per attention-check vote) and ``annotators`` (per annotator:
    votes, checks answered, accuracy on them, whether kept).

    With ``min_attention_accuracy``, annotators whose attention-check accuracy is below it
    are left out of ``raw_annotations`` (annotators who answered no check are kept).
    """
    v, an, it = db.votes, db.annotators, db.items
    with engine.begin() as conn:
        rows = conn.execute(
            select(
                v.c.vote_id,
                v.c.item_id,
                an.c.pseudonym.label("annotator_id"),
                v.c.choice,
                v.c.unsure,
                v.c.response_time,
                it.c.is_attention_check,
                it.c.expected_choice,
            )
            .join(an, an.c.annotator_id == v.c.annotator_id)
            .join(it, it.c.item_id == v.c.item_id)
            .order_by(v.c.vote_id)
        ).all()
        pseudonyms = conn.execute(select(an.c.pseudonym).order_by(an.c.annotator_id)).scalars().all()
    frame = pd.DataFrame(
        rows,
        columns=[
            "vote_id", "item_id", "annotator_id", "choice", "unsure", "response_time",
            "is_attention_check", "expected_choice",
        ],
    )
    frame = frame.astype(
        {"item_id": "int64", "annotator_id": "str", "choice": "str", "unsure": "bool",
         "response_time": "float64", "is_attention_check": "bool"}
    )
    checks = frame[frame["is_attention_check"]].copy()
    checks["correct"] = checks["choice"] == checks["expected_choice"]
    study = frame[~frame["is_attention_check"]]

    summary = pd.DataFrame({"annotator_id": pd.Series(pseudonyms, dtype="str")})
    summary["n_votes"] = summary["annotator_id"].map(study["annotator_id"].value_counts()).fillna(0).astype("int64")
    summary["n_attention_checks"] = summary["annotator_id"].map(checks["annotator_id"].value_counts()).fillna(0).astype("int64")
    summary["attention_accuracy"] = summary["annotator_id"].map(
        checks.groupby("annotator_id")["correct"].mean()
    ).astype("float64")
    keep = np.ones(len(summary), dtype=bool)
    if min_attention_accuracy is not None:
        acc = summary["attention_accuracy"].to_numpy()
        keep = np.isnan(acc) | (acc >= min_attention_accuracy)
    summary["kept"] = keep
    kept_ids = set(summary.loc[summary["kept"], "annotator_id"])
    raw = study[study["annotator_id"].isin(kept_ids)][list(RAW_ANNOTATION_COLUMNS)]
    return {
        "raw_annotations": raw.reset_index(drop=True),
        "attention_checks": checks[list(ATTENTION_COLUMNS)].reset_index(drop=True),
        "annotators": summary,
    }


def study_status(engine: Engine) -> dict[str, Any]:
    """Counts for the ``status`` command."""
    with engine.begin() as conn:
        s = read_settings(conn)
        n_items = conn.execute(
            select(func.count()).select_from(db.items).where(db.items.c.is_attention_check.is_(False))
        ).scalar_one()
        n_checks = conn.execute(
            select(func.count()).select_from(db.items).where(db.items.c.is_attention_check.is_(True))
        ).scalar_one()
        per_item = (
            select(db.votes.c.item_id, func.count().label("n"))
            .join(db.items, db.items.c.item_id == db.votes.c.item_id)
            .where(db.items.c.is_attention_check.is_(False))
            .group_by(db.votes.c.item_id)
            .subquery()
        )
        n_complete = conn.execute(
            select(func.count()).select_from(per_item).where(per_item.c.n >= s.votes_per_item)
        ).scalar_one()
        n_votes = conn.execute(select(func.count()).select_from(db.votes)).scalar_one()
        n_annotators = conn.execute(select(func.count()).select_from(db.annotators)).scalar_one()
        version = conn.execute(select(func.max(db.schema_version.c.version))).scalar_one()
    return {
        "schema_version": version,
        "study_items": n_items,
        "attention_checks": n_checks,
        "complete_items": n_complete,
        "votes": n_votes,
        "annotators": n_annotators,
        **asdict(s),
    }
