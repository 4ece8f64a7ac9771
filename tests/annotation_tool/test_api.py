"""The annotator API, rule by rule, through Flask's test client on a real SQLite file."""

from __future__ import annotations

import struct
import time

import pytest
from sqlalchemy import func, select, update

from soft_label_audit.annotation_tool import db, store
from soft_label_audit.annotation_tool.web import create_app

from .conftest import Api, count_votes, reopen


def study_ids(engine) -> set[int]:
    with engine.begin() as conn:
        return set(
            conn.execute(
                select(db.items.c.item_id).where(db.items.c.is_attention_check.is_(False))
            ).scalars()
        )


def check_ids(engine) -> set[int]:
    with engine.begin() as conn:
        return set(
            conn.execute(
                select(db.items.c.item_id).where(db.items.c.is_attention_check.is_(True))
            ).scalars()
        )


def new_annotator(engine, client) -> Api:
    return Api(client, store.add_annotator(engine)[1])


# ----------------------------------------------------------------- pages and tokens


def test_index_and_annotation_page(client, annotator):
    assert client.get("/").status_code == 200
    page = client.get(f"/a/{annotator.token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'data-token="{annotator.token}"' in html
    assert "I&#39;m unsure" in html or "I'm unsure" in html
    assert "none / can" in html


@pytest.mark.parametrize(
    "token",
    [
        "x" * 32,  # well-formed, never issued
        "' OR '1'='1' --aaaaaaaaaaaaaaaaaaaaaaaaaa",  # injection attempt, malformed
        "short",
    ],
)
def test_unknown_or_forged_token_is_403_everywhere(client, engine, annotator, token):
    assert client.get(f"/a/{token}").status_code == 403
    r = client.get("/api/next", headers={"X-Annotator-Token": token})
    assert r.status_code == 403 and "token" in r.get_json()["error"]
    r = client.post(
        "/api/vote",
        json={"item_id": 0, "choice": "1", "unsure": False, "response_time": 1.0},
        headers={"X-Annotator-Token": token},
    )
    assert r.status_code == 403
    assert count_votes(engine) == 0


def test_missing_token_header_is_403(client):
    assert client.get("/api/next").status_code == 403
    assert client.post("/api/vote", json={}).status_code == 403


def test_token_is_not_stored_in_clear(engine, annotator):
    with engine.begin() as conn:
        row = conn.execute(select(db.annotators)).one()
    assert annotator.token not in [str(v) for v in row]
    assert row.token_sha256 == store.hash_token(annotator.token)


def test_revoked_annotator_gets_403(engine, client, annotator):
    assert annotator.next().status_code == 200
    with engine.begin() as conn:
        conn.execute(update(db.annotators).values(active=False))
    assert annotator.next().status_code == 403


def test_security_headers(client, annotator):
    r = client.get(f"/a/{annotator.token}")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Frame-Options"] == "DENY"


# ----------------------------------------------------------------- admin is CLI-only


def test_only_annotator_routes_exist(engine):
    app = create_app(engine)
    rules = {
        (r.rule, tuple(sorted(r.methods - {"HEAD", "OPTIONS"}))) for r in app.url_map.iter_rules()
    }
    assert rules == {
        ("/", ("GET",)),
        ("/a/<token>", ("GET",)),
        ("/api/next", ("GET",)),
        ("/api/vote", ("POST",)),
        ("/static/<path:filename>", ("GET",)),
    }


@pytest.mark.parametrize(
    "path",
    [
        "/admin",
        "/init",
        "/export",
        "/add-annotator",
        "/api/export",
        "/api/annotators",
        "/api/status",
    ],
)
def test_admin_paths_are_not_reachable(client, annotator, path):
    headers = {"X-Annotator-Token": annotator.token}
    assert client.get(path, headers=headers).status_code == 404
    assert client.post(path, headers=headers).status_code in (404, 405)


# ----------------------------------------------------------------- items and images


def test_next_item_is_a_study_item_with_progress(engine, annotator):
    body = annotator.next().get_json()
    assert body["done"] is False
    assert body["item"]["item_id"] in study_ids(engine)
    assert body["item"]["image"].startswith("data:image/png;base64,")
    assert annotator.token not in str(body)
    assert body["progress"]["done"] == 0 and body["progress"]["total"] >= 1


def test_reload_shows_the_same_item(annotator):
    first = annotator.next().get_json()["item"]["item_id"]
    assert annotator.next().get_json()["item"]["item_id"] == first


def test_image_of_assigned_item_is_the_mnist_png(client, engine, annotator, mnist_digits):
    import base64
    from io import BytesIO

    import numpy as np
    from PIL import Image

    item = annotator.next().get_json()["item"]
    header, data = item["image"].split(",", 1)
    assert header == "data:image/png;base64"
    decoded = np.asarray(Image.open(BytesIO(base64.b64decode(data))))
    expected = np.frombuffer(
        mnist_digits.set_index("item_id").loc[item["item_id"], "image"], np.uint8
    ).reshape(28, 28)
    np.testing.assert_array_equal(decoded, expected)


def test_images_are_not_served_under_token_urls(client, annotator):
    shown = annotator.next().get_json()["item"]["item_id"]
    assert client.get(f"/a/{annotator.token}/items/{shown}.png").status_code == 404


# ----------------------------------------------------------------- votes


def test_valid_vote_is_stored_and_next_item_returned(engine, annotator):
    item_id, r = annotator.vote_current(choice="7", unsure=True, response_time=0.8)
    assert r.status_code == 201
    body = r.get_json()
    assert body["item"]["item_id"] != item_id
    assert body["progress"]["done"] == 1
    with engine.begin() as conn:
        row = conn.execute(select(db.votes)).one()
    assert (row.item_id, row.choice, row.unsure) == (item_id, "7", True)
    assert row.response_time == pytest.approx(0.8)
    assert row.server_elapsed >= 0


@pytest.mark.parametrize("choice", [0, 9, "0", "9", "none"])
def test_every_valid_choice_is_accepted(annotator, choice):
    _, r = annotator.vote_current(choice=choice)
    assert r.status_code == 201, r.get_json()


def test_replayed_vote_is_409_and_changes_nothing(engine, annotator):
    item = annotator.next().get_json()["item"]
    body = {"item_id": item["item_id"], "choice": "4", "unsure": False, "response_time": 0.4}
    assert annotator.vote(body).status_code == 201
    for changed in (body, {**body, "choice": "5"}):
        r = annotator.vote(changed)
        assert r.status_code == 409
        assert "already voted" in r.get_json()["error"]
    assert count_votes(engine) == 1
    with engine.begin() as conn:
        assert conn.execute(select(db.votes.c.choice)).scalar_one() == "4"


def test_vote_for_unknown_item_is_404(engine, annotator):
    annotator.next()
    r = annotator.vote({"item_id": 999_999, "choice": "1", "unsure": False, "response_time": 0.3})
    assert r.status_code == 404 and "unknown item 999999" in r.get_json()["error"]
    assert count_votes(engine) == 0


def test_vote_for_item_not_shown_is_409(engine, annotator):
    shown = annotator.next().get_json()["item"]["item_id"]
    other = min(study_ids(engine) - {shown})
    r = annotator.vote({"item_id": other, "choice": "1", "unsure": False, "response_time": 0.3})
    assert r.status_code == 409 and "not the item currently shown" in r.get_json()["error"]
    assert count_votes(engine) == 0


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"choice": "10"}, "choice must be one of"),
        ({"choice": 10}, "choice must be one of"),
        ({"choice": -1}, "choice must be one of"),
        ({"choice": "seven"}, "choice must be one of"),
        ({"choice": True}, "choice must be one of"),
        ({"choice": None}, "choice must be one of"),
        ({"item_id": "1 OR 1=1"}, "item_id must be an integer"),
        ({"item_id": 1.5}, "item_id must be an integer"),
        ({"unsure": "yes"}, "unsure must be true or false"),
        ({"response_time": -0.1}, "response_time"),
        ({"response_time": "fast"}, "response_time"),
        ({"response_time": None}, "response_time"),
        ({"response_time": 3600.0}, "exceeds"),
        ({"extra": 1}, "unknown field"),
    ],
)
def test_malformed_vote_is_400_and_changes_nothing(engine, annotator, change, fragment):
    item = annotator.next().get_json()["item"]
    body = {"item_id": item["item_id"], "choice": "2", "unsure": False, "response_time": 0.5}
    r = annotator.vote({**body, **change})
    assert r.status_code == 400
    assert fragment in r.get_json()["error"]
    assert count_votes(engine) == 0
    # the item is still open and can be answered properly
    assert annotator.vote(body).status_code == 201


def test_non_finite_response_time_is_400(engine, annotator):
    item = annotator.next().get_json()["item"]
    raw = '{"item_id": ITEM, "choice": "1", "unsure": false, "response_time": NaN}'.replace(
        "ITEM", str(item["item_id"])
    )
    r = annotator.client.post(
        "/api/vote",
        data=raw,
        content_type="application/json",
        headers={"X-Annotator-Token": annotator.token},
    )
    assert r.status_code == 400
    assert count_votes(engine) == 0


def test_non_json_body_is_400(engine, annotator):
    annotator.next()
    r = annotator.client.post(
        "/api/vote", data="choice=1", headers={"X-Annotator-Token": annotator.token}
    )
    assert r.status_code == 400 and "JSON" in r.get_json()["error"]
    r = annotator.client.post(
        "/api/vote",
        data=struct.pack("B", 255) * 5000,
        content_type="application/json",
        headers={"X-Annotator-Token": annotator.token},
    )
    assert r.status_code == 413
    assert count_votes(engine) == 0


def test_response_time_is_checked_against_server_time(engine, annotator):
    item = annotator.next().get_json()["item"]
    # pretend the server showed the item 10 s ago: 11 s is plausible, 30 s is not
    with engine.begin() as conn:
        conn.execute(update(db.assignments).values(shown_at=time.time() - 10))
    body = {"item_id": item["item_id"], "choice": "1", "unsure": False}
    assert annotator.vote({**body, "response_time": 30.0}).status_code == 400
    assert annotator.vote({**body, "response_time": 11.0}).status_code == 201


# ----------------------------------------------------------------- assignment rules


def test_annotator_never_sees_an_item_twice_and_finishes(engine, annotator):
    seen = []
    while True:
        body = annotator.next().get_json()
        if body["done"]:
            break
        seen.append(body["item"]["item_id"])
        r = annotator.vote(
            {"item_id": seen[-1], "choice": "1", "unsure": False, "response_time": 0.3}
        )
        assert r.status_code == 201
    assert len(seen) == len(set(seen))
    # every study item; attention_every is 100, so at most the first check came among them
    assert set(seen) - check_ids(engine) == study_ids(engine)
    assert len(set(seen) & check_ids(engine)) <= 1
    assert body["progress"]["done"] == body["progress"]["total"] == len(seen)


def test_each_item_gets_exactly_votes_per_item_distinct_annotators(make_db, mnist_digits):
    engine = make_db(n_study=5, n_checks=0, votes_per_item=2)
    app = create_app(engine)
    client = app.test_client()
    apis = [new_annotator(engine, client) for _ in range(4)]
    # all four open an item at once: live leases already count towards the quota
    first = [a.next().get_json()["item"]["item_id"] for a in apis]
    assert max(first.count(i) for i in first) <= 2
    active = list(apis)
    while active:
        for a in list(active):
            body = a.next().get_json()
            if body["done"]:
                active.remove(a)
                continue
            assert (
                a.vote(
                    {
                        "item_id": body["item"]["item_id"],
                        "choice": "0",
                        "unsure": False,
                        "response_time": 0.3,
                    }
                ).status_code
                == 201
            )
    with engine.begin() as conn:
        per_item = dict(
            conn.execute(
                select(db.votes.c.item_id, func.count()).group_by(db.votes.c.item_id)
            ).all()
        )
    assert per_item == {i: 2 for i in study_ids(engine)}


def test_max_items_per_annotator_caps_the_work(make_db):
    engine = make_db(n_study=6, n_checks=0, votes_per_item=3, max_items_per_annotator=2)
    a = new_annotator(engine, create_app(engine).test_client())
    for _ in range(2):
        _, r = a.vote_current()
        assert r.status_code == 201
    body = a.next().get_json()
    assert body["done"] is True and body["progress"] == {"done": 2, "total": 2}


def test_attention_checks_come_at_drawn_positions_in_every_block(make_db):
    engine = make_db(n_study=8, n_checks=3, votes_per_item=2, attention_every=2)
    client = create_app(engine).test_client()
    studies, checks = study_ids(engine), check_ids(engine)
    with engine.begin() as conn:
        settings = store.read_settings(conn)
    for _ in range(2):
        annotator, token = store.add_annotator(engine)
        a = Api(client, token)
        kinds = []
        while True:
            body = a.next().get_json()
            if body["done"]:
                break
            item_id = body["item"]["item_id"]
            kinds.append("check" if item_id in checks else "study")
            assert item_id in studies | checks
            r = a.vote({"item_id": item_id, "choice": "1", "unsure": False, "response_time": 0.3})
            assert r.status_code == 201
        # the k-th check comes after the drawn number of study votes (one in each block of
        # attention_every), and study votes stop where a fourth check would be due
        study_before = [kinds[:i].count("study") for i, k in enumerate(kinds) if k == "check"]
        expected = [store.check_due_after(settings, annotator.annotator_id, k) for k in range(3)]
        assert study_before == expected
        assert [k * 2 < n <= (k + 1) * 2 for k, n in enumerate(study_before)] == [True] * 3
        last = store.check_due_after(settings, annotator.annotator_id, 3)
        assert kinds.count("study") == min(last, len(studies))
        assert body["progress"] == {"done": len(kinds), "total": len(kinds)}


def test_stale_lease_is_reassigned_only_when_others_filled_the_item(make_db):
    engine = make_db(n_study=3, n_checks=0, votes_per_item=1, lease_seconds=60)
    client = create_app(engine).test_client()
    slow, fast = new_annotator(engine, client), new_annotator(engine, client)
    held = slow.next().get_json()["item"]["item_id"]
    # within the lease nobody else gets the held item
    other_items = set()
    while True:
        body = fast.next().get_json()
        if body["done"]:
            break
        other_items.add(body["item"]["item_id"])
        fast.vote(
            {
                "item_id": body["item"]["item_id"],
                "choice": "1",
                "unsure": False,
                "response_time": 0.3,
            }
        )
    assert held not in other_items
    # the lease lapses while the item is still unfilled: the slow annotator keeps it
    with engine.begin() as conn:
        conn.execute(
            update(db.assignments)
            .where(db.assignments.c.completed_at.is_(None))
            .values(shown_at=time.time() - 120)
        )
    assert slow.next().get_json()["item"]["item_id"] == held
    # a lapsed lease lets a third annotator take and fill the item; the slow one moves on
    with engine.begin() as conn:
        conn.execute(
            update(db.assignments)
            .where(db.assignments.c.completed_at.is_(None))
            .values(shown_at=time.time() - 120)
        )
    third = new_annotator(engine, client)
    item_id, r = third.vote_current()
    assert item_id == held and r.status_code == 201
    late = slow.vote({"item_id": held, "choice": "1", "unsure": False, "response_time": 0.3})
    assert late.status_code == 409 and "completed it meanwhile" in late.get_json()["error"]
    with engine.begin() as conn:
        n_held = conn.execute(
            select(func.count()).select_from(db.votes).where(db.votes.c.item_id == held)
        ).scalar_one()
    assert n_held == 1
    body = slow.next().get_json()
    assert body["done"] is True and body["progress"]["done"] == 0


# ----------------------------------------------------------------- restarts


def test_restart_loses_nothing_and_resumes(tmp_path, make_db):
    engine = make_db(n_study=6, n_checks=0, votes_per_item=2, name="restart.db")
    a = new_annotator(engine, create_app(engine).test_client())
    voted = [a.vote_current(choice=str(k))[0] for k in range(2)]
    open_item = a.next().get_json()["item"]["item_id"]
    engine.dispose()

    engine2 = reopen(engine)  # a fresh process would do the same
    assert db.migrate(engine2) == []
    a2 = Api(create_app(engine2).test_client(), a.token)
    body = a2.next().get_json()
    assert body["item"]["item_id"] == open_item
    assert body["progress"]["done"] == 2
    with engine2.begin() as conn:
        rows = conn.execute(
            select(db.votes.c.item_id, db.votes.c.choice).order_by(db.votes.c.vote_id)
        ).all()
    assert [(r.item_id, r.choice) for r in rows] == [(voted[0], "0"), (voted[1], "1")]
