"""The annotator-facing web application (Flask).

Routes, all an annotator can reach (admin work is CLI-only, see :mod:`.cli`):

* ``GET /``                                  a page telling visitors to use their personal link
* ``GET /a/<token>``                         the annotation page of the annotator holding token
* ``GET /a/<token>/items/<item_id>.png``     the 28x28 image of an item assigned to them
* ``GET /api/next``                          their current item and progress (JSON)
* ``POST /api/vote``                         one vote (JSON), answered with the next item

The API takes the token in the ``X-Annotator-Token`` header; a custom header cannot be sent
cross-site without a CORS preflight, which this app never grants. Unknown or forged tokens
get 403; every refused request gets a JSON ``{"error": message}`` and changes nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flask import Flask, Response, abort, jsonify, render_template, request
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from soft_label_audit.annotation_tool import db, store
from soft_label_audit.annotation_tool.png import grayscale_png
from soft_label_audit.data_sources.tables import IMAGE_SHAPE

TOKEN_HEADER = "X-Annotator-Token"
#: a vote body is a few dozen bytes
MAX_BODY_BYTES = 4096

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_app(engine: Engine) -> Flask:
    """The Flask app serving annotators from the (already migrated) database ``engine``."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["annotation_engine"] = engine

    def annotator_or_403(token: str | None) -> store.Annotator:
        with engine.begin() as conn:
            annotator = store.annotator_for_token(conn, token)
        if annotator is None:
            abort(403, description="unknown or revoked annotator token")
        return annotator

    def item_payload(token: str, assignment: store.Assignment | None, progress: store.Progress) -> dict[str, Any]:
        body: dict[str, Any] = {"progress": {"done": progress.done, "total": progress.total}}
        if assignment is None:
            body.update(done=True, item=None)
        else:
            body.update(
                done=False,
                item={
                    "item_id": assignment.item_id,
                    "image_url": f"/a/{token}/items/{assignment.item_id}.png",
                },
            )
        return body

    @app.after_request
    def _headers(response: Response) -> Response:
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            return jsonify(error=exc.description), exc.code
        return render_template("message.html", title=exc.name, message=exc.description), exc.code

    @app.errorhandler(OperationalError)
    def _busy(exc: OperationalError):
        # SQLite could not take its lock within the busy timeout: nothing was written
        app.logger.warning("database unavailable: %s", exc)
        body = {"error": "the database is busy; nothing was saved, please retry"}
        return jsonify(body), 503

    @app.errorhandler(store.VoteRejected)
    def _rejected(exc: store.VoteRejected):
        return jsonify(error=exc.message), exc.status

    @app.get("/")
    def index():
        return render_template(
            "message.html",
            title="Digit annotation",
            message="Open the personal link you were given to start annotating.",
        )

    @app.get("/a/<token>")
    def annotate_page(token: str):
        annotator_or_403(token)
        return render_template("annotate.html", token=token)

    @app.get("/a/<token>/items/<int:item_id>.png")
    def item_png(token: str, item_id: int):
        annotator = annotator_or_403(token)
        with engine.begin() as conn:
            shown = conn.execute(
                select(db.assignments.c.assignment_id).where(
                    db.assignments.c.item_id == item_id,
                    db.assignments.c.annotator_id == annotator.annotator_id,
                )
            ).first()
            image = store.item_image(conn, item_id) if shown else None
        if image is None:
            abort(404, description=f"item {item_id} is not assigned to you")
        png = grayscale_png(np.frombuffer(image, dtype=np.uint8).reshape(IMAGE_SHAPE))
        return Response(png, mimetype="image/png")

    @app.get("/api/next")
    def api_next():
        token = request.headers.get(TOKEN_HEADER)
        annotator = annotator_or_403(token)
        assignment, progress = store.next_assignment(engine, annotator)
        return jsonify(item_payload(token, assignment, progress))

    @app.post("/api/vote")
    def api_vote():
        token = request.headers.get(TOKEN_HEADER)
        annotator = annotator_or_403(token)
        payload = request.get_json(silent=True)
        if payload is None:
            raise store.VoteRejected(
                400, "send the vote as a JSON object with Content-Type: application/json"
            )
        vote_id = store.record_vote(engine, annotator, payload)
        assignment, progress = store.next_assignment(engine, annotator)
        body = item_payload(token, assignment, progress)
        body["vote_id"] = vote_id
        return jsonify(body), 201

    return app


def create_app_for(db_path: str) -> Flask:
    """App on the SQLite file ``db_path``, migrating its schema first."""
    return create_app(db.open_database(db_path))
