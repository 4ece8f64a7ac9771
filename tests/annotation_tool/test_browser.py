"""Two annotators in two browser contexts of Debian's headless Chromium, driven by Playwright.

The server runs as the documented command (``python -m soft_label_audit.annotation_tool
serve``) in a subprocess and is restarted half-way. Mouse and keyboard both answer items; the
test then checks the database and the export, and saves a screenshot of the annotation page
to ``data/08_reporting/figures/annotation_tool.png``.

Chromium is Debian's package (``apt-get install -y chromium``), installed by the session
fixture when missing and the tests run as root; Playwright drives it via ``executable_path``
and never downloads a browser. Without Chromium and without a way to install it the test is
skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from soft_label_audit.annotation_tool import db
from soft_label_audit.annotation_tool.cli import main

from ..conftest import PROJECT_ROOT
from .conftest import make_study_items

pytestmark = pytest.mark.browser

SCREENSHOT = PROJECT_ROOT / "data" / "08_reporting" / "figures" / "annotation_tool.png"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
#: headless flags for Debian's Chromium; Playwright adds --headless and a
#: fresh temporary --user-data-dir to every launch itself
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _find_chromium() -> str | None:
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, installed with apt-get when missing (root only), else a skip."""
    path = _find_chromium()
    if path:
        return path
    if not shutil.which("apt-get"):
        pytest.skip("Chromium is not installed and apt-get is not available to install it")
    if os.geteuid() != 0:
        pytest.skip(
            "Chromium is not installed; `sudo apt-get install -y chromium` enables this test"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    log = []
    for step in (install, ["apt-get", "update", "-q"], install):
        done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=900)
        log.append(f"$ {' '.join(step)} -> {done.returncode}\n{done.stderr[-800:]}")
        if step is install and done.returncode == 0:
            break
    path = _find_chromium()
    if not path:
        pytest.skip("Chromium could not be installed with apt-get:\n" + "\n".join(log))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ToolServer:
    """`python -m soft_label_audit.annotation_tool serve` as a subprocess that can restart."""

    def __init__(self, db_path: Path, port: int, log_path: Path):
        self.db_path, self.port, self.log_path = db_path, port, log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "soft_label_audit.annotation_tool",
                "serve",
                "--db",
                str(self.db_path),
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.db_path.parent,
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not answer in 20 s: {self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def tool(tmp_path, mnist_digits):
    """A database with 4 real MNIST study items and 1 attention check, two annotator links."""
    study, digits = tmp_path / "study_items.parquet", tmp_path / "digits.parquet"
    make_study_items(mnist_digits, 4).to_parquet(study)
    mnist_digits.to_parquet(digits)
    db_path = tmp_path / "annotation_tool.db"
    runner = CliRunner()
    r = runner.invoke(
        main,
        [
            "init",
            "--db",
            str(db_path),
            "--study-items",
            str(study),
            "--digits",
            str(digits),
            "--attention-checks",
            "1",
            "--votes-per-item",
            "2",
            "--attention-every",
            "2",
            # a scripted browser answers faster than any person could
            "--min-response-time",
            "0",
            # the seed under which A's third item is the check and A then gets 4 study
            # items in all, and B's check would come after their 2 answers
            "--attention-seed",
            "5",
        ],
    )
    assert r.exit_code == 0, r.output
    port = _free_port()
    r = runner.invoke(
        main,
        [
            "add-annotator",
            "--db",
            str(db_path),
            "--count",
            "2",
            "--base-url",
            f"http://127.0.0.1:{port}",
        ],
    )
    assert r.exit_code == 0, r.output
    links = [line.split("\t") for line in r.output.strip().splitlines()]
    server = ToolServer(db_path, port, tmp_path / "server.log")
    server.start()
    yield db_path, links, server
    server.stop()


def current_item(page) -> int:
    page.wait_for_selector("#app[data-ready='true']", timeout=10_000)
    return int(page.get_attribute("#app", "data-item-id"))


def wait_for_next(page, previous: int) -> None:
    page.wait_for_function(
        "prev => document.getElementById('app').dataset.finished === 'true' || "
        "(document.getElementById('app').dataset.ready === 'true' && "
        " document.getElementById('app').dataset.itemId !== String(prev))",
        arg=previous,
        timeout=10_000,
    )


def answer_with_mouse(page, choice: str, unsure: bool) -> int:
    item = current_item(page)
    page.click(f"button.choice[data-choice='{choice}']")
    if unsure:
        page.click("#unsure")
    page.click("#submit")
    wait_for_next(page, item)
    return item


def answer_with_keyboard(page, key: str, unsure: bool) -> int:
    item = current_item(page)
    page.keyboard.press(key)
    if unsure:
        page.keyboard.press("u")
    page.keyboard.press("Enter")
    wait_for_next(page, item)
    return item


def record_api(page, name: str, log: list[str]) -> None:
    """Append every API request and answer of ``page`` to ``log`` (for failure messages)."""

    def on_request(request) -> None:
        if "/api/" in request.url:
            log.append(
                f"{name} -> {request.method} {request.url.split('/api/')[1]} {request.post_data or ''}"
            )

    def on_response(response) -> None:
        if "/api/" in response.url:
            try:
                body = response.text()[:160]
            except Exception as exc:  # noqa: BLE001 - a diagnostic only
                body = f"<{type(exc).__name__}>"
            log.append(f"{name} <- {response.status} {body}")

    page.on("request", on_request)
    page.on("response", on_response)
    page.on("requestfailed", lambda r: log.append(f"{name} !! {r.method} {r.url} {r.failure}"))
    page.on("console", lambda m: log.append(f"{name} console {m.type}: {m.text}"))


def test_two_annotators_in_two_browsers(chromium_path, tool, tmp_path):
    from playwright.sync_api import sync_playwright

    db_path, ((pseud_a, link_a), (pseud_b, link_b)), server = tool
    expected: list[tuple[int, str, str, bool]] = []  # (item, annotator, choice, unsure)
    api_log: list[str] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            page_a = browser.new_context(viewport={"width": 760, "height": 900}).new_page()
            page_b = browser.new_context(viewport={"width": 760, "height": 900}).new_page()
            record_api(page_a, "A", api_log)
            record_api(page_b, "B", api_log)
            page_a.goto(link_a)
            page_b.goto(link_b)
            assert page_a.text_content("#progress-text") is not None

            # A: mouse; B: keyboard; interleaved so both hold items at once
            expected.append((answer_with_mouse(page_a, "3", unsure=True), pseud_a, "3", True))
            expected.append((answer_with_keyboard(page_b, "7", unsure=False), pseud_b, "7", False))
            expected.append((answer_with_keyboard(page_a, "n", unsure=True), pseud_a, "none", True))

            # the screenshot: an answer chosen, "unsure" on, progress under way
            shown_a = current_item(page_a)
            page_a.click("button.choice[data-choice='5']")
            page_a.keyboard.press("u")
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page_a.screenshot(path=str(SCREENSHOT), full_page=True, animations="disabled")
            progress_before = page_a.text_content("#progress-text")

            # restart the server: nothing is lost and A resumes on the same item
            server.stop()
            server.start()
            page_a.reload()
            assert current_item(page_a) == shown_a
            assert page_a.text_content("#progress-text") == progress_before
            assert page_a.get_attribute("button.choice[data-choice='5']", "aria-pressed") == "false"

            # A's third item is the attention check (attention_every = 2): answer it anyway
            check_item = answer_with_keyboard(page_a, "1", unsure=False)
            expected.append(
                (answer_with_mouse(page_b, "none", unsure=False), pseud_b, "none", False)
            )
            # A finishes everything left for them with the keyboard
            while page_a.get_attribute("#app", "data-finished") != "true":
                expected.append(
                    (answer_with_keyboard(page_a, "8", unsure=False), pseud_a, "8", False)
                )
            assert page_a.is_visible("#finished")
            done_text = page_a.text_content("#progress-text")
        finally:
            browser.close()

    server.stop()
    # A: 4 study items + 1 attention check, all seen once; progress says so
    assert done_text == "5 of 5 done", "\n".join(api_log)
    engine = db.open_database(db_path)
    with engine.begin() as conn:
        rows = conn.execute(
            select(
                db.votes.c.item_id,
                db.annotators.c.pseudonym,
                db.votes.c.choice,
                db.votes.c.unsure,
                db.votes.c.response_time,
                db.votes.c.server_elapsed,
                db.items.c.is_attention_check,
            )
            .join(db.annotators, db.annotators.c.annotator_id == db.votes.c.annotator_id)
            .join(db.items, db.items.c.item_id == db.votes.c.item_id)
            .order_by(db.votes.c.vote_id)
        ).all()
    files = sorted(f"{p.name} {p.stat().st_size}" for p in tmp_path.iterdir())
    diagnosis = (
        f"rows {[tuple(r) for r in rows]}\nexpected {expected}\nfiles {files}\n"
        + "\n".join(api_log)
        + f"\nserver log:\n{server.log_path.read_text()}"
    )
    checks = [r for r in rows if r.is_attention_check]
    assert [(r.item_id, r.pseudonym, r.choice) for r in checks] == [(check_item, pseud_a, "1")], (
        diagnosis
    )
    study = [
        (r.item_id, r.pseudonym, r.choice, bool(r.unsure)) for r in rows if not r.is_attention_check
    ]
    assert sorted(study) == sorted(expected), diagnosis
    assert all(0 < r.response_time <= r.server_elapsed + 2 for r in rows), diagnosis

    out = tmp_path / "votes.csv"
    # A's attention check may be wrong (answered "1" whatever it shows): keep everyone
    r = CliRunner().invoke(
        main, ["export", "--db", str(db_path), "--out", str(out), "--min-attention-accuracy", "0"]
    )
    assert r.exit_code == 0, r.output
    exported = pd.read_csv(out, dtype={"choice": str})
    assert list(exported.columns) == [
        "item_id",
        "annotator_id",
        "choice",
        "unsure",
        "response_time",
    ]
    assert sorted(
        exported[["item_id", "annotator_id", "choice", "unsure"]].itertuples(index=False, name=None)
    ) == sorted(expected)
    assert SCREENSHOT.stat().st_size > 5_000
