"""The annotator-facing web application (Flask).

Routes, all an annotator can reach (admin work is CLI-only, see :mod:`.cli`):

* ``GET /``              a page telling visitors to use their personal link
* ``GET /a/<token>``     the annotation page of the annotator holding token
* ``GET /api/next``      their current item (its image inline as a PNG data URL) and progress
* ``POST /api/vote``     one vote (JSON), answered with the next item

The API takes the token in the ``X-Annotator-Token`` header; a custom header cannot be sent
cross-site without a CORS preflight, which this app never grants. Unknown or forged tokens
get 403; every refused request gets a JSON ``{"error": message}`` and changes nothing. The
token appears in one URL only, the page's, and never in a log line (see
:func:`redact_path`). Requests whose ``Host`` header is not in the configured list get 400.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import sys
import threading
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

import numpy as np
from flask import Flask, Response, abort, jsonify, render_template, request
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from soft_label_audit.annotation_tool import store
from soft_label_audit.annotation_tool.png import grayscale_png
from soft_label_audit.columns import IMAGE_SHAPE

TOKEN_HEADER = "X-Annotator-Token"
#: a vote body is a few dozen bytes; waitress refuses larger bodies before reading them
MAX_BODY_BYTES = 4096
#: Host names served when none are configured (a server bound to the loopback interface)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
#: PNG data URLs kept in memory (about 0.5 kB each)
IMAGE_CACHE_SIZE = 50_000
#: annotators kept by token in memory
TOKEN_CACHE_SIZE = 10_000

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

NOT_JSON = "send the vote as a JSON object with Content-Type: application/json"
STATUS_LINES = {code.value: f"{code.value} {code.phrase}" for code in HTTPStatus}

_TOKEN_IN_PATH = re.compile(r"^/a/[^/]*")


def redact_path(path: str) -> str:
    """The request path as logs may show it: ``/a/<token>...`` becomes ``/a/<redacted>...``."""
    return _TOKEN_IN_PATH.sub("/a/<redacted>", path)


def is_json_type(content_type: str) -> bool:
    """Whether a Content-Type is JSON, as Flask's ``request.is_json`` decides."""
    mimetype = content_type.split(";", 1)[0].strip().lower()
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def host_name(host: str) -> str:
    """The name part of a Host header, lower case, without the port (``[::1]`` kept whole)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if ":" in host else host


class _AnnotationApp(Flask):
    def log_exception(self, exc_info) -> None:  # Flask's own puts request.path in the log
        self.logger.error(
            "Exception on %s [%s]", redact_path(request.path), request.method, exc_info=exc_info
        )


class _ImageCache:
    """PNG data URLs by item id; items' images never change once inserted."""

    def __init__(self, size: int):
        self.size = size
        self.urls: dict[int, str] = {}
        self.lock = threading.Lock()

    def url(self, item_id: int, image: bytes) -> str:
        """The item's data URL, made from ``image`` (its raw bytes, read in the transaction
        that handed the item out) the first time the item is shown."""
        cached = self.urls.get(item_id)
        if cached is not None:
            return cached
        png = grayscale_png(np.frombuffer(image, dtype=np.uint8).reshape(IMAGE_SHAPE))
        url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        with self.lock:
            if len(self.urls) >= self.size:
                self.urls.clear()
            self.urls[item_id] = url
        return url


def create_app(engine: Engine, allowed_hosts: Iterable[str] | None = None) -> Flask:
    """The Flask app serving annotators from the (already migrated) database ``engine``.

    ``allowed_hosts``: Host names (no port; ``.example.org`` also allows its subdomains)
    the app answers to; default :data:`LOOPBACK_HOSTS`.
    """
    app = _AnnotationApp(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["annotation_engine"] = engine
    hosts = tuple(h.lower() for h in (allowed_hosts or LOOPBACK_HOSTS))
    app.config["ANNOTATION_ALLOWED_HOSTS"] = hosts
    images = _ImageCache(IMAGE_CACHE_SIZE)

    def host_allowed(host: str) -> bool:
        name = host_name(host)
        return any(name == h or (h.startswith(".") and name.endswith(h)) for h in hosts)

    # token -> annotator, for the API routes: a token is looked up once per process. A cached
    # annotator revoked since (by the CLI, another process) is still refused: every API
    # request is a write transaction that re-reads the annotator's row under the write lock
    # and answers 403 when it is no longer active (store._lock_me).
    known: dict[str, store.Annotator] = {}

    def annotator_or_403(token: str | None, cached: bool = True) -> store.Annotator:
        annotator = known.get(token) if cached and token else None
        if annotator is None:
            annotator = store.find_annotator(engine, token)
            if annotator is None:
                abort(403, description="unknown or revoked annotator token")
            if cached:
                if len(known) >= TOKEN_CACHE_SIZE:
                    known.clear()
                known[token] = annotator
        return annotator

    def item_payload(
        assignment: store.Assignment | None, progress: store.Progress
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"progress": {"done": progress.done, "total": progress.total}}
        if assignment is None:
            body.update(done=True, item=None)
        else:
            body.update(
                done=False,
                item={
                    "item_id": assignment.item_id,
                    "image": images.url(assignment.item_id, assignment.image),
                },
            )
        return body

    @app.before_request
    def _check_host():
        if not host_allowed(request.headers.get("Host", "")):
            abort(400, description="this server does not answer to that host name")
        if request.method == "HEAD" and request.path.startswith("/api/"):
            # Flask answers HEAD with the GET view, and GET /api/next hands out an item
            return _head_refused()

    def _head_refused() -> Response:
        response = jsonify(error="HEAD is not served here: the API's GET changes state")
        response.status_code = 405
        response.headers["Allow"] = "GET"
        return response

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

    @app.errorhandler(SQLAlchemyError)
    def _database_error(exc: SQLAlchemyError):
        app.logger.warning(
            "database unavailable on %s: %s", redact_path(request.path), type(exc).__name__
        )
        return jsonify(error="the database is unavailable; please retry in a moment"), 503

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
        annotator_or_403(token, cached=False)  # the page itself says "revoked" at once
        return render_template("annotate.html", token=token)

    # The two API routes' work, shared by the Flask routes and the lean WSGI path below;
    # each returns (HTTP status, JSON body) and never raises for a refusal or the database.

    def answer_next(annotator: store.Annotator) -> tuple[int, dict[str, Any]]:
        try:
            assignment, progress = store.next_assignment(engine, annotator)
        except store.VoteRejected as exc:
            return exc.status, {"error": exc.message}
        except SQLAlchemyError as exc:
            app.logger.warning("database unavailable on /api/next: %s", type(exc).__name__)
            return 503, {"error": "the database is unavailable; please retry in a moment"}
        return 200, item_payload(assignment, progress)

    def answer_vote(annotator: store.Annotator, data: bytes) -> tuple[int, dict[str, Any]]:
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError):
            return 400, {"error": "the request body is not valid JSON"}
        try:
            outcome = store.record_vote_and_next(engine, annotator, payload)
        except store.VoteRejected as exc:
            return exc.status, {"error": exc.message}
        except SQLAlchemyError as exc:
            app.logger.warning("vote not stored: %s", type(exc).__name__)
            return 503, {
                "error": "the database is unavailable; send the answer again in a "
                "moment (an answer is never counted twice)"
            }
        vote_id, body = outcome.vote_id, None
        if outcome.next_error is None:
            try:
                body = item_payload(outcome.assignment, outcome.progress)
            except Exception as exc:  # e.g. the image could not be read
                outcome = dataclasses.replace(outcome, next_error=type(exc).__name__)
        if outcome.next_error is not None:  # the vote is committed: say so
            app.logger.warning("vote %s stored, next item failed: %s", vote_id, outcome.next_error)
            body = {
                "done": False,
                "item": None,
                "next_error": (
                    "your answer was saved; the next item is not available yet, please wait "
                    "a moment"
                ),
            }
        body["vote_id"] = vote_id
        body["saved"] = True
        return 201, body

    @app.get("/api/next")
    def api_next():
        status, body = answer_next(annotator_or_403(request.headers.get(TOKEN_HEADER)))
        return jsonify(body), status

    @app.post("/api/vote")
    def api_vote():
        annotator = annotator_or_403(request.headers.get(TOKEN_HEADER))
        if not request.is_json:
            raise store.VoteRejected(400, NOT_JSON)
        status, body = answer_vote(annotator, request.get_data(cache=False))
        return jsonify(body), status

    # The lean path: a vote or a next-item request of a known token, on an allowed host, with
    # a JSON body within the limit, skips Flask's request machinery (about half of a vote's
    # CPU time otherwise). Everything else - a first request of a token, a bad host, a wrong
    # content type or size, any other route - goes through Flask as before.
    flask_wsgi = app.wsgi_app

    def lean_wsgi(environ: dict, start_response):
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        is_vote = method == "POST" and path == "/api/vote"
        if not (is_vote or (method == "GET" and path == "/api/next")):
            return flask_wsgi(environ, start_response)
        token = environ.get("HTTP_X_ANNOTATOR_TOKEN")
        annotator = known.get(token) if token else None
        if annotator is None or not host_allowed(environ.get("HTTP_HOST", "")):
            return flask_wsgi(environ, start_response)
        if is_vote:
            length = environ.get("CONTENT_LENGTH") or ""
            if (
                not is_json_type(environ.get("CONTENT_TYPE", ""))
                or not length.isdigit()
                or int(length) > MAX_BODY_BYTES
            ):
                return flask_wsgi(environ, start_response)
        try:
            if is_vote:
                status, body = answer_vote(annotator, environ["wsgi.input"].read(int(length)))
            else:
                status, body = answer_next(annotator)
        except Exception:
            app.logger.error("Exception on %s [%s]", path, method, exc_info=True)
            status, body = 500, {"error": "internal server error"}
        data = json.dumps(body, separators=(",", ":")).encode()
        start_response(
            STATUS_LINES[status],
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                *SECURITY_HEADERS.items(),
            ],
        )
        return [data]

    def guarded_wsgi(environ: dict, start_response):
        """The app, and a last resort: an exception that escapes it (the error page itself
        failed) is logged here with the path redacted, and answered with a plain 500;
        waitress would log it with the raw path, the token in it."""
        try:
            return lean_wsgi(environ, start_response)
        except Exception:
            app.logger.error(
                "Exception on %s [%s] (and in its error page)",
                redact_path(environ.get("PATH_INFO", "")),
                environ.get("REQUEST_METHOD"),
                exc_info=True,
            )
            data = b"internal server error"
            start_response(
                STATUS_LINES[500],
                [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))]
                + list(SECURITY_HEADERS.items()),
                sys.exc_info(),
            )
            return [data]

    app.wsgi_app = guarded_wsgi
    return app
